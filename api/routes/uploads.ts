import { createHash, randomUUID } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { pipeline } from 'node:stream/promises';
import type { FastifyPluginAsyncTypebox, TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { Client as MinioClient } from 'minio';
import { sql, type DatabasePool } from 'slonik';
import { AUDIO_EXTENSIONS, COVER_EXTENSIONS, COVER_MAX_BYTES } from '../../domain/catalog/audio';
import { uploadKey } from '../../domain/catalog/keys';
import { CadenzaError, ForbiddenError, NotFoundError, ValidationError } from '../../lib/errors';
import { bucketName } from '../../lib/clients/minio';
import { STAGING_EXPIRY_DAYS } from '../../sql/migrate/minio';
import { artistExists, uploadById } from '../queries/catalog';
import { FAILURE_PROBLEMS } from '../problems';
import { IdempotencyHeaders, withProblems } from '../schemas';
import { idempotencyKey } from '../lib/start';

/**
 * Uploads into the `staging` bucket, which the API owns: a creator asks for an upload and gets a presigned
 * POST policy (size-limited by content-length-range, so S3-capable clients send straight to MinIO), or
 * streams the file through `PUT /uploads/:id` (never held in memory: piped to MinIO as it arrives).
 * Nothing here trusts the file name or the content type: ingestion looks at the bytes.
 */
export interface UploadApiDeps {
  pool: DatabasePool;
  /** MinIO as the API reaches it (the streaming PUT). */
  minio: MinioClient;
  /** MinIO as clients reach it: signs the POST policies it hands out. */
  signer: MinioClient;
  bucketPrefix: string;
  maxUploadBytes: number;
}

/** How long a presigned POST policy may be used; the object then waits in staging for 2 days. */
const POST_POLICY_SECONDS = 3600;

const Uuid = Type.String({ format: 'uuid' });
const UploadAnswer = Type.Object({
  uploadId: Uuid,
  kind: Type.Union([Type.Literal('audio'), Type.Literal('cover')]),
  maxBytes: Type.Integer({ description: 'the largest body this upload takes (the declared size)' }),
  expiresAt: Type.String({
    format: 'date-time',
    description: 'when staging drops the file if no track uses it',
  }),
  post: Type.Object(
    {
      url: Type.String(),
      fields: Type.Record(Type.String(), Type.String()),
      validUntil: Type.String({ format: 'date-time' }),
    },
    { description: 'multipart/form-data POST straight to the object store: these fields, then `file`' },
  ),
  put: Type.Object(
    { url: Type.String(), method: Type.Literal('PUT') },
    { description: 'or stream the raw bytes through the API' },
  ),
});

const problem = (failure: keyof typeof FAILURE_PROBLEMS, detail: string) => {
  const p = FAILURE_PROBLEMS[failure];
  return new CadenzaError(p.slug, p.status, p.title, detail, { failure });
};

// eslint-disable-next-line no-control-regex -- control characters are exactly what is removed
const CONTROL = /[\u0000-\u001f\u007f]/g;

/** The creator's file name as something safe to store and show: no folders, no control characters. */
export function displayName(filename: string): string {
  const base = filename.split(/[\\/]/).pop() ?? '';
  return base.replace(CONTROL, '').trim().slice(0, 255);
}

export const extensionOf = (name: string) => {
  const dot = name.lastIndexOf('.');
  return dot >= 0 ? name.slice(dot + 1).toLowerCase() : '';
};

/**
 * A file name the schema accepts: any name whose last character before the extension is not a folder
 * separator or a control character, ending in one of `extensions` in any case.
 */
export function namePattern(extensions: readonly string[]): string {
  const anyCase = (e: string) =>
    [...e].map((c) => (/[a-z]/.test(c) ? `[${c}${c.toUpperCase()}]` : c)).join('');
  return `[^/\\\\\\u0000-\\u001f\\u007f]\\.(${extensions.map(anyCase).join('|')})$`;
}
const ContentType = Type.String({ pattern: '^[\\w.+-]+/[\\w.+-]+$', maxLength: 100 });

/** The same creator and Idempotency-Key always name the same upload. */
function uploadIdFor(sub: string, key: string | undefined): string {
  if (!key) return randomUUID();
  const h = createHash('sha256').update(`upload\n${sub}\n${key}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${((parseInt(h[16] as string, 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

export const uploadRoutes: FastifyPluginAsyncTypebox<UploadApiDeps> = async (app, deps) => {
  const staging = bucketName('staging', deps.bucketPrefix);

  async function creatorArtist(sub: string): Promise<string> {
    if (!(await artistExists(deps.pool, sub))) {
      throw new ForbiddenError('This creator token names no artist in the catalog.');
    }
    return sub;
  }

  app.post(
    '/uploads',
    {
      config: { scopes: ['creator'] },
      schema: {
        tags: ['catalog'],
        summary: 'Start an upload: a presigned POST policy to staging, or stream it with PUT',
        description: `Audio: ${AUDIO_EXTENSIONS.join(', ')} (the bytes decide, not the name). Cover art: jpg, png.`,
        headers: IdempotencyHeaders,
        body: Type.Union([
          Type.Object(
            {
              filename: Type.String({ maxLength: 1000, pattern: namePattern(AUDIO_EXTENSIONS) }),
              contentType: ContentType,
              size: Type.Integer({ minimum: 1, maximum: deps.maxUploadBytes }),
              kind: Type.Optional(Type.Literal('audio')),
            },
            { additionalProperties: false, title: 'Audio upload' },
          ),
          Type.Object(
            {
              filename: Type.String({ maxLength: 1000, pattern: namePattern(COVER_EXTENSIONS) }),
              contentType: ContentType,
              size: Type.Integer({ minimum: 1, maximum: COVER_MAX_BYTES }),
              kind: Type.Literal('cover'),
            },
            { additionalProperties: false, title: 'Cover art upload' },
          ),
        ]),
        response: withProblems({
          201: UploadAnswer,
          409: Type.Ref('Problem'),
          413: Type.Ref('Problem'),
          415: Type.Ref('Problem'),
          422: Type.Ref('Problem'),
        }),
      },
    },
    async (request, reply) => {
      const artistId = await creatorArtist(request.principal.sub);
      const kind = request.body.kind ?? 'audio';
      const filename = displayName(request.body.filename);
      const extension = extensionOf(filename);
      if (!filename) {
        throw new ValidationError('The file name is empty once folders and control characters are removed.', [
          { field: 'body.filename', message: 'must name a file' },
        ]);
      }
      const allowed = kind === 'audio' ? AUDIO_EXTENSIONS : COVER_EXTENSIONS;
      if (!allowed.includes(extension)) {
        throw problem(
          'UnsupportedFormat',
          `A ${kind} upload must be one of: ${allowed.map((e) => `.${e}`).join(', ')}; "${filename}" is not.`,
        );
      }
      const limit = kind === 'audio' ? deps.maxUploadBytes : COVER_MAX_BYTES;
      if (request.body.size > limit) {
        throw problem(
          'FileTooLarge',
          `${request.body.size} bytes is more than the ${limit} a ${kind} upload may have.`,
        );
      }
      const uploadId = uploadIdFor(request.principal.sub, idempotencyKey(request.headers['idempotency-key']));
      const key = uploadKey(uploadId);
      await deps.pool.query(sql.unsafe`
        INSERT INTO uploads (upload_id, artist_id, kind, filename, extension, content_type, declared_bytes, object_key, expires_at)
        VALUES (${uploadId}, ${artistId}, ${kind}, ${filename}, ${extension}, ${request.body.contentType},
                ${request.body.size}, ${key}, now() + ${`${STAGING_EXPIRY_DAYS} days`}::interval)
        ON CONFLICT (upload_id) DO NOTHING`);
      const upload = await uploadById(deps.pool, uploadId);
      if (
        !upload ||
        upload.artist_id !== artistId ||
        upload.kind !== kind ||
        upload.filename !== filename ||
        upload.declared_bytes !== request.body.size ||
        upload.content_type !== request.body.contentType
      ) {
        throw new CadenzaError(
          'idempotency-key-reused',
          422,
          'Idempotency-Key reused',
          'This Idempotency-Key was used for another upload.',
        );
      }
      const policy = deps.signer.newPostPolicy();
      const validUntil = new Date(Date.now() + POST_POLICY_SECONDS * 1000);
      policy.setBucket(staging);
      policy.setKey(key);
      policy.setExpires(validUntil);
      policy.setContentType(request.body.contentType);
      policy.setContentLengthRange(1, request.body.size);
      const signed = await deps.signer.presignedPostPolicy(policy);
      return reply.code(201).send({
        uploadId,
        kind,
        maxBytes: request.body.size,
        expiresAt: upload.expires_at,
        post: {
          url: signed.postURL,
          fields: signed.formData as Record<string, string>,
          validUntil: validUntil.toISOString(),
        },
        put: { url: `/v1/uploads/${uploadId}`, method: 'PUT' as const },
      });
    },
  );

  // The raw body of this one route is a stream handed to the handler: no parser reads it, whatever the
  // Content-Type says, and the API's JSON body limit does not apply.
  await app.register(async (scope) => {
    const raw = scope.withTypeProvider<TypeBoxTypeProvider>();
    raw.removeAllContentTypeParsers();
    raw.addContentTypeParser('*', (_request, _payload, done) => done(null));
    raw.put(
      '/uploads/:uploadId',
      {
        config: { scopes: ['creator'] },
        schema: {
          tags: ['catalog'],
          summary:
            'Stream an upload through the API (raw body; Content-Length required, at most the declared size)',
          params: Type.Object({ uploadId: Uuid }),
          response: withProblems({
            200: Type.Object({ uploadId: Uuid, bytes: Type.Integer() }),
            411: Type.Ref('Problem'),
            413: Type.Ref('Problem'),
            422: Type.Ref('Problem'),
          }),
        },
      },
      async (request, reply) => {
        const upload = await uploadById(deps.pool, request.params.uploadId);
        if (!upload || upload.artist_id !== request.principal.sub) throw new NotFoundError('No such upload.');
        const length = Number(request.headers['content-length']);
        if (request.headers['content-length'] === undefined || !Number.isSafeInteger(length)) {
          throw new CadenzaError(
            'length-required',
            411,
            'Length required',
            'Send the file with a Content-Length header.',
          );
        }
        if (length > upload.declared_bytes) {
          // Refused before a byte is read; the connection closes so the client stops sending.
          reply.header('connection', 'close');
          throw problem(
            'FileTooLarge',
            `The body is ${length} bytes; this upload was declared as ${upload.declared_bytes}.`,
          );
        }
        if (length === 0) throw problem('EmptyFile', 'The body is empty; send the file.');
        const url = new URL(await deps.minio.presignedPutObject(staging, upload.object_key, 900));
        const status = await new Promise<number>((resolve, reject) => {
          const put = (url.protocol === 'https:' ? https : http).request(url, {
            method: 'PUT',
            headers: { 'content-length': length, 'content-type': upload.content_type },
          });
          put.once('response', (res) => {
            res.resume();
            resolve(res.statusCode ?? 502);
          });
          pipeline(request.raw, put).catch(reject);
        });
        if (status !== 200)
          throw new CadenzaError(
            'storage-refused',
            502,
            'Storage refused',
            `The object store answered ${status}.`,
          );
        return { uploadId: upload.upload_id, bytes: length };
      },
    );
  });
};

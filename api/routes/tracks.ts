import { createHash, randomUUID } from 'node:crypto';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type, type Static } from '@sinclair/typebox';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { Client as MinioClient } from 'minio';
import type { DatabasePool } from 'slonik';
import { qualitiesFor, QUALITIES, type Quality } from '../../domain/catalog/audio';
import { uploadKey } from '../../domain/catalog/keys';
import type { Principal } from '../auth/scopes';
import {
  CadenzaError,
  ConflictError,
  ForbiddenError,
  NotFoundError,
  ValidationError,
  problemType,
} from '../../lib/errors';
import { bucketName } from '../../lib/clients/minio';
import type { trackChange, trackIngestion } from '../../workflows';
import {
  ingestionProgress,
  SEARCH,
  TAKEDOWN_REASONS,
  TASK_QUEUE,
  trackChangeWorkflowId,
  trackIngestionWorkflowId,
  type CatalogFailure,
  type TrackChange,
} from '../../workflows/catalog/contract';
import { actsForAnyone, actingUser } from '../lib/acting';
import { idempotencyKey, startOnce } from '../lib/start';
import {
  artistExists,
  ingestionByTrack,
  listenerById,
  submissionChecks,
  trackById,
  uploadById,
  type IngestionRow,
  type TrackRow,
} from '../queries/catalog';
import { FAILURE_PROBLEMS } from '../problems';
import { IdempotencyHeaders, withProblems } from '../schemas';

/**
 * Tracks: a creator submits an upload as a track (the `trackIngestion` workflow), follows its progress and
 * may cancel it; creators and operators change a track afterwards (the `trackChange` workflow); listeners
 * get a short-lived stream URL for the rendition their tier allows. Reads come from PostgreSQL; a running
 * ingestion adds its live step and transcoding progress.
 */
export interface TrackApiDeps {
  temporal: Client;
  pool: DatabasePool;
  /** MinIO as the API reaches it (is an upload there?). */
  minio: MinioClient;
  /** MinIO as clients reach it: signs stream URLs. */
  signer: MinioClient;
  bucketPrefix: string;
  streamUrlTtlSeconds: number;
}

const Uuid = Type.String({ format: 'uuid' });
const Country = Type.String({ pattern: '^[A-Z]{2}$' });
const Submission = Type.Object(
  {
    uploadId: Uuid,
    coverUploadId: Type.Optional(Uuid),
    title: Type.String({ minLength: 1, maxLength: 300 }),
    album: Type.Object(
      {
        title: Type.String({ minLength: 1, maxLength: 300 }),
        upc: Type.String({ pattern: '^[0-9]{12,13}$', description: 'UPC-A or EAN-13 with its check digit' }),
        releaseDate: Type.String({ format: 'date' }),
      },
      { additionalProperties: false },
    ),
    isrc: Type.String({
      pattern: '^[A-Z]{2}[A-Z0-9]{3}[0-9]{7}$',
      description: 'ISO 3901 without hyphens: country, registrant, year, designation',
    }),
    explicit: Type.Boolean({
      description: 'required: listeners with parental controls never see explicit tracks',
    }),
    genres: Type.Array(Type.String({ pattern: '^[a-z0-9-]{1,40}$' }), { maxItems: 5, uniqueItems: true }),
    territories: Type.Optional(
      Type.Union([Type.Array(Country, { minItems: 1, maxItems: 250, uniqueItems: true }), Type.Null()], {
        description: 'markets the track may stream in; omitted or null: everywhere',
      }),
    ),
    trackNumber: Type.Optional(Type.Integer({ minimum: 1, maximum: 999 })),
  },
  { additionalProperties: false },
);

const Rendition = Type.Object({ quality: Type.String(), bitrateKbps: Type.Integer(), codec: Type.String() });
const Ingestion = Type.Object({
  status: Type.String({ description: 'processing, available, duplicate, rejected or canceled' }),
  step: Type.String(),
  percent: Type.Optional(Type.Integer({ description: 'transcoding progress, while transcoding' })),
  failure: Type.Union([Type.String(), Type.Null()]),
  problemType: Type.Union([Type.String(), Type.Null()], { description: 'the problem type of the failure' }),
  reason: Type.Union([Type.String(), Type.Null()], { description: 'what the creator can do about it' }),
  startedAt: Type.String(),
  finishedAt: Type.Union([Type.String(), Type.Null()]),
});
const TrackView = Type.Object(
  {
    trackId: Uuid,
    status: Type.String({
      description: 'processing, available, taken_down, rejected, canceled or duplicate',
    }),
    catalogTrackId: Type.Union([Uuid, Type.Null()], {
      description: 'for a duplicate upload, the track that already has this audio',
    }),
    title: Type.Optional(Type.String()),
    artistId: Uuid,
    artistName: Type.Optional(Type.String()),
    albumId: Type.Optional(Uuid),
    albumTitle: Type.Optional(Type.String()),
    isrc: Type.Optional(Type.String()),
    explicit: Type.Optional(Type.Boolean()),
    durationMs: Type.Optional(Type.Integer()),
    releaseDate: Type.Optional(Type.String()),
    genres: Type.Optional(Type.Array(Type.String())),
    territories: Type.Optional(Type.Union([Type.Array(Type.String()), Type.Null()])),
    playCount: Type.Optional(Type.Integer()),
    loudness: Type.Optional(
      Type.Object({
        integratedLufs: Type.Union([Type.Number(), Type.Null()]),
        truePeakDbtp: Type.Union([Type.Number(), Type.Null()]),
      }),
    ),
    renditions: Type.Optional(Type.Array(Rendition)),
    takenDownReason: Type.Optional(Type.Union([Type.String(), Type.Null()])),
    ingestion: Type.Union([Ingestion, Type.Null()]),
  },
  { title: 'Track' },
);
const Accepted = Type.Object({
  trackId: Uuid,
  workflowId: Type.String(),
  runId: Type.String(),
  existing: Type.Boolean(),
  statusUrl: Type.String(),
});
const StreamAnswer = Type.Object({
  trackId: Uuid,
  url: Type.String({ description: 'presigned GET of the rendition; expires quickly' }),
  expiresAt: Type.String({ format: 'date-time' }),
  quality: Type.String(),
  bitrateKbps: Type.Integer(),
  codec: Type.String(),
  loudness: Type.Object({
    integratedLufs: Type.Union([Type.Number(), Type.Null()]),
    truePeakDbtp: Type.Union([Type.Number(), Type.Null()]),
  }),
  renditions: Type.Array(Rendition, { description: 'the renditions this listener may use' }),
});

const failureProblem = (failure: string | null) =>
  failure && Object.hasOwn(FAILURE_PROBLEMS, failure)
    ? problemType(FAILURE_PROBLEMS[failure as CatalogFailure].slug)
    : null;

/** Operators, services and compliance see every track; a creator sees their own; others what is published. */
const privileged = (p: Principal) => actsForAnyone(p, ['operator', 'service', 'compliance']);

/** Heartbeat details of the running transcode, decoded from the describe answer (JSON payloads). */
function transcodePercent(raw: {
  pendingActivities?:
    | {
        activityType?: { name?: string | null } | null;
        heartbeatDetails?: { payloads?: { data?: Uint8Array | null }[] | null } | null;
      }[]
    | null;
}): number | undefined {
  for (const a of raw.pendingActivities ?? []) {
    if (a.activityType?.name !== 'transcodeLadder') continue;
    const data = a.heartbeatDetails?.payloads?.[0]?.data;
    if (!data) return 0;
    try {
      const percent = (JSON.parse(Buffer.from(data).toString('utf8')) as { percent?: number }).percent;
      return typeof percent === 'number' ? Math.max(0, Math.min(100, Math.round(percent))) : undefined;
    } catch {
      return undefined;
    }
  }
  return undefined;
}

const numberOrNull = (v: string | null) => (v === null ? null : Number(v));

/** The ingestion step an activity belongs to, for when the workflow itself cannot be asked. */
const STEP_OF_ACTIVITY: Record<string, string> = {
  inspectUpload: 'inspect',
  checkSubmission: 'validate',
  findDuplicate: 'dedup',
  prepareCover: 'cover',
  measureLoudness: 'loudness',
  transcodeLadder: 'transcode',
  promoteTrack: 'promote',
  writeCatalog: 'catalog',
  indexTrack: 'index',
  upsertTrackDimension: 'index',
};

export const trackRoutes: FastifyPluginAsyncTypebox<TrackApiDeps> = async (app, deps) => {
  const { temporal, pool } = deps;
  const staging = bucketName('staging', deps.bucketPrefix);
  const audio = bucketName('audio', deps.bucketPrefix);

  async function inStaging(key: string): Promise<boolean> {
    return deps.minio.statObject(staging, key).then(
      () => true,
      (err: { code?: string }) => {
        if (err.code === 'NotFound' || err.code === 'NoSuchKey') return false;
        throw err;
      },
    );
  }

  function catalogView(
    t: TrackRow,
    ingestion: Static<typeof Ingestion> | null,
    trackId = t.track_id,
  ): Static<typeof TrackView> {
    return {
      trackId,
      status: t.status,
      catalogTrackId: t.track_id,
      title: t.title,
      artistId: t.artist_id,
      artistName: t.artist_name,
      albumId: t.album_id,
      albumTitle: t.album_title,
      isrc: t.isrc,
      explicit: t.explicit,
      durationMs: t.duration_ms,
      releaseDate: t.release_date,
      genres: t.genres,
      territories: t.territories,
      playCount: t.play_count,
      loudness: {
        integratedLufs: numberOrNull(t.loudness_lufs),
        truePeakDbtp: numberOrNull(t.true_peak_dbtp),
      },
      renditions: t.renditions.map((r) => ({
        quality: r.quality,
        bitrateKbps: r.bitrateKbps,
        codec: r.codec,
      })),
      takenDownReason: t.taken_down_reason,
      ingestion,
    };
  }

  /** The ingestion as PostgreSQL has it, with the run's live step and percent while it runs. */
  async function ingestionView(row: IngestionRow): Promise<Static<typeof Ingestion>> {
    const view: Static<typeof Ingestion> = {
      status: row.status,
      step: row.step,
      failure: row.failure,
      problemType: failureProblem(row.failure),
      reason: row.reason,
      startedAt: row.started_at,
      finishedAt: row.finished_at,
    };
    if (row.status !== 'processing') return view;
    const handle = temporal.workflow.getHandle(row.workflow_id);
    try {
      view.step = (await handle.query(ingestionProgress)).step;
    } catch {
      // No worker to answer (it may be restarting): the server still knows which step is running.
      const pending = await handle.describe().then(
        (d) => d.raw.pendingActivities?.[0]?.activityType?.name,
        () => undefined,
      );
      if (pending && STEP_OF_ACTIVITY[pending]) view.step = STEP_OF_ACTIVITY[pending];
    }
    if (view.step === 'transcode') {
      view.percent = await handle.describe().then(
        (d) => transcodePercent(d.raw),
        () => undefined,
      );
    }
    return view;
  }

  /** The track as the caller may see it, or 404. */
  async function visibleTrack(p: Principal, trackId: string): Promise<Static<typeof TrackView>> {
    const ingestion = await ingestionByTrack(pool, trackId);
    const ownIngestion = ingestion && (privileged(p) || ingestion.artist_id === p.sub);
    if (ingestion?.catalog_track_id && ingestion.catalog_track_id !== trackId && ownIngestion) {
      // A duplicate upload: it answers with the track that already has this audio.
      const existing = await trackById(pool, ingestion.catalog_track_id);
      if (existing)
        return { ...catalogView(existing, await ingestionView(ingestion), trackId), status: 'duplicate' };
    }
    const track = await trackById(pool, trackId);
    if (track && (track.status !== 'processing' || privileged(p) || track.artist_id === p.sub)) {
      return catalogView(track, ownIngestion ? await ingestionView(ingestion) : null);
    }
    if (ingestion && ownIngestion) {
      return {
        trackId,
        status: ingestion.status,
        catalogTrackId: null,
        artistId: ingestion.artist_id,
        ingestion: await ingestionView(ingestion),
      };
    }
    // Submitted a moment ago: the run exists, its first write has not landed yet.
    const upload = await uploadById(pool, trackId);
    if (upload && upload.kind === 'audio' && (privileged(p) || upload.artist_id === p.sub)) {
      const running = await temporal.workflow
        .getHandle(trackIngestionWorkflowId(trackId))
        .describe()
        .then(
          (d) => d.startTime.toISOString(),
          (err: unknown) => {
            if (err instanceof WorkflowNotFoundError) return null;
            throw err;
          },
        );
      if (running) {
        return {
          trackId,
          status: 'processing',
          catalogTrackId: null,
          artistId: upload.artist_id,
          ingestion: {
            status: 'processing',
            step: 'received',
            failure: null,
            problemType: null,
            reason: null,
            startedAt: running,
            finishedAt: null,
          },
        };
      }
    }
    throw new NotFoundError(`No track ${trackId}.`);
  }

  /** A track the caller may change: its creator (own tracks) or the privileged scopes. */
  async function changeableTrack(p: Principal, trackId: string): Promise<TrackRow> {
    const track = await trackById(pool, trackId);
    if (!track || (!privileged(p) && track.artist_id !== p.sub))
      throw new NotFoundError(`No track ${trackId}.`);
    return track;
  }

  async function startChange(
    request: { headers: Record<string, unknown>; auditDetails: Record<string, unknown> | null },
    trackId: string,
    change: TrackChange,
  ) {
    const key = idempotencyKey(request.headers['idempotency-key'] as string | undefined) ?? randomUUID();
    const workflowId = trackChangeWorkflowId(trackId, key);
    // The key is bound to its request: the run remembers a hash of the change it was started for.
    const requestHash = createHash('sha256').update(JSON.stringify(change)).digest('hex');
    const started = await startOnce<typeof trackChange>(temporal, 'trackChange', {
      taskQueue: TASK_QUEUE,
      workflowId,
      args: [{ trackId, change }],
      memo: { requestHash },
      typedSearchAttributes: [{ key: SEARCH.trackId, value: trackId }],
    });
    if (started.existing) {
      const { memo } = await temporal.workflow.getHandle(workflowId).describe();
      if (memo?.requestHash !== requestHash) {
        throw new CadenzaError(
          'idempotency-key-reused',
          422,
          'Idempotency-Key reused',
          'This Idempotency-Key was used for another change of this track.',
        );
      }
    }
    request.auditDetails = { workflowId, ...(change.kind === 'takedown' ? { reason: change.reason } : {}) };
    return { trackId, ...started, statusUrl: `/v1/tracks/${trackId}` };
  }

  /** Catalog changes and cancellations are actions someone answers for: one audit entry each. */
  const audited = (action: string) => ({
    action,
    subject: (request: { params: unknown }) => ({
      type: 'track',
      id: (request.params as { trackId: string }).trackId,
    }),
  });

  app.post(
    '/tracks',
    {
      config: { scopes: ['creator'] },
      schema: {
        tags: ['catalog'],
        summary: 'Submit an upload as a track: starts its ingestion (track ID = upload ID)',
        description:
          "The artist is the creator token's. Submitting the same upload again answers with the same ingestion.",
        body: Submission,
        response: withProblems({ 202: Accepted, 409: Type.Ref('Problem'), 410: Type.Ref('Problem') }),
      },
    },
    async (request, reply) => {
      const artistId = request.principal.sub;
      const b = request.body;
      if (!(await artistExists(pool, artistId)))
        throw new ForbiddenError('This creator token names no artist in the catalog.');
      const upload = await uploadById(pool, b.uploadId);
      if (!upload || upload.artist_id !== artistId || upload.kind !== 'audio') {
        throw new NotFoundError(`No audio upload ${b.uploadId} of this artist.`);
      }
      const existing = await ingestionByTrack(pool, b.uploadId);
      if (!existing) {
        const checks = await submissionChecks(pool, {
          isrc: b.isrc,
          upc: b.album.upc,
          genres: b.genres,
          territories: b.territories ?? [],
        });
        const invalid = [
          ...(checks.isrc_ok ? [] : [{ field: 'body.isrc', message: 'is not a valid ISRC' }]),
          ...(checks.upc_ok ? [] : [{ field: 'body.album.upc', message: 'has a wrong check digit' }]),
          ...checks.unknown_genres.map((g) => ({ field: 'body.genres', message: `unknown genre ${g}` })),
          ...checks.unknown_countries.map((c) => ({
            field: 'body.territories',
            message: `unknown country ${c}`,
          })),
        ];
        if (invalid.length)
          throw new ValidationError(invalid.map((e) => `${e.field} ${e.message}`).join('; '), invalid);
        if (checks.album_artist && checks.album_artist !== artistId) {
          throw new ConflictError(
            `The UPC ${b.album.upc} belongs to another artist's album.`,
            FAILURE_PROBLEMS.AlbumOfAnotherArtist.slug,
          );
        }
        if (!(await inStaging(uploadKey(b.uploadId)))) {
          throw new CadenzaError(
            'upload-not-received',
            409,
            'Upload not received',
            'The file has not arrived in staging (or has expired); upload it first.',
          );
        }
        if (b.coverUploadId) {
          const cover = await uploadById(pool, b.coverUploadId);
          if (
            !cover ||
            cover.artist_id !== artistId ||
            cover.kind !== 'cover' ||
            !(await inStaging(uploadKey(b.coverUploadId)))
          ) {
            throw new ValidationError('coverUploadId names no received cover upload of this artist.', [
              { field: 'body.coverUploadId', message: 'no received cover upload' },
            ]);
          }
        }
      }
      const trackId = b.uploadId;
      const started = await startOnce<typeof trackIngestion>(temporal, 'trackIngestion', {
        taskQueue: TASK_QUEUE,
        workflowId: trackIngestionWorkflowId(b.uploadId),
        args: [
          {
            trackId,
            uploadId: b.uploadId,
            artistId,
            coverUploadId: b.coverUploadId ?? null,
            submission: {
              title: b.title,
              album: b.album,
              isrc: b.isrc,
              explicit: b.explicit,
              genres: b.genres,
              territories: b.territories ?? null,
              trackNumber: b.trackNumber ?? null,
            },
          },
        ],
        typedSearchAttributes: [
          { key: SEARCH.trackId, value: trackId },
          { key: SEARCH.uploadId, value: b.uploadId },
          { key: SEARCH.artistId, value: artistId },
          { key: SEARCH.status, value: 'processing' },
        ],
      });
      return reply.code(202).send({ trackId, ...started, statusUrl: `/v1/tracks/${trackId}` });
    },
  );

  app.get(
    '/tracks/:trackId',
    {
      config: { scopes: ['listener', 'creator', 'operator', 'service', 'compliance'] },
      schema: {
        tags: ['catalog'],
        summary:
          'A track with its status; its creator also sees the ingestion (progress, or why it was rejected)',
        params: Type.Object({ trackId: Uuid }),
        response: withProblems({ 200: TrackView }),
      },
    },
    async (request) => visibleTrack(request.principal, request.params.trackId),
  );

  app.post(
    '/tracks/:trackId/cancel',
    {
      config: { scopes: ['creator', 'operator'], audit: audited('catalog.ingestion.cancel') },
      schema: {
        tags: ['catalog'],
        summary: 'Cancel an ingestion before publication (everything it made is taken back)',
        params: Type.Object({ trackId: Uuid }),
        response: withProblems({
          202: Type.Object({ trackId: Uuid, status: Type.Literal('canceling') }),
          409: Type.Ref('Problem'),
        }),
      },
    },
    async (request, reply) => {
      const { trackId } = request.params;
      const ingestion = await ingestionByTrack(pool, trackId);
      const upload = await uploadById(pool, trackId);
      const owner = ingestion?.artist_id ?? upload?.artist_id;
      if (!owner || (!privileged(request.principal) && owner !== request.principal.sub)) {
        throw new NotFoundError(`No ingestion ${trackId}.`);
      }
      if (ingestion && ingestion.status !== 'processing') {
        throw new ConflictError(
          `The ingestion has ended (${ingestion.status}); nothing to cancel.`,
          'ingestion-ended',
        );
      }
      await temporal.workflow
        .getHandle(trackIngestionWorkflowId(trackId))
        .cancel()
        .catch((err: unknown) => {
          if (err instanceof WorkflowNotFoundError) throw new NotFoundError(`No ingestion ${trackId}.`);
          throw err;
        });
      return reply.code(202).send({ trackId, status: 'canceling' as const });
    },
  );

  app.patch(
    '/tracks/:trackId',
    {
      config: { scopes: ['creator', 'operator'], audit: audited('catalog.edit') },
      schema: {
        tags: ['catalog'],
        summary: 'Edit a track (title, explicit flag, genres, territories); search and analytics follow',
        headers: IdempotencyHeaders,
        params: Type.Object({ trackId: Uuid }),
        body: Type.Object(
          {
            title: Type.Optional(Type.String({ minLength: 1, maxLength: 300 })),
            explicit: Type.Optional(Type.Boolean()),
            genres: Type.Optional(
              Type.Array(Type.String({ pattern: '^[a-z0-9-]{1,40}$' }), { maxItems: 5, uniqueItems: true }),
            ),
            territories: Type.Optional(
              Type.Union([Type.Array(Country, { minItems: 1, uniqueItems: true }), Type.Null()]),
            ),
          },
          { additionalProperties: false, description: 'the fields to change; the others stay as they are' },
        ),
        response: withProblems({ 202: Accepted }),
      },
    },
    async (request, reply) => {
      const { trackId } = request.params;
      await changeableTrack(request.principal, trackId);
      const b = request.body;
      const checks = await submissionChecks(pool, {
        genres: b.genres ?? [],
        territories: b.territories ?? [],
      });
      const invalid = [
        ...checks.unknown_genres.map((g) => ({ field: 'body.genres', message: `unknown genre ${g}` })),
        ...checks.unknown_countries.map((c) => ({
          field: 'body.territories',
          message: `unknown country ${c}`,
        })),
      ];
      if (invalid.length)
        throw new ValidationError(invalid.map((e) => `${e.field} ${e.message}`).join('; '), invalid);
      return reply.code(202).send(await startChange(request, trackId, { kind: 'edit', edit: b }));
    },
  );

  app.post(
    '/tracks/:trackId/takedown',
    {
      config: { scopes: ['operator', 'compliance', 'creator'], audit: audited('catalog.takedown') },
      schema: {
        tags: ['catalog'],
        summary:
          'Take a track down: no longer streamable (410) or searchable; creators may withdraw their own',
        headers: IdempotencyHeaders,
        params: Type.Object({ trackId: Uuid }),
        body: Type.Object(
          { reason: Type.Union(TAKEDOWN_REASONS.map((r) => Type.Literal(r))) },
          { additionalProperties: false },
        ),
        response: withProblems({ 202: Accepted }),
      },
    },
    async (request, reply) => {
      const { trackId } = request.params;
      await changeableTrack(request.principal, trackId);
      if (!privileged(request.principal) && request.body.reason !== 'artist_request') {
        throw new ForbiddenError('A creator withdraws their own track with reason artist_request.');
      }
      return reply
        .code(202)
        .send(await startChange(request, trackId, { kind: 'takedown', reason: request.body.reason }));
    },
  );

  app.post(
    '/tracks/:trackId/restore',
    {
      config: { scopes: ['operator', 'compliance', 'creator'], audit: audited('catalog.restore') },
      schema: {
        tags: ['catalog'],
        summary: 'Restore a taken-down track (creators: only what they withdrew themselves)',
        headers: IdempotencyHeaders,
        params: Type.Object({ trackId: Uuid }),
        response: withProblems({ 202: Accepted, 409: Type.Ref('Problem') }),
      },
    },
    async (request, reply) => {
      const { trackId } = request.params;
      const track = await changeableTrack(request.principal, trackId);
      if (track.status !== 'taken_down')
        throw new ConflictError('The track is not taken down.', 'not-taken-down');
      if (!privileged(request.principal) && track.taken_down_reason !== 'artist_request') {
        throw new ForbiddenError('This track was taken down by Cadenza; only an operator can restore it.');
      }
      return reply.code(202).send(await startChange(request, trackId, { kind: 'restore' }));
    },
  );

  app.get(
    '/tracks/:trackId/stream',
    {
      config: { scopes: ['listener', 'service'] },
      schema: {
        tags: ['catalog'],
        summary: 'A short-lived stream URL: free tier up to 160 kbps, premium 320',
        params: Type.Object({ trackId: Uuid }),
        querystring: Type.Object({
          quality: Type.Optional(Type.Union(QUALITIES.map((q) => Type.Literal(q)))),
          userId: Type.Optional(Type.String({ format: 'uuid', description: 'service tokens: the listener' })),
        }),
        response: withProblems({
          200: StreamAnswer,
          409: Type.Ref('Problem'),
          410: Type.Ref('Problem'),
          451: Type.Ref('Problem'),
        }),
      },
    },
    async (request) => {
      const { trackId } = request.params;
      const userId = actingUser(request.principal, request.query.userId, {
        anyone: ['service'],
        field: 'querystring.userId',
      });
      const [track, listener] = await Promise.all([trackById(pool, trackId), listenerById(pool, userId)]);
      if (!listener) throw new NotFoundError(`No listener ${userId}.`);
      if (!track) throw new NotFoundError(`No track ${trackId}.`);
      if (track.status === 'taken_down')
        throw new CadenzaError(
          'track-taken-down',
          410,
          'Track taken down',
          'This track is no longer available.',
        );
      if (track.status !== 'available' || !track.renditions.length) {
        throw new CadenzaError(
          'track-not-ready',
          409,
          'Track not ready',
          'This track is not streamable yet.',
        );
      }
      if (track.territories && !track.territories.includes(listener.country)) {
        throw new CadenzaError(
          'not-in-territory',
          451,
          'Not available in your country',
          `This track is not licensed for ${listener.country}.`,
        );
      }
      if (track.explicit && listener.parental_controls) {
        throw new CadenzaError(
          'explicit-blocked',
          403,
          'Blocked by parental controls',
          'Parental controls hide explicit tracks.',
        );
      }
      const allowed = new Set(qualitiesFor(listener.tier).map((r) => r.quality));
      const usable = track.renditions.filter((r) => allowed.has(r.quality as Quality));
      const wanted = request.query.quality;
      if (wanted && !allowed.has(wanted)) {
        throw new CadenzaError(
          'premium-required',
          403,
          'Premium required',
          `The ${wanted} quality needs premium; free streams up to 160 kbps.`,
        );
      }
      const rendition = wanted
        ? usable.find((r) => r.quality === wanted)
        : [...usable].sort((a, b) => b.bitrateKbps - a.bitrateKbps)[0];
      if (!rendition) throw new NotFoundError(`No ${wanted ?? ''} rendition of this track.`);
      const ttl = deps.streamUrlTtlSeconds;
      const url = await deps.signer.presignedGetObject(audio, rendition.objectKey, ttl, {
        'response-content-type': 'audio/ogg',
      });
      return {
        trackId,
        url,
        expiresAt: new Date(Date.now() + ttl * 1000).toISOString(),
        quality: rendition.quality,
        bitrateKbps: rendition.bitrateKbps,
        codec: rendition.codec,
        loudness: {
          integratedLufs: numberOrNull(track.loudness_lufs),
          truePeakDbtp: numberOrNull(track.true_peak_dbtp),
        },
        renditions: usable.map((r) => ({ quality: r.quality, bitrateKbps: r.bitrateKbps, codec: r.codec })),
      };
    },
  );
};

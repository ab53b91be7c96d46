import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { PassThrough, Transform, type Readable } from 'node:stream';
import type { Client as MinioClient } from 'minio';

/** An object of a backup: where it is, how big, and its SHA-256 (checked before anything is restored). */
export interface StoredObject {
  key: string;
  bytes: number;
  sha256: string;
}

/** Counts and hashes the bytes passing through. */
export class Digest extends Transform {
  bytes = 0;
  private readonly hash = createHash('sha256');
  private hex: string | undefined;
  constructor(private readonly onProgress?: (bytes: number) => void) {
    super();
  }
  override _transform(
    chunk: Buffer,
    _enc: BufferEncoding,
    done: (err?: Error | null, data?: Buffer) => void,
  ) {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    this.onProgress?.(this.bytes);
    done(null, chunk);
  }
  /** The hash of everything that passed; read once the stream has ended. */
  get sha256(): string {
    this.hex ??= this.hash.digest('hex');
    return this.hex;
  }
}

/** Objects smaller than this go up in one request (a multipart upload needs at least one part). */
const SINGLE_REQUEST_BYTES = 1024 * 1024;

/**
 * Streams `source` into the bucket (a multipart upload of unknown size, never the whole object in memory),
 * hashing it on the way; a short object (an empty table's export) goes up in one request. A failing source
 * fails the upload: the object is not completed.
 */
export async function streamToObject(
  minio: MinioClient,
  bucket: string,
  key: string,
  source: Readable,
  onProgress?: (bytes: number) => void,
): Promise<StoredObject> {
  const digest = new Digest(onProgress);
  source.on('error', (err) => digest.destroy(err));
  source.pipe(digest);
  const chunks = digest[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const head: Buffer[] = [];
  let size = 0;
  let ended = false;
  while (size < SINGLE_REQUEST_BYTES) {
    const next = await chunks.next();
    if (next.done) {
      ended = true;
      break;
    }
    head.push(next.value);
    size += next.value.length;
  }
  if (ended) {
    const whole = Buffer.concat(head);
    await minio.putObject(bucket, key, whole, whole.length);
  } else {
    const body = new PassThrough();
    const feeding = (async () => {
      for (const c of head) if (!body.write(c)) await once(body, 'drain');
      for (;;) {
        const next = await chunks.next();
        if (next.done) break;
        if (!body.write(next.value)) await once(body, 'drain');
      }
      body.end();
    })();
    // The client does not see an error of the stream it reads (it would wait for the end forever): race it.
    const failed = feeding.then(
      () => new Promise<never>(() => undefined),
      (err: unknown) => {
        body.destroy(err as Error);
        throw err;
      },
    );
    await Promise.race([minio.putObject(bucket, key, body), failed]);
    await feeding;
  }
  return { key, bytes: digest.bytes, sha256: digest.sha256 };
}

/** Writes a small object (a manifest, a DDL) and returns its description. */
export async function putSmallObject(
  minio: MinioClient,
  bucket: string,
  key: string,
  content: string | Buffer,
): Promise<StoredObject> {
  const buf = Buffer.isBuffer(content) ? content : Buffer.from(content, 'utf8');
  await minio.putObject(bucket, key, buf, buf.length);
  return { key, bytes: buf.length, sha256: createHash('sha256').update(buf).digest('hex') };
}

export async function readSmallObject(minio: MinioClient, bucket: string, key: string): Promise<Buffer> {
  const stream = await minio.getObject(bucket, key);
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** Every key under a prefix. */
export async function listKeys(minio: MinioClient, bucket: string, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const o of minio.listObjectsV2(bucket, prefix, true) as AsyncIterable<{ name?: string }>) {
    if (o.name) keys.push(o.name);
  }
  return keys;
}

/** A read of a stored object that fails, once it ends, when its bytes are not the ones the manifest names. */
export async function verifiedObjectStream(
  minio: MinioClient,
  bucket: string,
  object: StoredObject,
): Promise<{ stream: Readable; verdict: () => string | null; digest: Digest }> {
  const digest = new Digest();
  const source = await minio.getObject(bucket, object.key);
  const stream = source.pipe(digest);
  source.on('error', (err) => digest.destroy(err));
  return {
    stream,
    digest,
    verdict: () => {
      const sha = digest.sha256;
      if (digest.bytes !== object.bytes)
        return `${object.key}: ${digest.bytes} bytes, the manifest says ${object.bytes}`;
      if (sha !== object.sha256)
        return `${object.key}: SHA-256 ${sha.slice(0, 12)}…, the manifest says ${object.sha256.slice(0, 12)}…`;
      return null;
    },
  };
}

import { Client } from 'minio';
import type { Config } from '../config';
import { measureHealth, type Health } from './health';

/** Cadenza's buckets, all private (no bucket policy: only signed requests reach them). */
export const BUCKETS = [
  'staging',
  'audio',
  'covers',
  'royalties',
  'exports',
  'compliance',
  'backups',
] as const;
export type Bucket = (typeof BUCKETS)[number];

/** A bucket's name under the configured prefix (CADENZA_MINIO_BUCKET_PREFIX). */
export const bucketName = (bucket: Bucket, prefix = '') => `${prefix}${bucket}`;

/**
 * `partSize` bounds the memory of an upload of unknown size (a streamed backup): without it the client
 * sizes parts for the largest possible object, over 500 MB each.
 */
export function createMinio(m: Config['minio'], opts: { partSize?: number } = {}): Client {
  return new Client({
    endPoint: m.endPoint,
    port: m.port,
    useSSL: m.useSSL,
    accessKey: m.accessKey,
    secretKey: m.secretKey,
    ...(opts.partSize ? { partSize: opts.partSize } : {}),
  });
}

/**
 * A client that only signs URLs for clients outside (uploads, streams): signed for the public endpoint,
 * with the region given so signing needs no request.
 */
export function createMinioSigner(m: Config['minio']): Client {
  return new Client({
    endPoint: m.publicEndPoint,
    port: m.publicPort,
    useSSL: m.useSSL,
    accessKey: m.accessKey,
    secretKey: m.secretKey,
    region: m.region,
  });
}

export function minioHealth(client: Client): Promise<Health> {
  return measureHealth('minio', () => client.listBuckets());
}

import type { Client } from 'minio';
import { BUCKETS, bucketName, type Bucket } from '../../lib/clients/minio';

/** Write-once buckets: COMPLIANCE-mode object lock (GDPR certificates; royalty statements). */
export const LOCKED_BUCKETS: readonly Bucket[] = ['compliance', 'royalties'];

/** Uploads not promoted within this many days are removed by MinIO's lifecycle rules. */
export const STAGING_EXPIRY_DAYS = 2;
/** Exports are links valid for 7 days; the objects go a day later. */
export const EXPORTS_EXPIRY_DAYS = 8;
/** Proofs and statements are kept this many days (ten years). */
export const LOCK_RETENTION_DAYS = 3650;

export interface MinioLayout {
  /** Prepended to every bucket name (config CADENZA_MINIO_BUCKET_PREFIX; scratch test buckets). */
  prefix?: string;
  /** Object-lock retention of the locked buckets; tests use 1 day. */
  lockDays?: number;
}

export async function migrateMinio(client: Client, layout: MinioLayout = {}): Promise<string[]> {
  const name = (b: Bucket) => bucketName(b, layout.prefix);
  const created: string[] = [];
  for (const bucket of BUCKETS) {
    if (await client.bucketExists(name(bucket))) {
      if (LOCKED_BUCKETS.includes(bucket)) await ensureLockable(client, name(bucket));
      continue;
    }
    // Object lock can only be switched on when a bucket is made.
    const locked = LOCKED_BUCKETS.includes(bucket);
    await client.makeBucket(name(bucket), '', locked ? { ObjectLocking: true } : undefined);
    created.push(name(bucket));
  }
  for (const bucket of LOCKED_BUCKETS) {
    await client.setObjectLockConfig(name(bucket), {
      mode: 'COMPLIANCE',
      unit: 'Days',
      validity: layout.lockDays ?? LOCK_RETENTION_DAYS,
    });
  }
  const expire = (id: string, days: number) => ({
    Rule: [{ ID: id, Status: 'Enabled', Filter: { Prefix: '' }, Expiration: { Days: days } }],
  });
  await client.setBucketLifecycle(name('staging'), expire('expire-staging', STAGING_EXPIRY_DAYS));
  await client.setBucketLifecycle(name('exports'), expire('expire-exports', EXPORTS_EXPIRY_DAYS));
  return created;
}

/**
 * A bucket made before it was write-once (royalties, before settlements wrote to it) cannot gain object
 * lock: an empty one is made again with it; one holding objects is a person's decision, so it stops here.
 */
async function ensureLockable(client: Client, bucket: string): Promise<void> {
  const locked = await (
    client.getObjectLockConfig(bucket) as unknown as Promise<{ objectLockEnabled?: string }>
  ).then(
    (c) => c.objectLockEnabled === 'Enabled',
    () => false,
  );
  if (locked) return;
  const first = await new Promise<boolean>((resolve, reject) => {
    const stream = client.listObjectsV2(bucket, '', true);
    stream.once('data', () => {
      resolve(true);
      stream.destroy();
    });
    stream.once('end', () => resolve(false));
    stream.once('error', reject);
  });
  if (first) {
    throw new Error(
      `bucket ${bucket} must be write-once (object lock) but was made without it and holds objects: ` +
        'copy them out, remove the bucket and run the migration again',
    );
  }
  await client.removeBucket(bucket);
  await client.makeBucket(bucket, '', { ObjectLocking: true });
}

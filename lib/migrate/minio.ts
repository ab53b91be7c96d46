import type { Client } from 'minio';

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

/** Uploads not promoted within this many days are removed by MinIO's lifecycle rules. */
export const STAGING_EXPIRY_DAYS = 2;
/** Compliance proofs are write-once: COMPLIANCE-mode object lock, kept this many days. */
export const COMPLIANCE_RETENTION_DAYS = 3650;

export async function migrateMinio(client: Client): Promise<string[]> {
  const created: string[] = [];
  for (const bucket of BUCKETS) {
    if (await client.bucketExists(bucket)) continue;
    // Object lock can only be switched on when a bucket is made.
    await client.makeBucket(bucket, '', bucket === 'compliance' ? { ObjectLocking: true } : undefined);
    created.push(bucket);
  }
  await client.setObjectLockConfig('compliance', {
    mode: 'COMPLIANCE',
    unit: 'Days',
    validity: COMPLIANCE_RETENTION_DAYS,
  });
  await client.setBucketLifecycle('staging', {
    Rule: [
      {
        ID: 'expire-staging',
        Status: 'Enabled',
        Filter: { Prefix: '' },
        Expiration: { Days: STAGING_EXPIRY_DAYS },
      },
    ],
  });
  await client.setBucketLifecycle('exports', {
    Rule: [{ ID: 'expire-exports', Status: 'Enabled', Filter: { Prefix: '' }, Expiration: { Days: 30 } }],
  });
  return created;
}

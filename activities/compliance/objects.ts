import type { Client } from 'minio';
import type { DatabasePool } from 'slonik';
import { BUCKETS, bucketName, type Bucket } from '../../lib/clients/minio';
import { LOCKED_BUCKETS } from '../../sql/migrate/minio';
import type { Counts } from '../../workflows/compliance/contract';
import { storeStatus, storeWorking } from './requests';

/**
 * Step 6 (objects): every object about a user lives under `users/<userId>/` in its bucket (their earlier
 * exports in `exports`, anything else a slice keeps for them), so erasure removes that prefix in every
 * bucket that is not write-once. Write-once buckets (GDPR certificates, royalty statements) hold no
 * personal data by rule. Verification lists the prefix again and reads every key of `exports`.
 */

export const userPrefix = (userId: string) => `users/${userId}/`;
export const exportKey = (userId: string, requestId: string) =>
  `${userPrefix(userId)}exports/${requestId}.zip`;

const ERASABLE_BUCKETS = BUCKETS.filter((b) => !LOCKED_BUCKETS.includes(b));

async function keys(minio: Client, bucket: string, prefix: string): Promise<string[]> {
  const out: string[] = [];
  const listing = minio.listObjectsV2(bucket, prefix, true) as AsyncIterable<{ name?: string }>;
  for await (const o of listing) if (o.name) out.push(o.name);
  return out;
}

export function createObjectErasureActivities(deps: {
  pool: DatabasePool;
  minio: Client;
  bucketPrefix: string;
}) {
  const { pool, minio } = deps;
  const name = (b: Bucket) => bucketName(b, deps.bucketPrefix);

  return {
    async eraseObjects(i: { requestId: string; userId: string }): Promise<Counts> {
      const found: Counts = {};
      const byBucket = new Map<Bucket, string[]>();
      for (const b of ERASABLE_BUCKETS) {
        const k = await keys(minio, name(b), userPrefix(i.userId));
        if (k.length) {
          byBucket.set(b, k);
          found[b] = k.length;
        }
      }
      const first = await storeWorking(pool, i.requestId, 'minio', found);
      for (const [b, k] of byBucket) await minio.removeObjects(name(b), k);
      await storeStatus(pool, i.requestId, 'minio', 'done');
      return first;
    },

    async verifyObjects(i: {
      requestId: string;
      userId: string;
    }): Promise<{ clean: boolean; residue: Counts; checked: number }> {
      const residue: Counts = {};
      for (const b of ERASABLE_BUCKETS) {
        // Without the trailing slash: a key that merely starts with the ID counts too.
        const k = await keys(minio, name(b), `users/${i.userId}`);
        if (k.length) residue[b] = k.length;
      }
      const anywhere = (await keys(minio, name('exports'), '')).filter((k) => k.includes(i.userId));
      if (anywhere.length) residue.exports = Math.max(residue.exports ?? 0, anywhere.length);
      const clean = Object.keys(residue).length === 0;
      await storeStatus(pool, i.requestId, 'minio', clean ? 'verified' : 'residue', clean ? null : residue);
      return { clean, residue, checked: ERASABLE_BUCKETS.length };
    },
  };
}

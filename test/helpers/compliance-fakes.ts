import type { ComplianceActivities } from '../../activities/compliance';
import type { RecordedRequest } from '../../activities/compliance/requests';
import type { Counts, VerifiedStore } from '../../workflows/compliance/contract';

/**
 * Mocked compliance activities for time-skipping workflow tests and recorded histories: plain functions
 * that log each call in order and answer like the real ones. `residue(store, n)` makes a store's
 * verification find residue n more times (a store that keeps its data, or is down).
 */
export function fakeCompliance(opts: { known?: boolean; erased?: boolean; joined?: string } = {}) {
  const calls: { name: string; input: unknown }[] = [];
  const residueLeft = new Map<VerifiedStore, number>();
  let releaseAll = false;
  const log = (name: string, input: unknown) => void calls.push({ name, input });
  const verify = (store: VerifiedStore) => async (input: unknown) => {
    log(`verify:${store}`, input);
    const left = residueLeft.get(store) ?? 0;
    if (left > 0 && !releaseAll) {
      residueLeft.set(store, left - 1);
      return { clean: false, residue: { [store]: 1 }, checked: 1 };
    }
    return { clean: true, residue: {}, checked: 1 };
  };
  const erase = (store: VerifiedStore, found: Counts) => async (input: unknown) => {
    log(`erase:${store}`, input);
    return found;
  };

  const activities: ComplianceActivities = {
    async recordRequest(r): Promise<RecordedRequest> {
      log('recordRequest', r);
      return {
        known: opts.known ?? true,
        erased: opts.erased ?? false,
        joined: opts.joined ?? null,
        receivedAt: r.receivedAt,
        dueAt: r.dueAt,
        extendedDueAt: null,
      };
    },
    async setRequestStatus(i) {
      log('setRequestStatus', i);
    },
    async escalateRequest(i) {
      log('escalateRequest', i);
    },
    async extendRequest(i) {
      log('extendRequest', i);
    },
    async completeRequest(i) {
      log('completeRequest', i);
    },
    async stopNewData(i) {
      log('stopNewData', i);
      return { deniedVersion: 7, suppressionVersion: 8 };
    },
    async awaitListHeld(i) {
      log(`awaitListHeld:${i.list}`, i);
      return { holders: 1 };
    },
    async verifyNewDataStopped(i) {
      log('verifyNewDataStopped', i);
      return { clean: true, residue: {} };
    },
    async endSubscriptions(i) {
      log('endSubscriptions', i);
      return { canceled: 1 };
    },
    async detachPaymentMethods(i) {
      log('detachPaymentMethods', i);
      return { detached: 1 };
    },
    erasePostgres: erase('postgres', { session_logs: 3 }),
    verifyPostgres: verify('postgres'),
    eraseClickHouse: erase('clickhouse', { play_ticks: 200, plays: 2 }),
    verifyClickHouse: verify('clickhouse'),
    eraseSearch: erase('opensearch', { playlists: 2 }),
    verifySearch: verify('opensearch'),
    eraseObjects: erase('minio', { exports: 1 }),
    verifyObjects: verify('minio'),
    async kafkaRetention(i) {
      log('kafkaRetention', i);
      return {
        topics: { 'play-ticks': { retentionMs: 604_800_000 } },
        retainedUntil: new Date(i.receivedAt + 604_800_000).toISOString(),
      };
    },
    async writeCertificate(c) {
      log('writeCertificate', c);
      return { key: `gdpr/erasure/${c.requestId}.json`, sha256: 'a'.repeat(64) };
    },
    async buildExport(i) {
      log('buildExport', i);
      return { key: `users/u/exports/${i.requestId}.zip`, bytes: 1234, sha256: 'b'.repeat(64), counts: {} };
    },
  };

  return {
    activities,
    calls,
    names: () => calls.map((c) => c.name),
    residue(store: VerifiedStore, times: number) {
      residueLeft.set(store, times);
    },
    /** Residue without end, until `release()`. */
    hold(store: VerifiedStore) {
      releaseAll = false;
      residueLeft.set(store, Number.MAX_SAFE_INTEGER);
    },
    release() {
      releaseAll = true;
    },
  };
}

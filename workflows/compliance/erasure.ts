import {
  CancellationScope,
  isCancellation,
  proxyActivities,
  sleep,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { ComplianceActivities } from '../../activities/compliance';
import { dueAt } from '../../domain/compliance/deadline';
import {
  GdprFailure,
  SEARCH,
  VERIFICATION,
  VERIFIED_STORES,
  type Counts,
  type ErasureInput,
  type ErasureResult,
  type StoreOutcome,
  type VerifiedStore,
} from './contract';
import { RequestRun } from './request-run';

/**
 * GDPR erasure (Art. 17) of one person, ID `gdpr-erasure-<requestId>`, queue `compliance`. The order is
 * the contract: record the request; stop new data (tokens, play-ticks, sinks) and wait until every running
 * API and sink holds it; end subscriptions and detach payment methods; erase PostgreSQL, ClickHouse,
 * OpenSearch and MinIO side by side; verify each with an independent query, erasing again where residue
 * is found; state Kafka's retention; write the certificate. A store that is down makes its step retry —
 * for days if need be — never skip; the deadline escalates at day 25 meanwhile.
 */

// Steps retry until their store answers: an erasure is never skipped, only late (and then escalated).
const retry = {
  initialInterval: '1 second',
  backoffCoefficient: 2,
  maximumInterval: '2 minutes',
  nonRetryableErrorTypes: [GdprFailure.BadUserId],
};
const book = proxyActivities<ComplianceActivities>({ startToCloseTimeout: '2 minutes', retry });
// Steps that wait on others (holders, runs, mutations) or scan: they heartbeat, so a dead worker is seen.
const long = proxyActivities<ComplianceActivities>({
  startToCloseTimeout: '2 hours',
  heartbeatTimeout: '20 seconds',
  retry,
});
const search = proxyActivities<ComplianceActivities>({ startToCloseTimeout: '15 minutes', retry });

const STEPS: Record<
  VerifiedStore,
  {
    erase: (i: { requestId: string; userId: string }) => Promise<Counts>;
    verify: (i: { requestId: string; userId: string }) => Promise<{ clean: boolean; residue: Counts }>;
  }
> = {
  postgres: { erase: book.erasePostgres, verify: book.verifyPostgres },
  clickhouse: { erase: long.eraseClickHouse, verify: long.verifyClickHouse },
  opensearch: { erase: search.eraseSearch, verify: search.verifySearch },
  minio: { erase: search.eraseObjects, verify: search.verifyObjects },
};

/** Residue found: the store's step runs again after this pause, doubling up to six hours. */
const FIRST_RETRY_MS = 5_000;
const LAST_RETRY_MS = 6 * 3_600_000;

export async function gdprErasure(input: ErasureInput): Promise<ErasureResult> {
  const { requestId, userId } = input;
  const { workflowId } = workflowInfo();
  const run = new RequestRun('erasure', requestId);
  const receivedAt = Date.now();
  const recorded = await book.recordRequest({
    requestId,
    userId,
    kind: 'erasure',
    requester: input.requester,
    reason: input.reason,
    workflowId,
    receivedAt,
    dueAt: dueAt(receivedAt),
  });
  Object.assign(run, {
    receivedAt: recorded.receivedAt,
    dueAt: recorded.dueAt,
    extendedDueAt: recorded.extendedDueAt,
  });
  if (recorded.joined) {
    run.finished = true;
    upsertSearchAttributes([{ key: SEARCH.status, value: 'joined' }]);
    return { requestId, outcome: 'joined', joined: recorded.joined, escalated: false };
  }
  if (!recorded.known) {
    run.finished = true;
    upsertSearchAttributes([{ key: SEARCH.status, value: 'failed' }]);
    return { requestId, outcome: 'unknown_user', escalated: false };
  }

  try {
    return await run.underDeadline(() => erase(input, run, workflowId));
  } catch (err) {
    if (!isCancellation(err)) throw err;
    // An operator stopped it: what was erased stays erased, the person stays denied; recorded and closed.
    await CancellationScope.nonCancellable(() =>
      book.completeRequest({
        requestId,
        workflowId,
        kind: 'erasure',
        status: 'failed',
        outcome: 'canceled',
        failureReason: 'Canceled by an operator before it was verified; start a new request to finish it.',
      }),
    );
    run.status = 'failed';
    upsertSearchAttributes([{ key: SEARCH.status, value: 'failed' }]);
    return { requestId, outcome: 'canceled', escalated: run.escalated };
  }
}

async function erase(input: ErasureInput, run: RequestRun, workflowId: string): Promise<ErasureResult> {
  const ids = { requestId: input.requestId, userId: input.userId };
  const outcomes: StoreOutcome[] = [];
  const done = (o: Omit<StoreOutcome, 'method' | 'verifiedAt'>) =>
    outcomes.push({ ...o, method: VERIFICATION[o.store], verifiedAt: new Date(Date.now()).toISOString() });

  // 2. No new data: tokens refused, ticks refused and dropped — held by every running API and sink.
  await run.setStatus('in_progress');
  run.store('auth', 'working');
  const versions = await book.stopNewData(ids);
  for (let pause = FIRST_RETRY_MS; ; pause = Math.min(pause * 2, LAST_RETRY_MS)) {
    const [apis, sinks] = await Promise.all([
      long.awaitListHeld({ ...ids, list: 'denied_subjects', version: versions.deniedVersion }),
      long.awaitListHeld({ ...ids, list: 'play_suppressions', version: versions.suppressionVersion }),
    ]);
    if ((await book.verifyNewDataStopped({ ...ids, versions })).clean) {
      run.store('auth', 'verified');
      done({ store: 'auth', found: { apis: apis.holders, sinks: sinks.holders }, rounds: 1 });
      break;
    }
    await sleep(pause);
  }

  // 3. Subscriptions end through their business cancel; payment methods are detached at the provider.
  run.store('subscriptions', 'working');
  const { canceled } = await long.endSubscriptions(ids);
  run.store('subscriptions', 'done');
  done({ store: 'subscriptions', found: { canceled }, rounds: 1 });
  run.store('payments', 'working');
  const { detached } = await book.detachPaymentMethods(ids);
  run.store('payments', 'done');
  done({ store: 'payments', found: { detached }, rounds: 1 });

  // 4–6. Every store at once; 9. each verified independently, erased again while residue remains.
  const found: Partial<Record<VerifiedStore, Counts>> = {};
  const rounds: Record<VerifiedStore, number> = { postgres: 0, clickhouse: 0, opensearch: 0, minio: 0 };
  const eraseIn = async (store: VerifiedStore) => {
    run.store(store, 'working');
    const counts = await STEPS[store].erase(ids);
    found[store] ??= counts;
    rounds[store]++;
    run.store(store, 'done');
  };
  await Promise.all(VERIFIED_STORES.map(eraseIn));
  await run.setStatus('verifying');
  let pending: VerifiedStore[] = [...VERIFIED_STORES];
  for (let pause = FIRST_RETRY_MS; ; pause = Math.min(pause * 2, LAST_RETRY_MS)) {
    const checked = await Promise.all(
      pending.map(async (store) => ({ store, ...(await STEPS[store].verify(ids)) })),
    );
    for (const c of checked) {
      run.store(c.store, c.clean ? 'verified' : 'residue');
      if (c.clean) done({ store: c.store, found: found[c.store] ?? {}, rounds: rounds[c.store] });
    }
    pending = checked.filter((c) => !c.clean).map((c) => c.store);
    if (!pending.length) break;
    await sleep(pause);
    await Promise.all(pending.map(eraseIn));
  }

  // 7. Kafka keeps records for its retention: stated in the proof; the sinks drop the user meanwhile.
  run.store('kafka', 'working');
  const kafka = await book.kafkaRetention({ requestId: input.requestId, receivedAt: run.receivedAt });
  run.store('kafka', 'done');

  // 10. The certificate, write-once, its SHA-256 in the audit log; then the request is complete.
  const order = ['auth', 'subscriptions', 'payments', ...VERIFIED_STORES];
  outcomes.sort((a, b) => order.indexOf(a.store) - order.indexOf(b.store));
  const certificate = await book.writeCertificate({
    requestId: input.requestId,
    workflowId,
    userId: input.userId,
    reason: input.reason,
    receivedAt: run.receivedAt,
    dueAt: run.extendedDueAt ?? run.dueAt,
    completedAt: Date.now(),
    escalated: run.escalated,
    stores: outcomes,
    kafka,
  });
  await book.completeRequest({
    requestId: input.requestId,
    workflowId,
    kind: 'erasure',
    status: 'completed',
    outcome: 'erased',
    certificate,
  });
  await run.setStatus('completed');
  return {
    requestId: input.requestId,
    outcome: 'erased',
    certificateKey: certificate.key,
    certificateSha256: certificate.sha256,
    escalated: run.escalated,
  };
}

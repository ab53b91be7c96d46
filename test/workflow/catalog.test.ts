import { randomUUID } from 'node:crypto';
import { WorkflowFailedError } from '@temporalio/client';
import { CancelledFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { reindexSearch, trackChange, trackIngestion } from '../../workflows';
import {
  CatalogFailure,
  ingestionProgress,
  MEDIA_TASK_QUEUE,
  TASK_QUEUE,
  trackIngestionWorkflowId,
  type TrackIngestionInput,
} from '../../workflows/catalog/contract';
import { fakeCatalog } from '../helpers/catalog-fakes';
import { timeSkippingEnv, workflowBundle, workflowSinks } from '../helpers/env';

/**
 * The catalog workflows' rules with mocked activities: the order of the ingestion's steps, what each kind of
 * refusal takes back (saga), cancellation as an orderly end, duplicates, changes, and the re-index.
 */
jest.setTimeout(30_000);

/** The call log with each pair of steps that run in parallel put in one order. */
const ordered = (calls: string[]) =>
  calls
    .join(',')
    .replace('upsertTrackDimension,indexTrack', 'indexTrack,upsertTrackDimension')
    .replace('removeTrackDimension,unindexTrack', 'unindexTrack,removeTrackDimension')
    .split(',');

describe('catalog workflows (time-skipping, mocked catalog activities)', () => {
  let env: TestWorkflowEnvironment;
  const fake = fakeCatalog();
  let workers: Worker[];
  let running: Promise<void>[];

  beforeAll(async () => {
    env = await timeSkippingEnv();
    const bundle = await workflowBundle();
    workers = await Promise.all(
      [TASK_QUEUE, MEDIA_TASK_QUEUE].map((taskQueue) =>
        Worker.create({
          connection: env.nativeConnection,
          taskQueue,
          workflowBundle: bundle,
          sinks: workflowSinks(),
          activities: fake.activities,
          // Heartbeats (which bring cancellation to an activity) go out at once, as the media worker's do.
          maxHeartbeatThrottleInterval: '100ms',
        }),
      ),
    );
    running = workers.map((w) => w.run());
  }, 60_000);
  afterAll(async () => {
    workers?.forEach((w) => w.shutdown());
    await Promise.all(running ?? []);
    await env?.teardown();
  });

  function input(over: Partial<TrackIngestionInput> = {}): TrackIngestionInput {
    const uploadId = randomUUID();
    return {
      trackId: uploadId,
      uploadId,
      artistId: randomUUID(),
      submission: {
        title: 'Test',
        album: { title: 'Album', upc: '812345678905', releaseDate: '2025-01-01' },
        isrc: 'DEA012500001',
        explicit: false,
        genres: ['pop'],
      },
      ...over,
    };
  }
  const start = (i: TrackIngestionInput) =>
    env.client.workflow.start(trackIngestion, {
      taskQueue: TASK_QUEUE,
      workflowId: trackIngestionWorkflowId(i.uploadId),
      args: [i],
    });

  it('runs the steps in order and publishes: catalog write, then index and dimension, staging cleared', async () => {
    fake.script({});
    const h = await start(input({ coverUploadId: randomUUID() }));
    const result = await h.result();
    expect(result).toMatchObject({
      status: 'available',
      catalogTrackId: h.workflowId.replace('track-ingestion-', ''),
      failure: null,
    });
    expect(result.ffmpegCpuMs).toBe(5800);
    expect(ordered(fake.calls)).toEqual([
      'recordIngestion',
      'inspectUpload',
      'checkSubmission',
      'findDuplicate',
      'prepareCover',
      'measureLoudness',
      'transcodeLadder',
      'promoteTrack',
      'writeCatalog',
      'indexTrack',
      'upsertTrackDimension',
      'discardStaging',
      'finishIngestion',
      'finished:available:done:-',
    ]);
    expect(await h.query(ingestionProgress)).toMatchObject({
      status: 'available',
      step: 'done',
      stepsDone: [
        'inspect',
        'validate',
        'dedup',
        'cover',
        'loudness',
        'transcode',
        'promote',
        'catalog',
        'index',
      ],
    });
  });

  it('refuses a file the rules refuse before any work on it, and clears staging only', async () => {
    fake.script({ inspection: { durationMs: 12_000 } });
    const result = await (await start(input())).result();
    expect(result).toMatchObject({
      status: 'rejected',
      failure: CatalogFailure.TooShort,
      reason: expect.stringMatching(/at least 30 s/),
    });
    expect(fake.calls).toEqual([
      'recordIngestion',
      'inspectUpload',
      'discardStaging',
      'finishIngestion',
      'finished:rejected:validate:TooShort',
    ]);
  });

  it('refuses a file that decodes to less than it announces, after the loudness pass', async () => {
    fake.script({ decodedMs: 60_000 });
    const result = await (await start(input())).result();
    expect(result).toMatchObject({ status: 'rejected', failure: CatalogFailure.TruncatedFile });
    expect(fake.calls).not.toContain('transcodeLadder');
    expect(fake.calls.at(-1)).toBe('finished:rejected:loudness:TruncatedFile');
  });

  it('refuses bad cover art without transcoding', async () => {
    fake.script({ cover: 'not-square' });
    const result = await (await start(input({ coverUploadId: randomUUID() }))).result();
    expect(result).toMatchObject({ status: 'rejected', failure: CatalogFailure.CoverNotSquare });
    expect(fake.calls).not.toContain('measureLoudness');
  });

  it('answers an identical upload with the existing track, and does no media work', async () => {
    fake.script({ duplicateOf: 'existing-track' });
    const result = await (await start(input())).result();
    expect(result).toMatchObject({ status: 'duplicate', catalogTrackId: 'existing-track' });
    expect(fake.calls).toEqual([
      'recordIngestion',
      'inspectUpload',
      'checkSubmission',
      'findDuplicate',
      'discardStaging',
      'finishIngestion',
      'finished:duplicate:dedup:-',
    ]);
  });

  it('takes everything back when the catalog write refuses after promotion (saga)', async () => {
    fake.script({
      refuse: {
        activity: 'writeCatalog',
        failure: CatalogFailure.IsrcInUse,
        message: 'ISRC taken meanwhile',
      },
    });
    const result = await (await start(input())).result();
    expect(result).toMatchObject({
      status: 'rejected',
      failure: CatalogFailure.IsrcInUse,
      reason: 'ISRC taken meanwhile',
    });
    // The search documents and the dimension row go together (in parallel), after the rows, before the objects.
    expect(ordered(fake.calls.slice(fake.calls.indexOf('writeCatalog')))).toEqual([
      'writeCatalog',
      'removeIngestedTrack',
      'unindexTrack',
      'removeTrackDimension',
      'removePromotedObjects',
      'discardStaging',
      'finishIngestion',
      'finished:rejected:catalog:IsrcInUse',
    ]);
  });

  it('gives up its promoted objects when another upload of the same audio won the catalog write', async () => {
    fake.script({ writeFindsDuplicate: 'winner' });
    const result = await (await start(input())).result();
    expect(result).toMatchObject({ status: 'duplicate', catalogTrackId: 'winner' });
    expect(fake.calls).toContain('removePromotedObjects');
    expect(fake.calls).not.toContain('indexTrack');
  });

  it('ends a cancelled ingestion in order: the transcode stops, staging is cleared, the run shows Canceled', async () => {
    fake.script({ transcodeUntilCancelled: true });
    const h = await start(input());
    while ((await h.query(ingestionProgress)).step !== 'transcode')
      await new Promise((r) => setTimeout(r, 20));
    await h.cancel();
    const err = await h.result().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    expect((err as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
    expect(fake.calls.slice(fake.calls.indexOf('transcodeLadder'))).toEqual([
      'transcodeLadder',
      'discardStaging',
      'finishIngestion',
      'finished:canceled:transcode:-',
    ]);
    expect(await h.query(ingestionProgress)).toMatchObject({ status: 'canceled' });
  });

  it('records an unexpected failure, takes back what it did, and fails the run for operators', async () => {
    fake.script({ refuse: { activity: 'promoteTrack', failure: 'SomethingElse', message: 'a bug' } });
    const err = await (await start(input())).result().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    expect(fake.calls).toEqual(
      expect.arrayContaining([
        'removePromotedObjects',
        'discardStaging',
        'finished:rejected:promote:ProcessingFailed',
      ]),
    );
  });

  it('applies a catalog change and brings its search document and dimension along; refuses an unknown track', async () => {
    fake.script({});
    const applied = await env.client.workflow.execute(trackChange, {
      taskQueue: TASK_QUEUE,
      workflowId: `track-change-t1-${randomUUID()}`,
      args: [{ trackId: 't1', change: { kind: 'takedown', reason: 'copyright' } }],
    });
    expect(applied).toMatchObject({ status: 'applied', trackStatus: 'taken_down' });
    expect(ordered(fake.calls)).toEqual(['applyTrackChange', 'indexTrack', 'upsertTrackDimension']);
    fake.script({
      refuse: { activity: 'applyTrackChange', failure: CatalogFailure.TrackNotFound, message: 'No track t2' },
    });
    const refused = await env.client.workflow.execute(trackChange, {
      taskQueue: TASK_QUEUE,
      workflowId: `track-change-t2-${randomUUID()}`,
      args: [{ trackId: 't2', change: { kind: 'restore' } }],
    });
    expect(refused).toMatchObject({ status: 'rejected', failure: CatalogFailure.TrackNotFound });
    expect(fake.calls).toEqual(['applyTrackChange']);
  });

  it('re-indexes index by index: fill, swap, catch up, drop the old', async () => {
    fake.script({});
    const result = await env.client.workflow.execute(reindexSearch, {
      taskQueue: TASK_QUEUE,
      workflowId: `search-reindex-v2-${randomUUID()}`,
      args: [{ version: 2 }],
    });
    expect(result.indices.map((i) => [i.alias, i.to, i.documents])).toEqual([
      ['tracks', 'tracks-v2', 100],
      ['artists', 'artists-v2', 10],
    ]);
    expect(fake.calls.filter((c) => c.includes(':'))).toEqual([
      'swap:tracks',
      'drop:tracks-v1',
      'swap:artists',
      'drop:artists-v1',
    ]);
  });
});

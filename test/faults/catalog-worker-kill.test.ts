import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { sql } from 'slonik';
import { z } from 'zod';
import { uploadKey } from '../../domain/catalog/keys';
import { bucketName } from '../../lib/clients/minio';
import { upcFor } from '../../scripts/seed/codes';
import {
  SEARCH,
  TASK_QUEUE,
  trackIngestionWorkflowId,
  TRACK_INGESTION_WORKFLOW,
  type IngestionResult,
} from '../../workflows/catalog/contract';
import { audioDir, makeAudio } from '../helpers/audio';
import {
  catalogSnapshot,
  catalogStores,
  catalogWorkers,
  newArtist,
  type CatalogStores,
} from '../helpers/catalog';
import { testConfig } from '../helpers/env';

/**
 * kill -9 of the worker process in the middle of a transcode: its ffmpeg dies with it, another worker
 * retries the transcode when the heartbeat times out, and the run ends once, with one track and one set of
 * renditions under the track's keys.
 */
const root = path.join(__dirname, '..', '..');

describe('catalog worker killed mid-transcode', () => {
  let s: CatalogStores;

  beforeAll(async () => {
    s = await catalogStores(testConfig());
  }, 60_000);
  afterAll(() => s?.drop(), 60_000);

  function workerProcess(): ChildProcess {
    // Node itself with tsx's loader (not the tsx CLI, which runs the worker in a child): the PID is the worker's.
    return spawn(process.execPath, ['--import', 'tsx', path.join(root, 'workers', 'main.ts')], {
      cwd: root,
      env: {
        ...process.env,
        CADENZA_TEMPORAL_NAMESPACE: s.cfg.temporal.namespace,
        CADENZA_WORKER_TASK_QUEUES: 'catalog,catalog-media',
        CADENZA_WORKER_HEALTH_PORT: '3921',
        CADENZA_WORKER_METRICS_PORT: '9921',
        CADENZA_PG_DATABASE: s.cfg.postgres.database,
        CADENZA_CLICKHOUSE_DATABASE: s.cfg.clickhouse.database,
        CADENZA_OPENSEARCH_INDEX_PREFIX: s.cfg.opensearch.indexPrefix,
        CADENZA_MINIO_BUCKET_PREFIX: s.cfg.minio.bucketPrefix,
        CADENZA_LOG_LEVEL: 'error',
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
  }

  async function until<T>(what: string, probe: () => Promise<T | undefined>, ms = 90_000): Promise<T> {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      const v = await probe().catch(() => undefined);
      if (v !== undefined) return v;
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(`timed out waiting for ${what}`);
  }

  const ffmpegsOf = (uploadId: string) =>
    execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' })
      .split('\n')
      .filter((l) => l.startsWith('ffmpeg') && l.includes(uploadId));

  it('completes once, with one set of renditions', async () => {
    const artistId = await newArtist(s.pool);
    // Ten minutes of audio, small as 64 kbps MP3: a transcode of several seconds to kill in.
    const file = await makeAudio(audioDir(), 'long.mp3', {
      format: 'mp3',
      seconds: 600,
      seed: 900,
      noise: true,
      kbps: 64,
    });
    const uploadId = randomUUID();
    const body = readFileSync(file);
    await s.pool.query(sql.unsafe`
      INSERT INTO uploads (upload_id, artist_id, kind, filename, extension, content_type, declared_bytes, object_key, expires_at)
      VALUES (${uploadId}, ${artistId}, 'audio', 'long.mp3', 'mp3', 'audio/mpeg', ${body.length}, ${uploadKey(uploadId)}, now() + interval '2 days')`);
    await s.minio.putObject(bucketName('staging', s.cfg.minio.bucketPrefix), uploadKey(uploadId), body);

    const first = workerProcess();
    const exited = new Promise<string | null>((resolve) =>
      first.once('exit', (_code, signal) => resolve(signal)),
    );
    await until('the worker', async () =>
      (await fetch('http://127.0.0.1:3921/healthz')).ok ? true : undefined,
    );
    const { client, stop } = await catalogWorkers(s.cfg, s.deps, []);
    try {
      const handle = await client.workflow.start(TRACK_INGESTION_WORKFLOW, {
        taskQueue: TASK_QUEUE,
        workflowId: trackIngestionWorkflowId(uploadId),
        args: [
          {
            trackId: uploadId,
            uploadId,
            artistId,
            submission: {
              title: 'Survivor',
              album: { title: 'Hard Stops', upc: upcFor(424_242), releaseDate: '2025-01-01' },
              isrc: 'DEK0125' + String(Math.floor(Math.random() * 90_000) + 10_000),
              explicit: false,
              genres: [],
            },
          },
        ],
        typedSearchAttributes: [{ key: SEARCH.trackId, value: uploadId }],
      });
      // The transcode is running and has reported progress, on its first attempt.
      await until('the transcode to report progress', async () => {
        const d = await handle.describe();
        const a = d.raw.pendingActivities?.find((p) => p.activityType?.name === 'transcodeLadder');
        return a && Number(a.attempt) === 1 && a.heartbeatDetails?.payloads?.length ? true : undefined;
      });
      expect(ffmpegsOf(uploadId)).toHaveLength(1);

      first.kill('SIGKILL');
      expect(await exited).toBe('SIGKILL');
      // The kernel takes its ffmpeg with it (parent-death signal): nothing goes on transcoding unseen.
      await until(
        'its ffmpeg to end',
        async () => (ffmpegsOf(uploadId).length === 0 ? true : undefined),
        5000,
      );

      // Another worker (this process) takes over once the heartbeat times out.
      const { stop: stopSecond } = await catalogWorkers(s.cfg, s.deps);
      try {
        const result = (await handle.result()) as IngestionResult;
        expect(result).toMatchObject({ status: 'available', catalogTrackId: uploadId, failure: null });
      } finally {
        await stopSecond();
      }
      const history = await handle.fetchHistory();
      const transcodes = (history.events ?? []).filter(
        (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'transcodeLadder',
      );
      const started = (history.events ?? []).filter((e) => e.activityTaskStartedEventAttributes);
      expect(transcodes).toHaveLength(1);
      // Attempt 2 is the one that completed (the first died with its worker).
      expect(started.some((e) => Number(e.activityTaskStartedEventAttributes?.attempt) === 2)).toBe(true);

      const after = await catalogSnapshot(s);
      expect(after.audio).toEqual([
        `${uploadId}/high.ogg`,
        `${uploadId}/low.ogg`,
        `${uploadId}/normal.ogg`,
        `${uploadId}/original.mp3`,
      ]);
      expect(after.staging).toEqual([]);
      expect(after.tracks).toEqual([uploadId]);
      expect(after.trackDocs).toEqual([uploadId]);
      const ingestions = await s.pool.any(
        sql.type(z.object({ status: z.string() }))`SELECT status FROM track_ingestions`,
      );
      expect(ingestions).toEqual([{ status: 'available' }]);
    } finally {
      if (first.exitCode === null && first.signalCode === null) first.kill('SIGKILL');
      await stop();
    }
  }, 240_000);
});

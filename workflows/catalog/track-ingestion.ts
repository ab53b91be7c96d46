import {
  ActivityCancellationType,
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  isCancellation,
  log,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { CatalogSliceActivities } from '../../activities/catalog';
import { audioRejection, decodeRejection, type Rejection } from '../../domain/catalog/audio';
import { coverKey } from '../../domain/catalog/keys';
import {
  CatalogFailure,
  ingestionProgress,
  isCatalogFailure,
  MEDIA_TASK_QUEUE,
  SEARCH,
  type IngestionProgress,
  type IngestionResult,
  type IngestionStatus,
  type IngestionStep,
  type TrackIngestionInput,
} from './contract';

/**
 * A creator's upload becomes a streamable, searchable track (ID `track-ingestion-<uploadId>`, queue
 * `catalog`, ffmpeg steps on `catalog-media`): inspect → validate → dedup → (cover) → loudness →
 * transcode → promote → catalog write → index and dimension → available. A bad file or submission is a
 * rejection with a reason, not a failed run. Up to the catalog write, a rejection or a cancellation takes
 * back everything (saga): promoted objects, rows, documents, dimension rows, staging objects.
 */

// Infrastructure failures retry without limit (an outage waits; the staging object may expire meanwhile,
// which inspection reports as UploadExpired); bad input is non-retryable and ends the retries at once.
const retry = { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' } as const;
// A cancelled step is waited for (ffmpeg killed, the write finished or not): compensation must come after it.
const wait = ActivityCancellationType.WAIT_CANCELLATION_COMPLETED;
const media = proxyActivities<CatalogSliceActivities>({
  taskQueue: MEDIA_TASK_QUEUE,
  startToCloseTimeout: '3 hours',
  heartbeatTimeout: '20 seconds',
  retry,
  cancellationType: wait,
});
const stores = proxyActivities<CatalogSliceActivities>({
  startToCloseTimeout: '5 minutes',
  heartbeatTimeout: '1 minute',
  retry,
  cancellationType: wait,
});
const local = proxyLocalActivities<CatalogSliceActivities>({ startToCloseTimeout: '30 seconds', retry });

/** A refusal decided in the workflow (from the domain rules), carried to the one place that records it. */
class Refused extends Error {
  constructor(readonly rejection: Rejection) {
    super(rejection.reason);
  }
}
const PROCESSING_FAILED: Rejection = {
  failure: CatalogFailure.ProcessingFailed,
  reason: 'The upload could not be processed because of an error on our side; upload it again later.',
};
const CANCELLED = 'Cancelled before publication.';

const refuse = (r: Rejection | null) => {
  if (r) throw new Refused(r);
};

/** The catalog failure (type and creator-facing message) behind an error, if it is one. */
function rejectionOf(err: unknown): Rejection | null {
  if (err instanceof Refused) return err.rejection;
  const cause = err instanceof ActivityFailure ? err.cause : err;
  if (cause instanceof ApplicationFailure && isCatalogFailure(cause.type)) {
    return { failure: cause.type, reason: cause.message };
  }
  return null;
}

export async function trackIngestion(input: TrackIngestionInput): Promise<IngestionResult> {
  const run = new Ingestion(input);
  setHandler(ingestionProgress, () => run.progress());
  return run.execute();
}

class Ingestion {
  private step: IngestionStep = 'received';
  private readonly done: IngestionStep[] = [];
  private status: IngestionStatus = 'processing';
  private rejection: Rejection | null = null;
  private ffmpegCpuMs = 0;
  private ffmpegWallMs = 0;
  /** Set before a step starts, so a step cancelled half-way is compensated too. */
  private promoted = false;
  private written = false;
  /** The step a refusal or cancellation stopped at, recorded with the outcome. */
  private stoppedAt: IngestionStep | null = null;

  constructor(private readonly input: TrackIngestionInput) {}

  progress(): IngestionProgress {
    return {
      trackId: this.input.trackId,
      uploadId: this.input.uploadId,
      status: this.status,
      step: this.step,
      stepsDone: [...this.done],
      failure: this.rejection?.failure ?? null,
      reason: this.rejection?.reason ?? null,
    };
  }

  private enter(step: IngestionStep): void {
    if (this.step !== 'received') this.done.push(this.step);
    this.step = step;
  }

  async execute(): Promise<IngestionResult> {
    const { trackId, uploadId, artistId, submission } = this.input;
    const coverUploadId = this.input.coverUploadId ?? null;
    let cover: string | null = null;
    try {
      await local.recordIngestion({ trackId, uploadId, artistId, workflowId: workflowInfo().workflowId });

      this.enter('inspect');
      const audio = await media.inspectUpload({ uploadId, artistId });

      this.enter('validate');
      refuse(audioRejection(audio));
      await stores.checkSubmission({ artistId, submission });

      this.enter('dedup');
      const duplicate = await stores.findDuplicate({ sha256: audio.sha256, artistId, isrc: submission.isrc });
      if (duplicate.kind === 'same') {
        await stores.discardStaging({ trackId, uploadId, coverUploadId });
        return await this.finish('duplicate', duplicate.trackId);
      }

      let covers: { size: number; key: string }[] = [];
      if (coverUploadId) {
        this.enter('cover');
        const prepared = await media.prepareCover({ coverUploadId, trackId, artistId });
        refuse(prepared.rejection);
        covers = prepared.stagingKeys;
        cover = coverKey(trackId, covers[0]?.size ?? 0);
      }

      this.enter('loudness');
      const loudness = await media.measureLoudness({ uploadId });
      this.ffmpeg(loudness);
      refuse(decodeRejection(audio.durationMs ?? 0, loudness));

      this.enter('transcode');
      const ladder = await media.transcodeLadder({ uploadId, trackId, durationMs: audio.durationMs ?? 0 });
      this.ffmpeg(ladder);

      this.enter('promote');
      this.promoted = true;
      const promoted = await stores.promoteTrack({
        trackId,
        uploadId,
        format: audio.format!,
        renditions: ladder.renditions,
        covers,
      });

      this.enter('catalog');
      this.written = true;
      const written = await stores.writeCatalog({
        trackId,
        uploadId,
        artistId,
        submission,
        audio: {
          format: audio.format!,
          codec: audio.codec,
          sampleRateHz: audio.sampleRateHz!,
          bitDepth: audio.bitDepth,
          channels: audio.channels,
          durationMs: audio.durationMs!,
          sha256: audio.sha256,
        },
        loudness: { integratedLufs: loudness.integratedLufs, truePeakDbtp: loudness.truePeakDbtp },
        originalKey: promoted.originalKey,
        renditions: promoted.renditions,
        coverKey: cover,
      });
      if (written.outcome === 'duplicate') {
        // Another upload of the same audio won the race: this one's objects go, the existing track stays.
        await CancellationScope.nonCancellable(() => this.compensate(null));
        return await this.finish('duplicate', written.trackId);
      }

      // Published: from here nothing is taken back, and a cancellation no longer stops the run.
      return await CancellationScope.nonCancellable(async () => {
        this.enter('index');
        await Promise.all([stores.indexTrack({ trackId }), stores.upsertTrackDimension({ trackId })]);
        await stores.discardStaging({ trackId, uploadId, coverUploadId });
        if (covers.length && !written.coverAttached) await stores.removePromotedCovers({ trackId });
        return this.finish('available', trackId);
      });
    } catch (err) {
      const cancelled = isCancellation(err);
      const known = cancelled ? null : rejectionOf(err);
      this.rejection = cancelled ? null : (known ?? PROCESSING_FAILED);
      await CancellationScope.nonCancellable(async () => {
        await this.compensate(cover);
        await this.finish(cancelled ? 'canceled' : 'rejected', null);
      });
      // A cancelled run shows as Canceled in the UI; an unexpected error fails it, for operators to see.
      if (!known) {
        log.warn('ingestion ended without publishing', { trackId, cancelled });
        throw err;
      }
      return this.result(null);
    }
  }

  private ffmpeg(run: { cpuMs: number; wallMs: number }): void {
    this.ffmpegCpuMs += run.cpuMs;
    this.ffmpegWallMs += run.wallMs;
  }

  /** Takes back, newest first, whatever the steps so far may have done; every part is idempotent. */
  private async compensate(cover: string | null): Promise<void> {
    const { trackId, uploadId } = this.input;
    this.stoppedAt ??= this.step;
    this.enter('compensate');
    if (this.written) {
      const removed = await stores.removeIngestedTrack({ trackId, uploadId, coverKey: cover });
      if (removed) {
        await Promise.all([
          stores.unindexTrack({ trackId, ...removed }),
          stores.removeTrackDimension({ trackId }),
        ]);
      }
    }
    if (this.promoted) await stores.removePromotedObjects({ trackId });
    await stores.discardStaging({ trackId, uploadId, coverUploadId: this.input.coverUploadId ?? null });
  }

  private async finish(
    status: Exclude<IngestionStatus, 'processing'>,
    catalogTrackId: string | null,
  ): Promise<IngestionResult> {
    this.status = status;
    const result = this.result(catalogTrackId);
    await local.finishIngestion({
      trackId: this.input.trackId,
      status,
      step: status === 'available' ? 'done' : (this.stoppedAt ?? this.step),
      failure: result.failure,
      reason: result.reason,
      catalogTrackId,
    });
    upsertSearchAttributes([{ key: SEARCH.status, value: status }]);
    this.enter('done');
    return result;
  }

  private result(catalogTrackId: string | null): IngestionResult {
    return {
      trackId: this.input.trackId,
      status: this.status as Exclude<IngestionStatus, 'processing'>,
      catalogTrackId,
      failure: this.rejection?.failure ?? null,
      reason: this.rejection?.reason ?? (this.status === 'canceled' ? CANCELLED : null),
      ffmpegCpuMs: this.ffmpegCpuMs,
      ffmpegWallMs: this.ffmpegWallMs,
    };
  }
}

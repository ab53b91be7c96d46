import { defineQuery } from '@temporalio/workflow';
import type { ScheduleDeclaration } from '../schedules';
import { SearchAttribute } from '../search-attributes';

/**
 * The catalog slice's contract: track ingestion (a creator's upload to a streamable, searchable track),
 * catalog changes after upload (edit, take down, restore), the play-count sync to search and the search
 * re-index. The API, tests, benchmarks, the history recorder and the stack import these; nothing else
 * spells a workflow ID, queue, attribute or handle of the slice.
 */

export const TASK_QUEUE = 'catalog';
/** ffmpeg work (inspection, loudness, transcoding, cover art): its own queue, so it scales apart. */
export const MEDIA_TASK_QUEUE = 'catalog-media';

export const TRACK_INGESTION_WORKFLOW = 'trackIngestion';
export const TRACK_CHANGE_WORKFLOW = 'trackChange';
export const PLAY_COUNT_SYNC_WORKFLOW = 'syncPlayCounts';
export const SEARCH_REINDEX_WORKFLOW = 'reindexSearch';

/** One ingestion per upload: submitting the same upload twice finds the first run. */
export const trackIngestionWorkflowId = (uploadId: string) => `track-ingestion-${uploadId}`;
/** A change of a track, keyed by the caller's Idempotency-Key (or a fresh ID). */
export const trackChangeWorkflowId = (trackId: string, changeKey: string) =>
  `track-change-${trackId}-${changeKey}`;
export const playCountSyncWorkflowId = 'catalog-play-count-sync';
export const searchReindexWorkflowId = (version: number, key: string) => `search-reindex-v${version}-${key}`;

export const SEARCH = {
  trackId: SearchAttribute.trackId,
  uploadId: SearchAttribute.uploadId,
  artistId: SearchAttribute.artistId,
  status: SearchAttribute.status,
};

import { CatalogFailure } from '../../domain/catalog/failures';

export { CatalogFailure, isCatalogFailure } from '../../domain/catalog/failures';

/** What a creator submits with an upload; catalog data only (titles and codes are not personal data). */
export interface TrackSubmission {
  title: string;
  album: { title: string; upc: string; releaseDate: string };
  isrc: string;
  explicit: boolean;
  genres: string[];
  /** Markets the track may stream in; null or absent: everywhere. */
  territories?: string[] | null;
  trackNumber?: number | null;
}

export interface TrackIngestionInput {
  /** The track the upload becomes: the API gives it the upload's ID (one upload, one track). */
  trackId: string;
  uploadId: string;
  /** From the creator's token, never the request body. */
  artistId: string;
  coverUploadId?: string | null;
  submission: TrackSubmission;
}

export type IngestionStep =
  | 'received'
  | 'inspect'
  | 'validate'
  | 'dedup'
  | 'cover'
  | 'loudness'
  | 'transcode'
  | 'promote'
  | 'catalog'
  | 'index'
  | 'done'
  | 'compensate';

export type IngestionStatus = 'processing' | 'available' | 'duplicate' | 'rejected' | 'canceled';

export interface IngestionProgress {
  trackId: string;
  uploadId: string;
  status: IngestionStatus;
  step: IngestionStep;
  stepsDone: IngestionStep[];
  failure: CatalogFailure | null;
  reason: string | null;
}

export interface IngestionResult {
  trackId: string;
  status: Exclude<IngestionStatus, 'processing'>;
  /** The catalog track: this one, or the existing track an identical upload already became. */
  catalogTrackId: string | null;
  failure: CatalogFailure | null;
  reason: string | null;
  /** CPU time of the ffmpeg processes of this run (for the orchestration-overhead benchmark). */
  ffmpegCpuMs: number;
  /** Wall time the ffmpeg processes ran, one after another on the run's critical path. */
  ffmpegWallMs: number;
}

export const ingestionProgress = defineQuery<IngestionProgress>('progress');

/** Why a track is taken down (operators and compliance choose; creators may withdraw their own). */
export const TAKEDOWN_REASONS = ['copyright', 'legal', 'artist_request', 'quality', 'other'] as const;
export type TakedownReason = (typeof TAKEDOWN_REASONS)[number];

export interface TrackEdit {
  title?: string;
  explicit?: boolean;
  genres?: string[];
  territories?: string[] | null;
}

export type TrackChange =
  { kind: 'edit'; edit: TrackEdit } | { kind: 'takedown'; reason: TakedownReason } | { kind: 'restore' };

export interface TrackChangeInput {
  trackId: string;
  change: TrackChange;
}

export interface TrackChangeResult {
  trackId: string;
  kind: TrackChange['kind'];
  status: 'applied' | 'rejected';
  /** The track's catalog status after the change. */
  trackStatus: string | null;
  failure: CatalogFailure | null;
  reason: string | null;
}

export interface PlayCountSyncResult {
  tracksChanged: number;
  documentsWritten: number;
}

export interface ReindexInput {
  /** The mapping version to build (sql/opensearch/v<N>.json). */
  version: number;
}

export interface ReindexResult {
  version: number;
  indices: { alias: string; from: string | null; to: string; documents: number; caughtUp: number }[];
}

/** The slice's Temporal Schedules (collected in workflows/schedules.ts): play counts to search every 10 minutes. */
export const SCHEDULES: readonly ScheduleDeclaration[] = [
  {
    scheduleId: 'catalog-play-count-sync',
    description: 'Play counts from ClickHouse to PostgreSQL (tracks.play_count) and the search index',
    spec: { every: '10m' },
    workflowType: PLAY_COUNT_SYNC_WORKFLOW,
    workflowId: playCountSyncWorkflowId,
    taskQueue: TASK_QUEUE,
    args: () => [],
  },
];

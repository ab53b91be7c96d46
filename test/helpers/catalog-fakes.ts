import { ApplicationFailure, CancelledFailure, Context } from '@temporalio/activity';
import type { CatalogSliceActivities } from '../../activities/catalog';
import type { AudioInspection } from '../../domain/catalog/audio';
import type { CatalogFailure } from '../../workflows/catalog/contract';

/**
 * Plain-function fakes of the catalog activities for time-skipping workflow tests and recorded histories:
 * each call is logged by name, a script decides the outcomes, and the long ones heartbeat and honour
 * cancellation like the real ones.
 */
export interface CatalogScript {
  inspection?: Partial<AudioInspection>;
  /** The activity that refuses, with the failure and message it refuses with. */
  refuse?: { activity: keyof CatalogSliceActivities; failure: CatalogFailure | string; message: string };
  duplicateOf?: string;
  /** The catalog write finds another upload of the same audio got there first. */
  writeFindsDuplicate?: string;
  decodedMs?: number;
  /** The transcode runs until it is cancelled. */
  transcodeUntilCancelled?: boolean;
  cover?: 'ok' | 'not-square';
}

export const GOOD_AUDIO: AudioInspection = {
  bytes: 4_000_000,
  maxBytes: 2 * 1024 ** 3,
  sha256: 'a'.repeat(64),
  extension: 'flac',
  detected: 'flac',
  format: 'flac',
  codec: 'FLAC',
  container: 'FLAC',
  lossless: true,
  durationMs: 180_000,
  sampleRateHz: 44_100,
  bitDepth: 16,
  channels: 2,
  parseError: null,
  truncatedHeader: false,
};

export function fakeCatalog() {
  const calls: string[] = [];
  let script: CatalogScript = {};
  const log = (name: string) => calls.push(name);

  async function step<T>(name: keyof CatalogSliceActivities, answer: () => T | Promise<T>): Promise<T> {
    log(name);
    if (script.refuse?.activity === name) {
      throw ApplicationFailure.nonRetryable(script.refuse.message, script.refuse.failure);
    }
    return answer();
  }

  const activities = {
    recordIngestion: () => step('recordIngestion', () => undefined),
    finishIngestion: (input: { status: string; step: string; failure: string | null }) =>
      step('finishIngestion', () => {
        calls.push(`finished:${input.status}:${input.step}:${input.failure ?? '-'}`);
      }),
    inspectUpload: () => step('inspectUpload', () => ({ ...GOOD_AUDIO, ...script.inspection })),
    checkSubmission: () => step('checkSubmission', () => undefined),
    findDuplicate: () =>
      step('findDuplicate', () =>
        script.duplicateOf
          ? { kind: 'same' as const, trackId: script.duplicateOf }
          : { kind: 'none' as const },
      ),
    prepareCover: (input: { trackId: string }) =>
      step('prepareCover', () =>
        script.cover === 'not-square'
          ? {
              width: 800,
              height: 600,
              rejection: {
                failure: 'CoverNotSquare',
                reason: 'The cover art is 800×600 px; it must be square.',
              },
              stagingKeys: [],
            }
          : {
              width: 800,
              height: 800,
              rejection: null,
              stagingKeys: [640, 300].map((size) => ({
                size,
                key: `derived/${input.trackId}/cover-${size}.jpg`,
              })),
            },
      ),
    measureLoudness: () =>
      step('measureLoudness', () => ({
        integratedLufs: -14.2,
        truePeakDbtp: -1.1,
        decodedMs: script.decodedMs ?? (script.inspection?.durationMs ?? GOOD_AUDIO.durationMs)!,
        error: null,
        cpuMs: 800,
        wallMs: 900,
      })),
    transcodeLadder: (input: { trackId: string }) =>
      step('transcodeLadder', async () => {
        if (script.transcodeUntilCancelled) {
          const ctx = Context.current();
          for (let percent = 0; ; percent = Math.min(99, percent + 1)) {
            ctx.heartbeat({ step: 'transcode', percent });
            if (ctx.cancellationSignal.aborted) throw new CancelledFailure('cancelled');
            await new Promise((r) => setTimeout(r, 50));
          }
        }
        return {
          renditions: (
            [
              ['low', 96],
              ['normal', 160],
              ['high', 320],
            ] as const
          ).map(([quality, bitrateKbps]) => ({
            quality,
            bitrateKbps,
            bytes: 1000,
            stagingKey: `derived/${input.trackId}/${quality}.ogg`,
          })),
          cpuMs: 5000,
          wallMs: 5200,
        };
      }),
    promoteTrack: (input: { trackId: string; covers: { size: number }[] }) =>
      step('promoteTrack', () => ({
        originalKey: `${input.trackId}/original.flac`,
        renditions: (
          [
            ['low', 96],
            ['normal', 160],
            ['high', 320],
          ] as const
        ).map(([quality, bitrateKbps]) => ({
          quality,
          bitrateKbps,
          bytes: 1000,
          objectKey: `${input.trackId}/${quality}.ogg`,
        })),
        covers: input.covers.map((c) => ({
          size: c.size,
          objectKey: `${input.trackId}/cover-${c.size}.jpg`,
        })),
      })),
    writeCatalog: () =>
      step('writeCatalog', () =>
        script.writeFindsDuplicate
          ? { outcome: 'duplicate' as const, trackId: script.writeFindsDuplicate }
          : { outcome: 'written' as const, albumId: 'album-1', coverAttached: true },
      ),
    indexTrack: () => step('indexTrack', () => ({ written: 3 })),
    upsertTrackDimension: () => step('upsertTrackDimension', () => undefined),
    discardStaging: () => step('discardStaging', () => undefined),
    removePromotedObjects: () => step('removePromotedObjects', () => 4),
    removePromotedCovers: () => step('removePromotedCovers', () => 2),
    removeIngestedTrack: () =>
      step('removeIngestedTrack', () => ({ albumId: 'album-1', artistId: 'artist-1', albumRemoved: true })),
    unindexTrack: () => step('unindexTrack', () => undefined),
    removeTrackDimension: () => step('removeTrackDimension', () => undefined),
    applyTrackChange: (input: { change: { kind: string } }) =>
      step('applyTrackChange', () => ({
        trackStatus: input.change.kind === 'takedown' ? 'taken_down' : 'available',
        applied: true,
      })),
    syncPlayCounts: () => step('syncPlayCounts', () => ({ tracksChanged: 12, documentsWritten: 30 })),
    prepareSearchVersion: () =>
      step('prepareSearchVersion', () => ({
        since: '2025-01-01T00:00:00Z',
        moves: (['tracks', 'artists'] as const).map((name) => ({
          name,
          alias: name,
          from: `${name}-v1`,
          to: `${name}-v2`,
        })),
      })),
    fillSearchIndex: (input: { move: { name: string } }) =>
      step('fillSearchIndex', () => (input.move.name === 'tracks' ? 100 : 10)),
    swapSearchAlias: (input: { move: { name: string } }) =>
      step('swapSearchAlias', () => void calls.push(`swap:${input.move.name}`)),
    catchUpSearchIndex: () => step('catchUpSearchIndex', () => ({ written: 1, removed: 0 })),
    dropSearchIndex: (input: { index: string }) =>
      step('dropSearchIndex', () => void calls.push(`drop:${input.index}`)),
  };

  return {
    activities,
    calls,
    /** Sets the outcomes of the next run and clears the call log. */
    script(next: CatalogScript) {
      script = next;
      calls.length = 0;
    },
  };
}

import { CopyDestinationOptions, CopySourceOptions, type Client as MinioClient } from 'minio';
import type { AudioFormat, Quality } from '../../domain/catalog/audio';
import {
  coverKey,
  derivedPrefix,
  originalKey,
  renditionKey,
  trackPrefix,
  uploadKey,
} from '../../domain/catalog/keys';
import { bucketName, type Bucket } from '../../lib/clients/minio';

/**
 * Objects of ingestion: promotion from `staging` to `audio` and `covers` under the track's deterministic
 * keys (server-side copies: a retry copies the same objects again), and the removals that compensation
 * and clean-up need, by key prefix, so they find everything a step may have written.
 */

const CONTENT_TYPES: Record<AudioFormat, string> = {
  flac: 'audio/flac',
  wav: 'audio/wav',
  mp3: 'audio/mpeg',
  ogg: 'audio/ogg',
};

export interface Promoted {
  originalKey: string;
  renditions: { quality: Quality; bitrateKbps: number; bytes: number; objectKey: string }[];
  covers: { size: number; objectKey: string }[];
}

export function createObjectActivities({
  minio,
  bucketPrefix,
}: {
  minio: MinioClient;
  bucketPrefix: string;
}) {
  const bucket = (b: Bucket) => bucketName(b, bucketPrefix);

  async function copy(from: string, to: Bucket, key: string, contentType: string): Promise<void> {
    await minio.copyObject(
      new CopySourceOptions({ Bucket: bucket('staging'), Object: from }),
      new CopyDestinationOptions({
        Bucket: bucket(to),
        Object: key,
        MetadataDirective: 'REPLACE',
        Headers: { 'Content-Type': contentType },
      }),
    );
  }

  async function removePrefix(b: Bucket, prefix: string): Promise<number> {
    const keys: string[] = [];
    for await (const o of minio.listObjectsV2(bucket(b), prefix, true) as AsyncIterable<{ name?: string }>) {
      if (o.name) keys.push(o.name);
    }
    if (keys.length) await minio.removeObjects(bucket(b), keys);
    return keys.length;
  }

  return {
    /** Copies the original (typed by what it is, not what the client said), renditions and covers. */
    async promoteTrack(input: {
      trackId: string;
      uploadId: string;
      format: AudioFormat;
      renditions: { quality: Quality; bitrateKbps: number; bytes: number; stagingKey: string }[];
      covers: { size: number; key: string }[];
    }): Promise<Promoted> {
      const original = originalKey(input.trackId, input.format);
      await copy(uploadKey(input.uploadId), 'audio', original, CONTENT_TYPES[input.format]);
      const renditions: Promoted['renditions'] = [];
      for (const r of input.renditions) {
        const objectKey = renditionKey(input.trackId, r.quality);
        await copy(r.stagingKey, 'audio', objectKey, 'audio/ogg');
        renditions.push({ quality: r.quality, bitrateKbps: r.bitrateKbps, bytes: r.bytes, objectKey });
      }
      const covers: Promoted['covers'] = [];
      for (const c of input.covers) {
        const objectKey = coverKey(input.trackId, c.size);
        await copy(c.key, 'covers', objectKey, 'image/jpeg');
        covers.push({ size: c.size, objectKey });
      }
      return { originalKey: original, renditions, covers };
    },

    /** Compensation: every object promoted for the track, in `audio` and `covers`. */
    async removePromotedObjects(input: { trackId: string }): Promise<number> {
      return (
        (await removePrefix('audio', trackPrefix(input.trackId))) +
        (await removePrefix('covers', trackPrefix(input.trackId)))
      );
    },

    /** Cover art promoted for an album that already had a cover: not attached, so not kept. */
    async removePromotedCovers(input: { trackId: string }): Promise<number> {
      return removePrefix('covers', trackPrefix(input.trackId));
    },

    /**
     * The ingestion's staging objects: the upload, what was derived from it, the cover upload. Done at
     * the end of every ingestion, whatever its outcome (the lifecycle rule would take them in 2 days).
     */
    async discardStaging(input: {
      trackId: string;
      uploadId: string;
      coverUploadId: string | null;
    }): Promise<void> {
      const keys = [
        uploadKey(input.uploadId),
        ...(input.coverUploadId ? [uploadKey(input.coverUploadId)] : []),
      ];
      await minio.removeObjects(bucket('staging'), keys);
      await removePrefix('staging', derivedPrefix(input.trackId));
    },
  };
}

export type ObjectActivities = ReturnType<typeof createObjectActivities>;

import type { AudioFormat, Quality } from './audio';

/**
 * Object keys of the catalog, deterministic from business IDs: a retried step writes the same objects
 * again instead of a second set, and compensation knows what to remove without a list.
 */

/** `staging` (the API's bucket): a creator's upload, as the API received it. */
export const uploadKey = (uploadId: string) => `uploads/${uploadId}`;
/** `staging`: what ingestion derived from an upload, before promotion. */
export const derivedPrefix = (trackId: string) => `derived/${trackId}/`;
export const derivedRenditionKey = (trackId: string, quality: Quality) =>
  `${derivedPrefix(trackId)}${quality}.ogg`;
export const derivedCoverKey = (trackId: string, size: number) =>
  `${derivedPrefix(trackId)}cover-${size}.jpg`;

/** `audio`: the promoted original and renditions of a track. */
export const trackPrefix = (trackId: string) => `${trackId}/`;
export const originalKey = (trackId: string, format: AudioFormat) => `${trackId}/original.${format}`;
export const renditionKey = (trackId: string, quality: Quality) => `${trackId}/${quality}.ogg`;
/** `covers`: cover art that came with a track, at each stored size. */
export const coverKey = (trackId: string, size: number) => `${trackId}/cover-${size}.jpg`;

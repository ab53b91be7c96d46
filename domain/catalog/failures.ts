/**
 * Every reason an upload or a change is refused. Each message tells the creator what to do; each type
 * maps to a problem type in api/problems.ts (the catalog contract exports these for the rest of Cadenza).
 */
export const CatalogFailure = {
  /** The staging object is gone (uploads are kept 2 days) or was never uploaded. */
  UploadExpired: 'UploadExpired',
  EmptyFile: 'EmptyFile',
  FileTooLarge: 'FileTooLarge',
  /** Not FLAC, WAV, MP3 or Ogg (Vorbis, Opus, FLAC). */
  UnsupportedFormat: 'UnsupportedFormat',
  /** The magic bytes say one format, the file name another. */
  ExtensionMismatch: 'ExtensionMismatch',
  /** Unreadable, or does not decode. */
  CorruptFile: 'CorruptFile',
  /** Holds less audio than its header announces. */
  TruncatedFile: 'TruncatedFile',
  TooShort: 'TooShort',
  TooLong: 'TooLong',
  /** A lossless file below 44.1 kHz. */
  SampleRateTooLow: 'SampleRateTooLow',
  InvalidIsrc: 'InvalidIsrc',
  InvalidUpc: 'InvalidUpc',
  /** The same audio is in the catalog under another artist: refused and left for review. */
  DuplicateOfOtherArtist: 'DuplicateOfOtherArtist',
  /** The ISRC already identifies another recording. */
  IsrcInUse: 'IsrcInUse',
  /** The album's UPC belongs to another artist. */
  AlbumOfAnotherArtist: 'AlbumOfAnotherArtist',
  UnknownGenre: 'UnknownGenre',
  CoverUnreadable: 'CoverUnreadable',
  CoverNotSquare: 'CoverNotSquare',
  CoverTooSmall: 'CoverTooSmall',
  /** A change to a track that is not in the catalog. */
  TrackNotFound: 'TrackNotFound',
  /** Something other than the file went wrong (a bug); recorded, and the run fails for operators. */
  ProcessingFailed: 'ProcessingFailed',
} as const;
export type CatalogFailure = (typeof CatalogFailure)[keyof typeof CatalogFailure];
export const isCatalogFailure = (type: string | null | undefined): type is CatalogFailure =>
  typeof type === 'string' && Object.hasOwn(CatalogFailure, type);

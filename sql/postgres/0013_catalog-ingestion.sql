-- Up Migration
-- Catalog ingestion: the API's uploads (objects in the staging bucket), the ingestion workflow's
-- projection, genres, the source format and loudness of a track, its territories and take-down, and the
-- changes made to a track after upload.

-- Written by the API when a creator asks to upload; the object lives in `staging` under object_key.
CREATE TABLE uploads (
  upload_id      uuid PRIMARY KEY,
  artist_id      uuid NOT NULL REFERENCES artists,
  kind           text NOT NULL CHECK (kind IN ('audio', 'cover')),
  -- The creator's own name for the file, for display only: object keys never use it.
  filename       text NOT NULL CHECK (length(filename) BETWEEN 1 AND 255),
  extension      text NOT NULL CHECK (extension ~ '^[a-z0-9]{1,8}$'),
  content_type   text NOT NULL CHECK (length(content_type) BETWEEN 3 AND 100),
  declared_bytes bigint NOT NULL CHECK (declared_bytes > 0),
  object_key     text NOT NULL UNIQUE,
  created_at     timestamptz NOT NULL DEFAULT now(),
  expires_at     timestamptz NOT NULL,
  CHECK (expires_at > created_at)
);
CREATE INDEX uploads_artist ON uploads (artist_id, created_at);

CREATE TABLE genres (
  genre_id text PRIMARY KEY CHECK (genre_id ~ '^[a-z0-9]+(-[a-z0-9]+)*$'),
  name     text NOT NULL
);
INSERT INTO genres (genre_id, name) VALUES
  ('alternative', 'Alternative'), ('ambient', 'Ambient'), ('blues', 'Blues'), ('classical', 'Classical'),
  ('country', 'Country'), ('dance', 'Dance'), ('electronic', 'Electronic'), ('folk', 'Folk'),
  ('hip-hop', 'Hip-Hop'), ('indie', 'Indie'), ('jazz', 'Jazz'), ('latin', 'Latin'), ('metal', 'Metal'),
  ('pop', 'Pop'), ('punk', 'Punk'), ('r-and-b', 'R&B'), ('reggae', 'Reggae'), ('rock', 'Rock'),
  ('soul', 'Soul'), ('soundtrack', 'Soundtrack'), ('spoken-word', 'Spoken Word'), ('world', 'World');

ALTER TABLE tracks
  ADD COLUMN upload_id         uuid UNIQUE REFERENCES uploads,
  ADD COLUMN source_format     text CHECK (source_format IN ('flac', 'wav', 'mp3', 'ogg')),
  ADD COLUMN source_codec      text,
  ADD COLUMN sample_rate_hz    integer CHECK (sample_rate_hz BETWEEN 8000 AND 768000),
  ADD COLUMN bit_depth         smallint CHECK (bit_depth BETWEEN 8 AND 64),
  ADD COLUMN channels          smallint CHECK (channels BETWEEN 1 AND 8),
  -- EBU R128: integrated loudness and true peak, for normalised playback.
  ADD COLUMN loudness_lufs     numeric(5, 2) CHECK (loudness_lufs BETWEEN -99 AND 10),
  ADD COLUMN true_peak_dbtp    numeric(5, 2) CHECK (true_peak_dbtp BETWEEN -99 AND 30),
  -- Markets the track may be streamed in (ISO 3166-1 alpha-2); NULL means everywhere.
  ADD COLUMN territories       char(2)[] CHECK (territories IS NULL OR cardinality(territories) > 0),
  ADD COLUMN taken_down_reason text CHECK (taken_down_reason IN ('copyright', 'legal', 'artist_request', 'quality', 'other')),
  ADD COLUMN taken_down_at     timestamptz,
  ADD CONSTRAINT tracks_taken_down_has_reason CHECK ((status = 'taken_down') = (taken_down_reason IS NOT NULL));

CREATE TABLE track_genres (
  track_id uuid NOT NULL REFERENCES tracks ON DELETE CASCADE,
  genre_id text NOT NULL REFERENCES genres,
  position smallint NOT NULL CHECK (position BETWEEN 0 AND 4),
  PRIMARY KEY (track_id, genre_id),
  UNIQUE (track_id, position)
);
CREATE INDEX track_genres_genre ON track_genres (genre_id);

-- The trackIngestion workflow's projection: one row per upload submitted as a track, from the first
-- step to its end. track_id is the track the ingestion would create (derived from the upload ID).
CREATE TABLE track_ingestions (
  track_id         uuid PRIMARY KEY,
  upload_id        uuid NOT NULL UNIQUE REFERENCES uploads,
  artist_id        uuid NOT NULL REFERENCES artists,
  workflow_id      text NOT NULL,
  status           text NOT NULL CHECK (status IN ('processing', 'available', 'duplicate', 'rejected', 'canceled')),
  step             text NOT NULL,
  -- A failure type of the catalog contract and the message a creator can act on.
  failure          text,
  reason           text,
  -- The catalog track the upload became: itself, or the existing track it duplicates.
  catalog_track_id uuid,
  started_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  finished_at      timestamptz,
  CHECK ((status IN ('rejected', 'canceled')) = (reason IS NOT NULL)),
  CHECK ((status IN ('available', 'duplicate')) = (catalog_track_id IS NOT NULL))
);
CREATE INDEX track_ingestions_artist ON track_ingestions (artist_id, started_at);

-- Changes of a track after upload (edit, take-down, restore), one row per change workflow: the row is
-- written in the change's own transaction, so a retried change is applied once.
CREATE TABLE track_changes (
  change_id  text PRIMARY KEY,
  track_id   uuid NOT NULL REFERENCES tracks ON DELETE CASCADE,
  kind       text NOT NULL CHECK (kind IN ('edit', 'takedown', 'restore')),
  details    jsonb NOT NULL DEFAULT '{}',
  applied_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX track_changes_track ON track_changes (track_id, applied_at);

-- Down Migration
DROP TABLE track_changes;
DROP TABLE track_ingestions;
DROP TABLE track_genres;
ALTER TABLE tracks
  DROP CONSTRAINT tracks_taken_down_has_reason,
  DROP COLUMN taken_down_at,
  DROP COLUMN taken_down_reason,
  DROP COLUMN territories,
  DROP COLUMN true_peak_dbtp,
  DROP COLUMN loudness_lufs,
  DROP COLUMN channels,
  DROP COLUMN bit_depth,
  DROP COLUMN sample_rate_hz,
  DROP COLUMN source_codec,
  DROP COLUMN source_format,
  DROP COLUMN upload_id;
DROP TABLE genres;
DROP TABLE uploads;

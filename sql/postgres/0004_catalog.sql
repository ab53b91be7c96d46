-- Up Migration
-- Catalog: artist → album (UPC) → track (ISRC, checksum, renditions, denormalised play_count).

CREATE TABLE artists (
  artist_id  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 300),
  country    char(2) REFERENCES countries,
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE albums (
  album_id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  artist_id        uuid NOT NULL REFERENCES artists,
  title            text NOT NULL CHECK (length(title) BETWEEN 1 AND 300),
  upc              text NOT NULL UNIQUE CHECK (cadenza_gtin_valid(upc)),
  release_date     date NOT NULL,
  cover_object_key text,
  created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX albums_artist ON albums (artist_id);

CREATE TABLE tracks (
  track_id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  album_id         uuid NOT NULL REFERENCES albums,
  artist_id        uuid NOT NULL REFERENCES artists,
  title            text NOT NULL CHECK (length(title) BETWEEN 1 AND 300),
  isrc             text NOT NULL UNIQUE CHECK (cadenza_isrc_valid(isrc)),
  duration_ms      integer NOT NULL CHECK (duration_ms > 0 AND duration_ms < 24 * 3600 * 1000),
  explicit         boolean NOT NULL DEFAULT false,
  track_number     smallint CHECK (track_number > 0),
  audio_object_key text,
  renditions       jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(renditions) = 'array'),
  checksum_sha256  text NOT NULL UNIQUE CHECK (checksum_sha256 ~ '^[0-9a-f]{64}$'),
  status           text NOT NULL DEFAULT 'processing' CHECK (status IN ('processing', 'available', 'taken_down')),
  play_count       bigint NOT NULL DEFAULT 0 CHECK (play_count >= 0),
  release_date     date NOT NULL,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tracks_artist ON tracks (artist_id);
CREATE INDEX tracks_album ON tracks (album_id);

-- Down Migration
DROP TABLE tracks;
DROP TABLE albums;
DROP TABLE artists;

-- Up Migration
-- Playlists (ordered by position, collaborative flag) and the follow graph.

CREATE TABLE playlists (
  playlist_id   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  owner_id      uuid NOT NULL REFERENCES users,
  title         text NOT NULL CHECK (length(title) BETWEEN 1 AND 300),
  collaborative boolean NOT NULL DEFAULT false,
  public        boolean NOT NULL DEFAULT true,
  created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX playlists_owner ON playlists (owner_id);

CREATE TABLE playlist_tracks (
  playlist_id uuid NOT NULL REFERENCES playlists ON DELETE CASCADE,
  position    integer NOT NULL CHECK (position >= 0),
  track_id    uuid NOT NULL REFERENCES tracks,
  added_by    uuid REFERENCES users,
  added_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (playlist_id, position)
);
CREATE INDEX playlist_tracks_track ON playlist_tracks (track_id);

CREATE TABLE user_follows (
  follower_id uuid NOT NULL REFERENCES users,
  followee_id uuid NOT NULL REFERENCES users,
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (follower_id, followee_id),
  CHECK (follower_id <> followee_id)
);
CREATE INDEX user_follows_followee ON user_follows (followee_id);

-- Down Migration
DROP TABLE user_follows;
DROP TABLE playlist_tracks;
DROP TABLE playlists;

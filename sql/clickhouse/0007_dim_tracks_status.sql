-- A track's catalog status in its dimension (available, taken_down), kept in step by the catalog
-- workflows, so analytics can leave out what listeners can no longer play.
ALTER TABLE dim_tracks ADD COLUMN status String DEFAULT 'available';

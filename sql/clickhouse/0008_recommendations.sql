-- Co-listening neighbours of each track, computed by the recommendations job: for a run, every track's
-- most co-listened tracks (listeners who played both, each play royalty-bearing). One partition per run, so a
-- retried run replaces its own rows (DROP PARTITION, then insert) and old runs are dropped whole.
CREATE TABLE IF NOT EXISTS track_neighbors (
  run_id    String,
  track_id  UUID,
  neighbor  UUID,
  listeners UInt32
) ENGINE = MergeTree()
PARTITION BY run_id
ORDER BY (run_id, track_id, neighbor);

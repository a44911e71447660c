-- All of each source in `batch_sources` is stored: mark it ingested. Its accepted records not stored under
-- it were already stored from another source (duplicates). `read` and `refused` count what Python read and
-- rejected before SQL; `under_uri` holds what a source that had rows before now holds (vanished.sql).
CREATE OR REPLACE TEMP TABLE finished AS
SELECT s.source_uri, s.size_bytes, s.fingerprint, s.format, s.read AS lines,
       s.refused + coalesce(c.rejected, 0) AS rejected,
       s.read - s.refused - coalesce(c.rejected, 0) - coalesce(u.n, c.inserted, 0) AS duplicates,
       s.damage, now()::TIMESTAMP AS ingested_at, $load_id AS load_id, coalesce(c.inserted, 0) AS stored
FROM batch_sources s
LEFT JOIN (SELECT src, sum(rejected) AS rejected, sum(inserted) AS inserted FROM load_counts GROUP BY src) c USING (src)
LEFT JOIN under_uri u USING (source_uri);
INSERT INTO ingested_sources SELECT * EXCLUDE (stored) FROM finished;
DELETE FROM pending_sources WHERE load_id = $load_id AND source_uri IN (SELECT source_uri FROM batch_sources);

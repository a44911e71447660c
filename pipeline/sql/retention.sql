-- The retention policy: raw lines of closed streams and rejects older than $cutoff go; events, runs,
-- baselines, findings, alerts and sources stay, so the review and the SQL surface keep all history.
-- A stream is closed when its newest line is older than the cutoff and it waits for no rebuild.
CREATE OR REPLACE TEMP TABLE closed_streams AS
SELECT stream_key, max(ts) AS last_line_at, count(*) AS lines
FROM log_lines
GROUP BY stream_key
HAVING max(coalesce(ts, TIMESTAMP '9999-12-31')) < $cutoff
   AND stream_key NOT IN (SELECT stream_key FROM pending_streams);
INSERT INTO pruned_streams SELECT stream_key, last_line_at, lines, $now FROM closed_streams;
DELETE FROM log_lines WHERE stream_key IN (SELECT stream_key FROM closed_streams);
CREATE OR REPLACE TEMP TABLE old_rejects AS
SELECT r.rowid AS row_id, r.reason
FROM rejects r
WHERE EXISTS (SELECT 1 FROM ingested_sources s WHERE s.source_uri = r.source_uri AND s.ingested_at < $cutoff);
-- what goes is still counted (pruned_rejects), so the rejects counter of `metrics` never drops
INSERT INTO pruned_rejects SELECT reason, count(*), $now FROM old_rejects GROUP BY reason;
DELETE FROM rejects WHERE rowid IN (SELECT row_id FROM old_rejects);

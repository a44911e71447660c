-- Rebuild migrate_events for the streams in `touched_streams` from their log_lines, step 1 of 3 (then
-- physical_lines.sql, read by pipeline/parse/sequence.py, and events_insert.sql).
-- Parameters: $lo and $hi: the time range of those streams' lines and old events (the tables' zone maps skip
-- the rest). A stream whose raw lines `prune` removed keeps its events up to its newest pruned line: they can
-- no longer be rebuilt, and a stream that speaks again (the same pod or container, weeks later) adds to them.
DELETE FROM migrate_events
WHERE (ts BETWEEN $lo AND $hi OR ts IS NULL) AND stream_key IN (SELECT stream_key FROM touched_streams)
  AND NOT EXISTS (SELECT 1 FROM pruned_streams p
                  WHERE p.stream_key = migrate_events.stream_key AND migrate_events.ts <= p.last_line_at);

-- The streams being rebuilt, each with a small integer id (what the sequence work sorts by), its lines, the
-- chunk of at most about $chunk_lines lines it is sequenced in (a stream is never split), and for a pruned
-- one where its kept events end and their last position.
CREATE OR REPLACE TEMP TABLE event_streams AS
WITH pruned AS (
    SELECT p.stream_key, p.kept_until, max(e.seq) AS kept_seq
    FROM (SELECT stream_key, max(last_line_at) AS kept_until FROM pruned_streams
          WHERE stream_key IN (SELECT stream_key FROM touched_streams) GROUP BY stream_key) p
    LEFT JOIN migrate_events e ON e.stream_key = p.stream_key AND e.ts <= p.kept_until
    GROUP BY p.stream_key, p.kept_until
), numbered AS (   -- touched_streams.n: the stream's raw lines, as the rebuild's plan counted them
    SELECT t.stream_key, CAST(row_number() OVER (ORDER BY t.stream_key) AS INTEGER) AS sid,
           starts_with(t.stream_key, 'run:') AS wrapped, p.kept_until, coalesce(p.kept_seq, 0) AS kept_seq, t.n
    FROM touched_streams t LEFT JOIN pruned p USING (stream_key)
)
SELECT *, (sum(n) OVER (ORDER BY sid ROWS UNBOUNDED PRECEDING) - n) // $chunk_lines AS chunk
FROM numbered;

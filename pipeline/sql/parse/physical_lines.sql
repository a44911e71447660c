-- The physical lines of one chunk ($chunk) of the streams in `event_streams` (events.sql), to be shaped by
-- line_shapes.sql. Parameters: $lo, $hi as in events.sql.
SELECT l.line_id, l.ts, l.ts_origin, s.sid, s.wrapped, s.kept_seq, l.env, l.service, l.database, l.partial,
       l.whole, l.source_uri, l.line_no, l.message AS text
FROM log_lines l JOIN event_streams s USING (stream_key)
WHERE s.chunk = $chunk AND l.record = 'line' AND (l.ts BETWEEN $lo AND $hi OR l.ts IS NULL)
  -- a line shipped again from before a prune has its event already
  AND (s.kept_until IS NULL OR l.ts > s.kept_until)

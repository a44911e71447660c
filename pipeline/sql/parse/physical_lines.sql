-- The physical lines of the streams in `event_streams` (events.sql), each with its shape (line_shapes.sql
-- fills the placeholder below with this file's `lines` relation). Parameters: $lo, $hi as in events.sql.
SELECT l.line_id, l.ts, l.ts_origin, s.sid, s.wrapped, s.kept_seq, l.env, l.service, l.database, l.partial,
       l.whole, l.source_uri, l.line_no, l.message AS text
FROM log_lines l JOIN event_streams s USING (stream_key)
WHERE l.record = 'line' AND (l.ts BETWEEN $lo AND $hi OR l.ts IS NULL)
  -- a line shipped again from before a prune has its event already
  AND (s.kept_until IS NULL OR l.ts > s.kept_until)

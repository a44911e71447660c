-- Sources that had rows before this load (changed since): drop their stored lines that are no longer in
-- them (an overwritten object), queue those streams, and count what each now holds.
INSERT INTO pending_streams
SELECT DISTINCT l.stream_key FROM log_lines l JOIN batch_sources s ON s.had_rows AND l.source_uri = s.source_uri
WHERE NOT EXISTS (SELECT 1 FROM source_ids i WHERE i.src = s.src AND i.line_id = l.line_id)
  AND l.stream_key NOT IN (SELECT stream_key FROM pending_streams);
DELETE FROM log_lines l USING batch_sources s
WHERE s.had_rows AND l.source_uri = s.source_uri
  AND NOT EXISTS (SELECT 1 FROM source_ids i WHERE i.src = s.src AND i.line_id = l.line_id);
CREATE OR REPLACE TEMP TABLE under_uri AS
SELECT source_uri, count(*) AS n FROM log_lines
WHERE source_uri IN (SELECT source_uri FROM batch_sources WHERE had_rows) GROUP BY source_uri;

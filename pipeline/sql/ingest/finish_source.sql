-- All of a source is stored: drop its lines that are no longer in it (an overwritten object), then mark
-- it ingested. Its accepted records not stored under it were already stored from another source.
INSERT INTO pending_streams
SELECT DISTINCT stream_key FROM log_lines l
WHERE source_uri = $source_uri AND NOT EXISTS (SELECT 1 FROM source_ids s WHERE s.line_id = l.line_id);
DELETE FROM log_lines l
WHERE source_uri = $source_uri AND NOT EXISTS (SELECT 1 FROM source_ids s WHERE s.line_id = l.line_id);
INSERT INTO ingested_sources
SELECT $source_uri, $size_bytes, $fingerprint, $format, $lines, $rejected,
       $lines - $rejected - (SELECT count(*) FROM log_lines WHERE source_uri = $source_uri),
       $damage, now()::TIMESTAMP, $load_id;
DELETE FROM pending_sources WHERE source_uri = $source_uri AND load_id = $load_id;

-- After an ingest was killed: remove every row of a load that never finished, and rebuild its streams.
INSERT INTO pending_streams
SELECT DISTINCT l.stream_key FROM log_lines l
WHERE EXISTS (SELECT 1 FROM pending_sources p WHERE p.source_uri = l.source_uri AND p.load_id = l.load_id);
DELETE FROM log_lines l
WHERE EXISTS (SELECT 1 FROM pending_sources p WHERE p.source_uri = l.source_uri AND p.load_id = l.load_id);
DELETE FROM rejects r
WHERE EXISTS (SELECT 1 FROM pending_sources p WHERE p.source_uri = r.source_uri AND p.load_id = r.load_id);
DELETE FROM pending_sources;

-- Before a new or changed source loads: its rejects are produced again, its `ingested_sources` row goes
-- until all of it is stored, and this load is listed as pending. Its stored lines stay: a line read
-- again keeps its row (and load_id); lines that vanished from the source are removed when it finishes.
DELETE FROM rejects WHERE source_uri = $source_uri;
DELETE FROM ingested_sources WHERE source_uri = $source_uri;
INSERT INTO pending_sources VALUES ($source_uri, $load_id);
CREATE OR REPLACE TEMP TABLE source_seen (content_hash VARCHAR, n BIGINT);
CREATE OR REPLACE TEMP TABLE source_ids (line_id VARCHAR);

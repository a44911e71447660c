-- Before the sources in `batch_sources` load: their rejects are produced again and their `ingested_sources`
-- rows go until all of them is stored. Their stored lines stay: a line read again keeps its row (and
-- load_id); lines that vanished from a source are removed when it finishes (sql/ingest/vanished.sql). A
-- large source loads in several transactions and is listed as pending meanwhile ($pending); a group of
-- small ones loads in one transaction, which a kill undoes whole.
DELETE FROM rejects WHERE source_uri IN (SELECT source_uri FROM batch_sources WHERE had_rows);
DELETE FROM ingested_sources WHERE source_uri IN (SELECT source_uri FROM batch_sources);
INSERT INTO pending_sources SELECT source_uri, $load_id FROM batch_sources WHERE $pending;
-- Per load: hashes already seen per source (occurrence numbers across the batches of a large source), the
-- line ids read (to find vanished lines), and what each batch rejected and stored.
CREATE OR REPLACE TEMP TABLE source_seen (src INTEGER, ts TIMESTAMP, content_hash VARCHAR, n BIGINT);
CREATE OR REPLACE TEMP TABLE source_ids (src INTEGER, line_id VARCHAR);
CREATE OR REPLACE TEMP TABLE load_counts (src INTEGER, rejected BIGINT, inserted BIGINT);
CREATE OR REPLACE TEMP TABLE under_uri (source_uri VARCHAR, n BIGINT);

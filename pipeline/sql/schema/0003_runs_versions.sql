-- Runs tell where a `down` left the database (issue #13).
ALTER TABLE runs ADD COLUMN IF NOT EXISTS version_shown BOOLEAN;     -- the run's lines tell the version it ended at:
                                                                     -- version_seen, NULL there = no version known
                                                                     -- (a down below every known version, or
                                                                     -- `version` answering `no migration`)

-- Runs built by an older build lack these and chained versions past a `down`: rebuild every stream on the
-- next ingest.
INSERT INTO pending_streams SELECT DISTINCT stream_key FROM runs
WHERE stream_key NOT IN (SELECT stream_key FROM pending_streams);

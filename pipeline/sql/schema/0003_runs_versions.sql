-- Runs tell where a `down` left the database and which version a default-mode failure was on (issue #13).
ALTER TABLE runs ADD COLUMN IF NOT EXISTS version_shown BOOLEAN;     -- the run's lines tell the version it ended at:
                                                                     -- version_seen, NULL there = no version known
                                                                     -- (a down below every known version, or
                                                                     -- `version` answering `no migration`)
ALTER TABLE runs ADD COLUMN IF NOT EXISTS next_dirty_version BIGINT; -- a failed run whose lines do not name its
                                                                     -- version: the dirty version migrate printed
                                                                     -- next on that database
ALTER TABLE runs ADD COLUMN IF NOT EXISTS next_dirty_at TIMESTAMP;   -- when it printed it: analysis uses
                                                                     -- next_dirty_version only at a later clock

-- Runs built by an older build lack these and chained versions past a `down`: rebuild every stream on the
-- next ingest.
INSERT INTO pending_streams SELECT DISTINCT stream_key FROM runs
WHERE stream_key NOT IN (SELECT stream_key FROM pending_streams);

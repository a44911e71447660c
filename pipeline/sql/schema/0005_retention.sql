-- Streams whose raw lines `prune` removed (the retention policy): their events and runs stay. A stream is
-- pruned only once its newest line is older than the cutoff, so its runs were long finished.
CREATE TABLE IF NOT EXISTS pruned_streams (
    stream_key    VARCHAR NOT NULL,
    last_line_at  TIMESTAMP,           -- the newest line the stream had
    lines         BIGINT NOT NULL,     -- raw lines removed
    pruned_at     TIMESTAMP NOT NULL
);

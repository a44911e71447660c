-- Issues `migrate-lens lint` found in a service's migrations folder, one row per issue. pipeline.lint.store()
-- replaces a service's rows on each lint; join to migrate_events / runs on (service, version).
CREATE TABLE IF NOT EXISTS lint_issues (
    service    VARCHAR NOT NULL,
    version    BIGINT NOT NULL,     -- golang-migrate version: sequential (1) or timestamp (20240514091500)
    direction  VARCHAR,             -- up | down; NULL when the issue is not about one direction
    rule       VARCHAR NOT NULL,    -- stable code: missing-down, empty-down, duplicate-version, not-idempotent,
                                    -- concurrently-in-transaction, destructive-in-up, unparsable
    severity   VARCHAR NOT NULL,    -- error | warning | info
    path       VARCHAR NOT NULL,    -- file, relative to the linted folder
    line       INTEGER NOT NULL,    -- 1-based first line of the statement (1 for a whole-file issue)
    message    VARCHAR NOT NULL,    -- one line a person can act on, redacted
    linted_at  TIMESTAMP NOT NULL   -- UTC
);

-- Checks `migrate-lens verify --store SERVICE` ran on a migrations folder against a real PostgreSQL, one row per
-- (version, check); pipeline.verify.store() replaces a service's rows on each verify. `check` is an SQL keyword:
-- quote it ("check") in ad-hoc SQL. analyze joins the latest rows into rollback_readiness (down tested in CI).
CREATE TABLE IF NOT EXISTS verify_results (
    service      VARCHAR NOT NULL,
    version      BIGINT NOT NULL,     -- golang-migrate version
    "check"      VARCHAR NOT NULL,    -- up | down | schema_restored | data_restored | reapply | idempotent_up
    status       VARCHAR NOT NULL,    -- pass | fail | skip | missing (only down)
    detail       VARCHAR,             -- the error or the schema/data difference, redacted; NULL when none
    folder       VARCHAR NOT NULL,    -- the migrations folder as given
    git_commit   VARCHAR,             -- the folder's checkout (git rev-parse HEAD), else $GITHUB_SHA / $CI_COMMIT_SHA
    verified_at  TIMESTAMP NOT NULL   -- UTC
);

-- The rollback-readiness ledger carries the CI test of each version's down next to what production did.
ALTER TABLE rollback_readiness ADD COLUMN IF NOT EXISTS down_tested_at TIMESTAMP;
ALTER TABLE rollback_readiness ADD COLUMN IF NOT EXISTS down_test VARCHAR;  -- passed | failed | missing | not_tested
ALTER TABLE rollback_readiness ADD COLUMN IF NOT EXISTS down_test_failed_checks VARCHAR;  -- e.g. "schema_restored"

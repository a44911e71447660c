-- Versions in production whose rollback is not ready (no down, never tried, failing, or not re-applied), with
-- the down's CI test (`verify --store`) beside what production did.
SELECT service, version, name, down_file, down_tried_envs, last_down_at, last_down_ok, reapplied_after_down,
       first_prod_at, down_tested_at, down_test, down_test_failed_checks
FROM rollback_readiness WHERE in_prod AND NOT ready
ORDER BY first_prod_at DESC NULLS LAST, service, version
LIMIT $limit

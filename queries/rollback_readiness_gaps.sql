-- name: rollback_readiness_gaps
-- answers: Versions in prod whose rollback is not proven (no down file, down never tried outside prod, last try failed, or not re-applied after it), and the gap.
-- param: service = *           (service glob)
-- param: in_prod_only = true   (false: also versions not yet in prod)
--
-- From `rollback_readiness`, rebuilt by `analyze` for its clock (its `as_of` column). A version is ready
-- when its down file is present, the down ran and passed outside prod, and the up was re-applied after it.
-- `prod_downs` counts down steps of the version already applied in prod (a rollback done without practice).
-- `down_tested_in_ci`: the down's latest `verify --store` test, "2026-11-14: passed" or
-- "2026-11-14: failed (schema_restored)", next to what production did.
SELECT rr.service, rr.version, rr.name,
       CASE WHEN rr.down_file = 'missing' THEN 'no down file (migrate stepped it as <empty>)'
            WHEN rr.down_file = 'unknown' THEN 'down never run anywhere: file unknown, rollback untried'
            WHEN rr.down_tried_envs IS NULL OR len(rr.down_tried_envs) = 0 THEN 'down file exists, never tried outside prod'
            WHEN NOT coalesce(rr.last_down_ok, false) THEN 'last down outside prod failed'
            WHEN NOT rr.reapplied_after_down THEN 'up not re-applied after the down'
            ELSE 'ready' END AS gap,
       rr.down_file,
       rr.in_prod,
       rr.first_prod_at,
       date_diff('day', rr.first_prod_at, rr.as_of) AS days_in_prod,
       array_to_string(rr.envs_applied, ', ') AS envs_applied,
       array_to_string(rr.down_tried_envs, ', ') AS down_tried_envs,
       rr.last_down_at, rr.last_down_ok, rr.reapplied_after_down,
       strftime(rr.down_tested_at, '%Y-%m-%d') || ': ' || CASE rr.down_test
           WHEN 'failed' THEN 'failed (' || rr.down_test_failed_checks || ')' WHEN 'missing' THEN 'no down file'
           WHEN 'not_tested' THEN 'not tested (its up failed)' ELSE rr.down_test END AS down_tested_in_ci,
       (SELECT count(*) FROM migrate_events d
        WHERE d.service = rr.service AND d.version = rr.version AND d.kind = 'applied'
          AND d.direction = 'down' AND d.env IN ('prod', 'production')) AS prod_downs,
       rr.as_of
FROM rollback_readiness rr
WHERE NOT rr.ready
  AND rr.service GLOB $service
  AND (rr.in_prod OR NOT CAST($in_prod_only AS BOOLEAN))
ORDER BY CASE rr.down_file WHEN 'missing' THEN 0 WHEN 'unknown' THEN 2 ELSE 1 END,
         rr.first_prod_at DESC NULLS LAST, rr.service, rr.version

-- name: lint_vs_history
-- answers: Scripts that `migrate-lens lint --store` flags and that really failed, went dirty or were rolled back, with how their down fared in `verify --store`.
-- param: service = *            (service glob)
-- param: as_of = now            (the clock: --as-of, else now; ISO date or timestamp)
WITH flagged AS (
    SELECT service, version, string_agg(DISTINCT rule, ', ' ORDER BY rule) AS rules,
           max(CASE severity WHEN 'error' THEN 3 WHEN 'warning' THEN 2 ELSE 1 END) AS worst
    FROM lint_issues WHERE service GLOB $service
    GROUP BY service, version
), history AS (
    SELECT service, dirty_version AS version,
           count(*) FILTER (WHERE outcome = 'failed') AS failed_runs,
           count(*) FILTER (WHERE left_dirty OR outcome = 'dirty') AS dirty_runs
    FROM runs WHERE started_at <= CAST($as_of AS TIMESTAMP) AND dirty_version IS NOT NULL
    GROUP BY ALL
), tested AS (   -- the latest `verify --store` of the version: how its down fared in CI (the checks listed are
                 -- DOWN_TEST_CHECKS of pipeline/core/vocabulary.py, as analyze's readiness.sql binds them)
    SELECT service, version, max(verified_at) AS down_tested_at,
           CASE WHEN bool_or("check" = 'down' AND status = 'missing') THEN 'missing'
                WHEN bool_or("check" IN ('down', 'schema_restored', 'data_restored', 'reapply') AND status = 'fail')
                    THEN 'failed (' || string_agg("check", ', ' ORDER BY list_position(['down', 'schema_restored', 'data_restored', 'reapply'], "check")) FILTER (
                        WHERE "check" IN ('down', 'schema_restored', 'data_restored', 'reapply') AND status = 'fail') || ')'
                WHEN bool_or("check" = 'down' AND status = 'pass') THEN 'passed'
                ELSE 'not tested' END AS down_test
    FROM verify_results WHERE service GLOB $service AND verified_at <= CAST($as_of AS TIMESTAMP)
    GROUP BY ALL
), rollbacks AS (
    SELECT service, version, count(*) AS rollbacks, list(DISTINCT env ORDER BY env) AS rolled_back_in
    FROM migrate_events
    WHERE kind = 'applied' AND direction = 'down' AND ts <= CAST($as_of AS TIMESTAMP)
    GROUP BY ALL
)
SELECT f.service, f.version, f.rules,
       CASE f.worst WHEN 3 THEN 'error' WHEN 2 THEN 'warning' ELSE 'info' END AS worst_lint,
       coalesce(h.failed_runs, 0) AS failed_runs, coalesce(h.dirty_runs, 0) AS dirty_runs,
       coalesce(r.rollbacks, 0) AS rollbacks, r.rolled_back_in, t.down_test, t.down_tested_at
FROM flagged f
LEFT JOIN history h USING (service, version)
LEFT JOIN rollbacks r USING (service, version)
LEFT JOIN tested t USING (service, version)
WHERE coalesce(h.failed_runs, 0) + coalesce(h.dirty_runs, 0) + coalesce(r.rollbacks, 0) > 0
ORDER BY failed_runs DESC, dirty_runs DESC, rollbacks DESC, f.service, f.version

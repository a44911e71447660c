-- analyze_readiness: the rollback_readiness rows as of $as_of, one per (service, version) applied up: is the
-- down file there, was the down tried outside prod ($prod_envs) and did its last try pass, was the up applied
-- again after it in that env. `name` is the first up event's as stored (the order events were loaded in).
-- Beside it, the down as tested in CI: the latest `verify --store` rows at or before the clock; failed when
-- one of $down_test_checks failed, missing when there was no down file to test.
-- Each question reads the up steps for its own few columns (they are most of the events; the downs are few).
CREATE OR REPLACE TEMP TABLE analyze_readiness AS
WITH ups AS NOT MATERIALIZED (
    SELECT rowid AS ord, service, version, env, name, ts
    FROM migrate_events
    WHERE ts <= $as_of AND kind = 'applied' AND direction = 'up' AND version IS NOT NULL
), envs AS (
    SELECT service, version, list_sort(list(env)) AS envs_applied
    FROM (SELECT DISTINCT service, version, env FROM ups)
    GROUP BY service, version
), firsts AS (
    SELECT service, version, arg_min_null(name, ord) AS name FROM ups GROUP BY service, version
), prod AS (
    SELECT service, version, min(ts) AS first_prod_at
    FROM ups WHERE list_contains($prod_envs, env)
    GROUP BY service, version
), downs AS (
    SELECT rowid AS ord, env, service, version, kind, name, ts
    FROM migrate_events
    WHERE ts <= $as_of AND direction = 'down' AND version IS NOT NULL
), files AS (
    SELECT service, version, bool_or(name = '<empty>') AS empty, bool_or(name <> '<empty>') AS named
    FROM downs
    GROUP BY service, version
), tried AS (   -- the down tried outside prod; its last try (ties at one instant: the one stored last)
    SELECT service, version, list_sort(list(DISTINCT env)) AS down_tried_envs, max(ts) AS last_down_at,
        arg_max_null(kind, (ts, ord)) = 'applied' AS last_down_ok, arg_max_null(env, (ts, ord)) AS last_down_env
    FROM downs
    WHERE kind IN ('applied', 'migration_failed') AND NOT list_contains($prod_envs, env)
    GROUP BY service, version
), reapplied AS (   -- the up applied again after the last down try, in the env of that try
    SELECT DISTINCT t.service, t.version
    FROM tried t JOIN ups u
      ON u.service = t.service AND u.version = t.version AND u.env = t.last_down_env AND u.ts > t.last_down_at
), ci AS (
    SELECT service, version, max(verified_at) AS down_tested_at,
        CASE WHEN bool_or("check" = 'down' AND status = 'missing') THEN 'missing'
             WHEN bool_or(list_contains($down_test_checks, "check") AND status = 'fail') THEN 'failed'
             WHEN bool_or("check" = 'down' AND status = 'pass') THEN 'passed'
             ELSE 'not_tested' END AS down_test,   -- not_tested: its up failed, so the down was never run
        string_agg("check", ', ' ORDER BY list_position($down_test_checks, "check"))
            FILTER (WHERE list_contains($down_test_checks, "check") AND status = 'fail') AS down_test_failed_checks
    FROM verify_results
    WHERE verified_at <= $as_of
    GROUP BY service, version
), judged AS (
    SELECT e.service, e.version, n.name, e.envs_applied, p.first_prod_at IS NOT NULL AS in_prod, p.first_prod_at,
        CASE WHEN coalesce(f.empty, false) THEN 'missing' WHEN coalesce(f.named, false) THEN 'present'
             ELSE 'unknown' END AS down_file,
        t.down_tried_envs, t.last_down_at, t.last_down_ok, r.service IS NOT NULL AS reapplied_after_down,
        ci.down_tested_at, ci.down_test, ci.down_test_failed_checks
    FROM envs e
    JOIN firsts n USING (service, version)
    LEFT JOIN prod p USING (service, version)
    LEFT JOIN files f USING (service, version)
    LEFT JOIN tried t USING (service, version)
    LEFT JOIN reapplied r USING (service, version)
    LEFT JOIN ci USING (service, version)
)
SELECT service, version, name, down_file, envs_applied, in_prod, first_prod_at, down_tried_envs, last_down_at,
    last_down_ok, reapplied_after_down,
    down_file = 'present' AND coalesce(last_down_ok, false) AND reapplied_after_down AS ready,
    down_tested_at, down_test, down_test_failed_checks,
    $as_of::TIMESTAMP AS as_of
FROM judged
ORDER BY service, version;

-- analyze_readiness: the rollback_readiness rows as of $as_of, one per (service, version) applied up: is the
-- down file there, was the down tried outside prod ($prod_envs) and did its last try pass, was the up applied
-- again after it in that env. `name` is the first up event's as stored (the order events were loaded in).
CREATE OR REPLACE TEMP TABLE analyze_readiness AS
WITH steps AS (
    SELECT rowid AS ord, env, service, version, direction, kind, name, ts
    FROM migrate_events
    WHERE ts <= $as_of AND (kind IN ('applied', 'migration_failed') OR direction = 'down')
      AND version IS NOT NULL AND direction IS NOT NULL
), ups AS (
    SELECT * FROM steps WHERE kind = 'applied' AND direction = 'up'
), base AS (
    SELECT service, version, arg_min_null(name, ord) AS name, list_sort(list(DISTINCT env)) AS envs_applied,
        bool_or(list_contains($prod_envs, env)) AS in_prod,
        min(ts) FILTER (WHERE list_contains($prod_envs, env)) AS first_prod_at
    FROM ups
    GROUP BY service, version
), files AS (
    SELECT service, version, bool_or(name = '<empty>') AS empty, bool_or(name <> '<empty>') AS named
    FROM steps WHERE direction = 'down'
    GROUP BY service, version
), tried AS (   -- the down tried outside prod; its last try (ties at one instant: the one stored last)
    SELECT service, version, list_sort(list(DISTINCT env)) AS down_tried_envs, max(ts) AS last_down_at,
        arg_max_null(kind, (ts, ord)) = 'applied' AS last_down_ok, arg_max_null(env, (ts, ord)) AS last_down_env
    FROM steps
    WHERE direction = 'down' AND kind IN ('applied', 'migration_failed') AND NOT list_contains($prod_envs, env)
    GROUP BY service, version
), joined AS (
    SELECT b.*, f.empty, f.named, t.down_tried_envs, t.last_down_at, t.last_down_ok, t.last_down_env
    FROM base b LEFT JOIN files f USING (service, version) LEFT JOIN tried t USING (service, version)
), reapplied AS (
    SELECT DISTINCT j.service, j.version
    FROM joined j JOIN ups u
      ON u.service = j.service AND u.version = j.version AND u.env = j.last_down_env AND u.ts > j.last_down_at
), judged AS (
    SELECT j.*,
        CASE WHEN coalesce(j.empty, false) THEN 'missing' WHEN coalesce(j.named, false) THEN 'present'
             ELSE 'unknown' END AS down_file,
        r.service IS NOT NULL AS reapplied_after_down
    FROM joined j LEFT JOIN reapplied r USING (service, version)
)
SELECT service, version, name, down_file, envs_applied, in_prod, first_prod_at, down_tried_envs, last_down_at,
    last_down_ok, reapplied_after_down,
    down_file = 'present' AND coalesce(last_down_ok, false) AND reapplied_after_down AS ready,
    $as_of::TIMESTAMP AS as_of
FROM judged
ORDER BY service, version;

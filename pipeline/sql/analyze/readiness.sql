-- analyze_readiness: the rollback_readiness rows as of $as_of, one per (service, version) applied up: is the
-- down file there, was the down tried outside prod ($prod_envs) and did its last try pass, was the up applied
-- again after it in that env. `name` is the first up event's as stored (the order events were loaded in).
-- The up steps are folded per (service, version, env) first: the envs applied and the re-application after a
-- down are then questions about those rows, not about every up step again.
CREATE OR REPLACE TEMP TABLE analyze_readiness AS
WITH up_envs AS MATERIALIZED (
    SELECT service, version, env, min(rowid) AS first_ord, arg_min_null(name, rowid) AS name,
        min(ts) AS first_at, max(ts) AS last_at
    FROM migrate_events
    WHERE ts <= $as_of AND kind = 'applied' AND direction = 'up' AND version IS NOT NULL
    GROUP BY service, version, env
), base AS (
    SELECT service, version, arg_min_null(name, first_ord) AS name, list_sort(list(env)) AS envs_applied,
        bool_or(list_contains($prod_envs, env)) AS in_prod,
        min(first_at) FILTER (WHERE list_contains($prod_envs, env)) AS first_prod_at
    FROM up_envs
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
), judged AS (
    SELECT b.*,
        CASE WHEN coalesce(f.empty, false) THEN 'missing' WHEN coalesce(f.named, false) THEN 'present'
             ELSE 'unknown' END AS down_file,
        t.down_tried_envs, t.last_down_at, t.last_down_ok,
        coalesce(u.last_at > t.last_down_at, false) AS reapplied_after_down
    FROM base b
    LEFT JOIN files f USING (service, version)
    LEFT JOIN tried t USING (service, version)
    LEFT JOIN up_envs u ON u.service = b.service AND u.version = b.version AND u.env = t.last_down_env
)
SELECT service, version, name, down_file, envs_applied, in_prod, first_prod_at, down_tried_envs, last_down_at,
    last_down_ok, reapplied_after_down,
    down_file = 'present' AND coalesce(last_down_ok, false) AND reapplied_after_down AS ready,
    $as_of::TIMESTAMP AS as_of
FROM judged
ORDER BY service, version;

-- name: version_drift
-- answers: Drift between environments: per service and env, the version range of its databases against the env before it in promotion order and the newest anywhere.
-- param: service = *                  (service glob)
-- param: env_order = dev,staging,prod (promotion order, comma-separated; other envs are listed after, unranked)
-- param: as_of = now                  (the clock: --as-of, else now, UTC; ISO date or timestamp)
--
-- Current versions per database as in `current_versions`. `waiting` counts the known versions the env
-- before has and this env's laggard database has not (what a promotion would apply); `ahead` marks an env
-- past the env before it (a version that skipped it). Counts are of versions seen in the logs.
WITH clock AS (
    SELECT CAST($as_of AS TIMESTAMP) AS as_of
),
known AS (
    SELECT k.* FROM clock, known_versions(clock.as_of) k
),
dbs AS (
    SELECT v.* FROM clock, database_versions(clock.as_of) v WHERE v.service GLOB $service
),
per_env AS (
    SELECT d.service, d.env,
           list_position(string_split($env_order, ','), d.env) AS pos,
           count(*) AS databases,
           min(d.version) AS min_version,
           max(d.version) AS max_version,
           count(*) FILTER (WHERE d.dirty) AS dirty_databases
    FROM dbs d
    GROUP BY d.service, d.env
),
ranked AS (
    SELECT p.*,
           (SELECT arg_max(x.env, x.pos) FROM per_env x
            WHERE x.service = p.service AND x.pos < p.pos) AS previous_env,
           max(p.max_version) OVER (PARTITION BY p.service) AS newest_version
    FROM per_env p
)
SELECT c.service, c.env, c.databases, c.min_version, c.max_version, c.dirty_databases,
       c.previous_env, prev.max_version AS previous_version,
       (SELECT count(*) FROM known k
        WHERE k.service = c.service AND k.version > c.min_version AND k.version <= prev.max_version) AS waiting,
       coalesce(c.max_version > prev.max_version, false) AS ahead,
       c.newest_version,
       (SELECT count(*) FROM known k
        WHERE k.service = c.service AND k.version > c.min_version AND k.version <= c.newest_version) AS behind_newest,
       CASE WHEN c.min_version IS NULL THEN 'version unknown'
            WHEN c.max_version > prev.max_version THEN 'ahead of ' || c.previous_env
            WHEN c.min_version < prev.max_version THEN 'behind ' || c.previous_env
            WHEN c.min_version < c.max_version THEN 'databases differ'
            WHEN c.min_version < c.newest_version THEN 'behind newest'
            ELSE 'in step' END AS drift
FROM ranked c
LEFT JOIN per_env prev ON prev.service = c.service AND prev.env = c.previous_env
ORDER BY c.service, c.pos NULLS LAST, c.env

-- name: current_versions
-- answers: The current migration version of every database at the clock, whether it is dirty, how it is known, and databases behind the rest of their env.
-- param: env = *               (environment glob)
-- param: service = *           (service glob)
-- param: as_of = now           (the clock: --as-of, else now, UTC; ISO date or timestamp)
--
-- Versions and dirtiness come from the `database_versions(as_of)` table macro (pipeline/sql/macros.sql): the
-- last run that showed the version (an `up`'s last step, `version`'s answer, the dirty version, or after a
-- down the known version below the last step down). NULL after a down means no version is applied (or the one
-- below is not in the logs). `dirty` follows the `dirty_now` rule.
WITH clock AS (
    SELECT CAST($as_of AS TIMESTAMP) AS as_of
),
latest AS (
    SELECT env, service, database, count(*) AS runs,
           max(started_at) AS last_run_at, arg_max(outcome, started_at) AS last_outcome
    FROM runs, clock
    WHERE started_at <= clock.as_of AND env GLOB $env AND service GLOB $service
    GROUP BY env, service, database
)
SELECT l.env, l.service, l.database,
       v.version,
       coalesce(v.dirty, false) AS dirty,
       v.known_from,
       v.known_at,
       max(v.version) OVER (PARTITION BY l.env, l.service) AS newest_in_env,
       v.version < max(v.version) OVER (PARTITION BY l.env, l.service) AS behind_in_env,
       l.last_run_at, l.last_outcome, l.runs
FROM latest l
CROSS JOIN clock
LEFT JOIN database_versions(clock.as_of) v USING (env, service, database)
ORDER BY l.service, l.env, l.database

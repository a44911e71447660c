-- name: dirty_now
-- answers: Databases dirty at the clock: since when, for how long, at which version, and the run that left them so.
-- param: env = *               (environment glob)
-- param: as_of = now           (the clock: --as-of, else now, UTC; ISO date or timestamp)
--
-- Dirty episodes come from the `dirty_episodes(as_of)` table macro (pipeline/sql/macros.sql): the rule of the
-- `dirty_open` finding, recomputed from `runs` for any clock. A `version` run that prints the dirty version
-- does not end one.
WITH clock AS (
    SELECT CAST($as_of AS TIMESTAMP) AS as_of
),
latest AS (
    SELECT env, service, database, max(started_at) AS last_run_at, arg_max(outcome, started_at) AS last_outcome
    FROM runs, clock WHERE started_at <= clock.as_of
    GROUP BY env, service, database
)
SELECT e.env, e.service, e.database, e.dirty_version, e.dirty_since,
       round(date_diff('second', e.dirty_since, clock.as_of) / 3600.0, 1) AS dirty_hours,
       e.cause_outcome, e.cause_error_class, left(e.cause_error, 200) AS cause_error,
       e.dirty_runs, l.last_run_at, l.last_outcome, e.cause_run_id
FROM clock, dirty_episodes(clock.as_of) e
JOIN latest l USING (env, service, database)
WHERE e.env GLOB $env AND e.recovered_at IS NULL
ORDER BY dirty_hours DESC, e.env, e.service, e.database

-- name: dirty_now
-- answers: Databases dirty at the clock: since when, for how long, at which version, and the run that left them so.
-- param: env = *               (environment glob)
-- param: as_of = 2026-11-16    (the clock, UTC; ISO date or timestamp)
--
-- A dirty episode starts at the first run with dirty evidence (it left the database dirty, or migrate
-- refused with `Dirty database version N`, or `version` printed `N (dirty)`) and ends at the next clean run
-- (success or no change, with no dirty evidence): the same rule as the `dirty_open` finding, recomputed
-- from `runs` for any clock. A `version` run that prints the dirty version does not end it.
WITH clock AS (
    SELECT CAST($as_of AS TIMESTAMP) AS as_of
),
r AS (
    SELECT runs.*,
           left_dirty OR outcome = 'dirty' OR dirty_version IS NOT NULL AS evidence
    FROM runs, clock
    WHERE started_at <= clock.as_of
),
marked AS (
    SELECT *,
           NOT evidence AND outcome IN ('success', 'no_change') AS clean,
           -- clean runs so far: every run of one episode shares the count of the clean runs before it
           count(*) FILTER (WHERE NOT evidence AND outcome IN ('success', 'no_change'))
               OVER (PARTITION BY env, service, database ORDER BY started_at, run_id
                     ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS episode
    FROM r
),
episodes AS (
    SELECT env, service, database, episode,
           arg_min(coalesce(ended_at, started_at), started_at) AS dirty_since,
           arg_min(run_id, started_at) AS cause_run_id,
           arg_min(outcome, started_at) AS cause_outcome,
           arg_min(error_class, started_at) AS cause_error_class,
           arg_min(split_part(error_text, chr(10), 1), started_at) AS cause_error,
           arg_max(dirty_version, started_at) FILTER (WHERE dirty_version IS NOT NULL) AS dirty_version,
           count(*) AS dirty_runs,
           max(started_at) AS last_dirty_run_at
    FROM marked
    WHERE evidence
    GROUP BY env, service, database, episode
),
latest AS (
    SELECT env, service, database, max(started_at) AS last_run_at,
           arg_max(outcome, started_at) AS last_outcome
    FROM r
    GROUP BY env, service, database
)
SELECT e.env, e.service, e.database, e.dirty_version, e.dirty_since,
       round(date_diff('second', e.dirty_since, clock.as_of) / 3600.0, 1) AS dirty_hours,
       e.cause_outcome, e.cause_error_class, left(e.cause_error, 200) AS cause_error,
       e.dirty_runs, l.last_run_at, l.last_outcome, e.cause_run_id
FROM episodes e
CROSS JOIN clock
JOIN latest l USING (env, service, database)
WHERE e.env GLOB $env
  AND NOT EXISTS (SELECT 1 FROM marked c
                  WHERE c.clean AND c.env = e.env AND c.service = e.service AND c.database = e.database
                    AND c.episode = e.episode + 1)
ORDER BY dirty_hours DESC, e.env, e.service, e.database

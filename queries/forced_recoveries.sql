-- name: forced_recoveries
-- answers: Dirty databases that came back clean, so someone ran `migrate force`: when, after how long, and whether the dirty script was re-run.
-- param: env = *               (environment glob)
-- param: days = 28             (recoveries this far back from the clock)
-- param: as_of = 2026-11-16    (the clock, UTC; ISO date or timestamp)
--
-- migrate refuses everything but `force` while a database is dirty, and `force` prints nothing: a clean run
-- after dirty evidence means the version was forced in between (recorded only when a wrapper logged the
-- command). `forced_to` is inferred from the clean run: it applied the dirty version again (forced to the
-- version before it, then `up`) or it did not (forced to the dirty version itself).
WITH clock AS (
    SELECT CAST($as_of AS TIMESTAMP) AS as_of,
           CAST($as_of AS TIMESTAMP) - to_days(CAST($days AS INTEGER)) AS since
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
           count(*) FILTER (WHERE NOT evidence AND outcome IN ('success', 'no_change'))
               OVER (PARTITION BY env, service, database ORDER BY started_at, run_id
                     ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS episode
    FROM r
),
episodes AS (
    SELECT env, service, database, episode,
           arg_min(coalesce(ended_at, started_at), started_at) AS dirty_since,
           arg_min(outcome, started_at) AS cause_outcome,
           arg_min(error_class, started_at) AS cause_error_class,
           arg_max(dirty_version, started_at) FILTER (WHERE dirty_version IS NOT NULL) AS dirty_version,
           count(*) AS dirty_runs
    FROM marked
    WHERE evidence
    GROUP BY env, service, database, episode
)
SELECT e.env, e.service, e.database, e.dirty_version, e.dirty_since,
       c.started_at AS recovered_at,
       round(date_diff('second', e.dirty_since, c.started_at) / 3600.0, 1) AS dirty_hours,
       CASE WHEN c.command = 'force' AND c.command_known THEN 'recorded by the wrapper'
            ELSE 'inferred: a clean run followed dirty' END AS how_known,
       CASE WHEN e.dirty_version IS NULL THEN NULL
            WHEN EXISTS (SELECT 1 FROM migrate_events a
                         WHERE a.run_id = c.run_id AND a.kind = 'applied' AND a.direction = 'up'
                           AND a.version = e.dirty_version)
                 THEN 'the version before ' || e.dirty_version || ' (then re-ran ' || e.dirty_version || ')'
            ELSE CAST(e.dirty_version AS VARCHAR) END AS forced_to,
       e.cause_outcome, e.cause_error_class, e.dirty_runs,
       c.outcome AS clean_outcome, c.applied AS clean_applied, c.to_version AS clean_to_version,
       c.run_id AS clean_run_id
FROM episodes e
CROSS JOIN clock
JOIN marked c
  ON c.clean AND c.env = e.env AND c.service = e.service AND c.database = e.database
 AND c.episode = e.episode + 1
WHERE e.env GLOB $env AND c.started_at > clock.since
ORDER BY recovered_at DESC

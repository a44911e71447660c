-- name: forced_recoveries
-- answers: Dirty databases that came back clean, so someone ran `migrate force`: when, after how long, and whether the dirty script was re-run.
-- param: env = *               (environment glob)
-- param: days = 28             (recoveries this far back from the clock)
-- param: as_of = now           (the clock: --as-of, else now, UTC; ISO date or timestamp)
--
-- migrate refuses everything but `force` while a database is dirty, and `force` prints nothing: a clean run
-- after dirty evidence means the version was forced in between (recorded only when a wrapper logged the
-- command). `forced_to` is inferred from the clean run: it applied the dirty version again (forced to the
-- version before it, then `up`) or it did not (forced to the dirty version itself).
WITH clock AS (
    SELECT CAST($as_of AS TIMESTAMP) AS as_of,
           CAST($as_of AS TIMESTAMP) - to_days(CAST($days AS INTEGER)) AS since
)
SELECT e.env, e.service, e.database, e.dirty_version, e.dirty_since,
       e.recovered_at,
       round(date_diff('second', e.dirty_since, e.recovered_at) / 3600.0, 1) AS dirty_hours,
       CASE WHEN e.force_recorded THEN 'recorded by the wrapper'
            ELSE 'inferred: a clean run followed dirty' END AS how_known,
       CASE WHEN e.dirty_version IS NULL THEN NULL
            WHEN EXISTS (SELECT 1 FROM migrate_events a
                         WHERE a.run_id = e.recovered_run_id AND a.kind = 'applied' AND a.direction = 'up'
                           AND a.version = e.dirty_version)
                 THEN 'the version before ' || e.dirty_version || ' (then re-ran ' || e.dirty_version || ')'
            ELSE CAST(e.dirty_version AS VARCHAR) END AS forced_to,
       e.cause_outcome, e.cause_error_class, e.dirty_runs,
       e.recovered_outcome AS clean_outcome, e.recovered_applied AS clean_applied,
       e.recovered_to_version AS clean_to_version, e.recovered_run_id AS clean_run_id
FROM clock, dirty_episodes(clock.as_of) e
WHERE e.env GLOB $env AND e.recovered_at IS NOT NULL AND e.recovered_at > clock.since
ORDER BY recovered_at DESC

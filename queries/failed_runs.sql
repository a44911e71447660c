-- name: failed_runs
-- answers: Failed runs with their error class, the script that failed, the first line of the error, and whether a clean run followed.
-- param: env = *                                          (environment glob)
-- param: outcomes = failed,dirty,locked,error,interrupted (outcomes to list, comma-separated)
-- param: days = 28                                        (how far back from the clock)
-- param: as_of = now                                      (the clock: --as-of, else now, UTC; ISO date or timestamp)
--
-- `version` is the version a failed, interrupted or refused (dirty) run was on; for lock and connection
-- errors no script ran, so it is NULL. A failure without -verbose does not name it: then it is the dirty
-- version migrate printed next on that database, once that is at or before the clock (else inferred, or NULL).
-- The script name comes from any step of that version in the logs.
-- `error_message` / `sql_line` / `error_detail` are Postgres's parts of a `migration failed` error.
WITH clock AS (
    SELECT CAST($as_of AS TIMESTAMP) AS as_of,
           CAST($as_of AS TIMESTAMP) - to_days(CAST($days AS INTEGER)) AS since
),
f AS (
    SELECT r.*,
           CASE WHEN r.outcome IN ('failed', 'interrupted', 'dirty')
                THEN coalesce(CASE WHEN r.next_dirty_at <= clock.as_of THEN r.next_dirty_version END,
                              r.dirty_version, r.to_version) END AS failed_version
    FROM runs r, clock
    WHERE r.started_at > clock.since AND r.started_at <= clock.as_of
      AND r.env GLOB $env
      AND list_contains(string_split($outcomes, ','), r.outcome)
)
SELECT f.started_at, f.env, f.service, f.database, f.outcome, f.error_class,
       f.failed_version AS version,
       (SELECT arg_min(e.name, e.ts) FROM migrate_events e
        WHERE e.service = f.service AND e.version = f.failed_version AND e.direction = 'up'
          AND e.name IS NOT NULL AND e.name <> '<empty>') AS script,
       left(split_part(f.error_text, chr(10), 1), 200) AS first_error_line,
       m.error_message, m.sql_line, m.error_detail,
       f.left_dirty,
       (SELECT min(c.started_at) FROM runs c, clock
        WHERE c.env = f.env AND c.service = f.service AND c.database = f.database
          AND c.started_at > f.started_at AND c.started_at <= clock.as_of
          AND is_clean_run(c.left_dirty, c.outcome, c.dirty_version)) AS clean_run_at,
       f.command, f.exit_code, f.run_id
FROM f
LEFT JOIN (SELECT run_id, arg_max(error_message, seq) AS error_message, arg_max(sql_line, seq) AS sql_line,
                  arg_max(error_detail, seq) AS error_detail
           FROM migrate_events WHERE kind = 'migration_failed' GROUP BY run_id) m USING (run_id)
ORDER BY f.started_at DESC

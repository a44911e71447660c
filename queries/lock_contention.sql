-- name: lock_contention
-- answers: Lock contention by service: migrate's advisory lock not taken, scripts failing on table locks, and the runs that held the lock.
-- param: env = *               (environment glob)
-- param: days = 28             (how far back from the clock)
-- param: as_of = now           (the clock: --as-of, else now, UTC; ISO date or timestamp)
--
-- Two kinds of contention: `locked` runs (migrate could not take its advisory lock: another migrate held it,
-- `error: timeout: can't acquire database lock`) and scripts that failed with `lock_conflict` (Postgres lock
-- timeout or deadlock against the application). A holder is another run on the same database whose span
-- covers the moment the advisory lock was refused (table locks are held by the application: no holder is
-- looked for). Services with no contention in the window are left out.
WITH clock AS (
    SELECT CAST($as_of AS TIMESTAMP) AS as_of,
           CAST($as_of AS TIMESTAMP) - to_days(CAST($days AS INTEGER)) AS since
),
r AS (
    SELECT runs.*
    FROM runs, clock
    WHERE started_at > clock.since AND started_at <= clock.as_of AND env GLOB $env
),
contention AS (
    SELECT r.*,
           CASE WHEN outcome = 'locked' THEN 'advisory_lock' ELSE 'table_lock' END AS lock_kind,
           (SELECT arg_max(h.run_id, h.ended_at) FROM runs h
            WHERE r.outcome = 'locked' AND h.env = r.env AND h.service = r.service AND h.database = r.database
              AND h.run_id <> r.run_id
              AND h.started_at <= r.started_at AND coalesce(h.ended_at, h.started_at) >= r.started_at) AS holder_run_id
    FROM r
    WHERE outcome = 'locked' OR error_class = 'lock_conflict'
),
holders AS (
    SELECT c.run_id, date_diff('millisecond', h.started_at, h.ended_at) / 1000.0 AS holder_seconds
    FROM contention c JOIN runs h ON h.run_id = c.holder_run_id
)
SELECT c.env, c.service,
       (SELECT count(*) FROM r WHERE r.env = c.env AND r.service = c.service) AS runs,
       count(*) FILTER (WHERE lock_kind = 'advisory_lock') AS advisory_lock_timeouts,
       count(*) FILTER (WHERE lock_kind = 'table_lock') AS table_lock_failures,
       round(100.0 * count(*) / (SELECT count(*) FROM r WHERE r.env = c.env AND r.service = c.service), 1)
           AS contention_pct,
       count(DISTINCT c.database) AS databases,
       count(c.holder_run_id) AS holders_found,
       round(max(h.holder_seconds), 1) AS longest_holder_s,
       min(c.started_at) AS first_at,
       max(c.started_at) AS last_at,
       string_agg(DISTINCT c.database, ', ' ORDER BY c.database) AS database_list
FROM contention c
LEFT JOIN holders h USING (run_id)
GROUP BY c.env, c.service
ORDER BY advisory_lock_timeouts + table_lock_failures DESC, c.env, c.service

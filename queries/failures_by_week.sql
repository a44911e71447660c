-- name: failures_by_week
-- answers: Failed runs per ISO week and environment: runs, failures, failure rate, by outcome, services failing.
-- param: env = *               (environment glob, e.g. prod or preview-*)
-- param: weeks = 8             (whole ISO weeks back, counting the clock's week)
-- param: as_of = now           (the clock: --as-of, else now, UTC; ISO date or timestamp)
--
-- A failure is a run whose outcome is failed, dirty (refused: the database was already dirty), locked,
-- error (connection, missing file, ...) or interrupted: the set the failure-spike finding counts.
WITH clock AS (
    SELECT CAST($as_of AS TIMESTAMP) AS as_of,
           date_trunc('week', CAST($as_of AS TIMESTAMP)) - to_weeks(CAST($weeks AS INTEGER) - 1) AS since
),
r AS (
    SELECT runs.*, is_failure(outcome) AS failure
    FROM runs, clock
    WHERE started_at >= clock.since AND started_at <= clock.as_of AND env GLOB $env
)
SELECT strftime(date_trunc('week', started_at), '%G-W%V') AS week,
       CAST(date_trunc('week', started_at) AS DATE) AS week_start,
       env,
       count(*) AS runs,
       count(*) FILTER (WHERE failure) AS failures,
       round(100.0 * count(*) FILTER (WHERE failure) / count(*), 1) AS failure_pct,
       count(*) FILTER (WHERE outcome = 'failed') AS failed,
       count(*) FILTER (WHERE outcome = 'dirty') AS dirty,
       count(*) FILTER (WHERE outcome = 'locked') AS locked,
       count(*) FILTER (WHERE outcome = 'error') AS error,
       count(*) FILTER (WHERE outcome = 'interrupted') AS interrupted,
       count(DISTINCT database) FILTER (WHERE failure) AS databases_failing,
       string_agg(DISTINCT service, ', ' ORDER BY service) FILTER (WHERE failure) AS services_failing
FROM r
GROUP BY ALL
ORDER BY week_start, env

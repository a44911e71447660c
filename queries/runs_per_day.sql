-- name: runs_per_day
-- answers: Runs per day and environment: outcomes, scripts applied, their total own time, and databases touched.
-- param: env = *               (environment glob)
-- param: days = 28             (how far back from the clock)
-- param: as_of = now           (the clock: --as-of, else now, UTC; ISO date or timestamp)
--
-- Days are UTC. `own_s` sums the scripts' own execution time of the day's applied steps (up and down).
WITH clock AS (
    SELECT CAST($as_of AS TIMESTAMP) AS as_of,
           CAST($as_of AS TIMESTAMP) - to_days(CAST($days AS INTEGER)) AS since
),
r AS (
    SELECT runs.*
    FROM runs, clock
    WHERE started_at > clock.since AND started_at <= clock.as_of AND env GLOB $env
),
steps AS (
    SELECT CAST(e.ts AS DATE) AS day, e.env, count(*) AS steps, sum(e.own_ms) AS own_ms
    FROM migrate_events e, clock
    WHERE e.kind = 'applied' AND e.ts > clock.since AND e.ts <= clock.as_of AND e.env GLOB $env
    GROUP BY ALL
)
SELECT CAST(r.started_at AS DATE) AS day, r.env,
       count(*) AS runs,
       count(*) FILTER (WHERE outcome = 'success') AS success,
       count(*) FILTER (WHERE outcome = 'no_change') AS no_change,
       count(*) FILTER (WHERE is_failure(outcome)) AS failures,
       count(DISTINCT r.service || '/' || r.database) AS databases,
       coalesce(any_value(s.steps), 0) AS steps_applied,
       round(coalesce(any_value(s.own_ms), 0) / 1000, 1) AS own_s
FROM r
LEFT JOIN steps s ON s.day = CAST(r.started_at AS DATE) AND s.env = r.env
GROUP BY ALL
ORDER BY day, r.env

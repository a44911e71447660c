-- name: dirty_mttr
-- answers: Time to recover from dirty (MTTR) per environment and service: episodes recovered, mean, median and worst hours, and episodes still open.
-- param: env = *               (environment glob)
-- param: days = 28             (episodes recovered, or still open, within this many days of the clock)
-- param: as_of = now           (the clock: --as-of, else now, UTC; ISO date or timestamp)
--
-- Episodes as in `dirty_now`: from the end of the first run with dirty evidence to the start of the next
-- clean run. Open episodes are not in the MTTR; they are counted, with the hours they have lasted so far.
WITH clock AS (
    SELECT CAST($as_of AS TIMESTAMP) AS as_of,
           CAST($as_of AS TIMESTAMP) - to_days(CAST($days AS INTEGER)) AS since
),
timed AS (
    SELECT e.env, e.service, e.database, e.dirty_since, e.recovered_at,
           date_diff('second', e.dirty_since, coalesce(e.recovered_at, clock.as_of)) / 3600.0 AS hours
    FROM clock, dirty_episodes(clock.as_of) e
    WHERE e.env GLOB $env AND coalesce(e.recovered_at, clock.as_of) > clock.since
)
SELECT env, service,
       count(*) FILTER (WHERE recovered_at IS NOT NULL) AS recovered,
       round(avg(hours) FILTER (WHERE recovered_at IS NOT NULL), 1) AS mttr_hours,
       round(median(hours) FILTER (WHERE recovered_at IS NOT NULL), 1) AS median_hours,
       round(max(hours) FILTER (WHERE recovered_at IS NOT NULL), 1) AS worst_hours,
       count(*) FILTER (WHERE recovered_at IS NULL) AS open_now,
       round(max(hours) FILTER (WHERE recovered_at IS NULL), 1) AS open_hours,
       count(DISTINCT database) AS databases,
       max(recovered_at) AS last_recovered_at
FROM timed
GROUP BY env, service
ORDER BY env, service

-- name: skipped_staging
-- answers: Versions applied in prod before (or without) staging: when each reached prod, when (if ever) staging, and how late.
-- param: env = prod            (the later environment)
-- param: before = staging      (the environment a version should pass first)
-- param: days = 28             (versions first applied in env this far back from the clock)
-- param: as_of = now           (the clock: --as-of, else now, UTC; ISO date or timestamp)
--
-- From the up steps in `migrate_events`. Services with no runs at all in `before` are left out (nothing to
-- compare with), as the `promotion_skipped` finding does. Versions older than the logs are not judged.
WITH clock AS (
    SELECT CAST($as_of AS TIMESTAMP) AS as_of,
           CAST($as_of AS TIMESTAMP) - to_days(CAST($days AS INTEGER)) AS since
),
ups AS (
    SELECT e.env, e.service, e.database, e.version, e.name, e.ts
    FROM migrate_events e, clock
    WHERE e.kind = 'applied' AND e.direction = 'up' AND e.version IS NOT NULL AND e.ts <= clock.as_of
),
later AS (
    SELECT service, version, arg_min(name, ts) AS name, min(ts) AS first_at,
           count(DISTINCT database) AS databases, arg_min(database, ts) AS first_database
    FROM ups
    WHERE env = $env
    GROUP BY service, version
),
earlier AS (
    SELECT service, version, min(ts) AS first_at
    FROM ups
    WHERE env = $before
    GROUP BY service, version
)
SELECT l.service, l.version, l.name,
       l.first_at AS first_in_env_at, l.first_database, l.databases AS databases_in_env,
       b.first_at AS first_in_before_at,
       CASE WHEN b.first_at IS NULL THEN 'never in ' || $before
            ELSE 'reached ' || $before || ' ' || round(date_diff('second', l.first_at, b.first_at) / 3600.0, 1)
                 || ' h later' END AS verdict,
       (SELECT string_agg(DISTINCT u.env, ', ' ORDER BY u.env) FROM ups u
        WHERE u.service = l.service AND u.version = l.version) AS envs_applied
FROM later l
CROSS JOIN clock
LEFT JOIN earlier b USING (service, version)
WHERE (b.first_at IS NULL OR b.first_at > l.first_at)
  AND l.first_at > clock.since
  AND EXISTS (SELECT 1 FROM runs r
              WHERE r.env = $before AND r.service = l.service AND r.started_at <= clock.as_of)
ORDER BY l.first_at DESC

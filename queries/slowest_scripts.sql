-- name: slowest_scripts
-- answers: The slowest scripts of an environment against their baselines (own time, median, ratio).
-- param: env = prod            (environment to look at; a glob such as preview-* or a pooled name such as preview)
-- param: days = 28             (how far back from the clock)
-- param: as_of = now           (the clock: --as-of, else now, UTC; ISO date or timestamp)
-- param: limit = 20            (how many scripts)
--
-- One row per script (env, service, version, direction) applied in the window, slowest first. Own time is
-- the script's own execution (`own_ms`), not migrate's near-cumulative APPLIED figure. The baseline is the
-- `script_baselines` row of the script's scope (ephemeral envs share a pooled one), as of the last analyze:
-- it may include the window's own applications, so a level shift shows as a high p95 beside a low median.
WITH clock AS (
    SELECT CAST($as_of AS TIMESTAMP) AS as_of,
           CAST($as_of AS TIMESTAMP) - to_days(CAST($days AS INTEGER)) AS since
),
applied AS (
    SELECT e.*,
           CASE WHEN e.env GLOB 'preview-*' OR e.env GLOB 'pr-*' THEN 'preview'
                WHEN e.env GLOB 'ci-*' THEN 'ci'
                ELSE e.env END AS scope_env
    FROM migrate_events e, clock
    WHERE e.kind = 'applied' AND e.own_ms IS NOT NULL
      AND e.ts > clock.since AND e.ts <= clock.as_of
),
per_script AS (
    SELECT scope_env, service, version, direction,
           arg_max(name, ts) AS name,
           count(*) AS applications,
           count(DISTINCT database) AS databases,
           max(own_ms) AS slowest_ms,
           median(own_ms) AS window_median_ms,
           arg_max(database, own_ms) AS slowest_database,
           arg_max(ts, own_ms) AS slowest_at,
           arg_max(run_id, own_ms) AS slowest_run_id,
           arg_max(own_ms, ts) AS last_ms
    FROM applied
    WHERE env GLOB $env OR scope_env GLOB $env
    GROUP BY scope_env, service, version, direction
)
SELECT p.scope_env AS env, p.service, p.version, p.direction, p.name,
       p.applications, p.databases,
       round(p.slowest_ms, 1) AS slowest_own_ms,
       round(p.window_median_ms, 1) AS window_median_ms,
       round(p.last_ms, 1) AS last_own_ms,
       p.slowest_database, p.slowest_at,
       round(b.median_ms, 1) AS baseline_median_ms,
       round(b.p95_ms, 1) AS baseline_p95_ms,
       b.n AS baseline_n,
       b.state AS baseline_state,
       round(p.slowest_ms / nullif(b.median_ms, 0), 1) AS slowest_vs_median,
       round(p.last_ms / nullif(b.median_ms, 0), 1) AS last_vs_median,
       p.slowest_run_id
FROM per_script p
LEFT JOIN script_baselines b
       ON b.env = p.scope_env AND b.service = p.service AND b.version = p.version AND b.direction = p.direction
ORDER BY p.slowest_ms DESC, p.service, p.version
LIMIT CAST($limit AS INTEGER)

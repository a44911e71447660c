-- name: pending_prod_duration
-- answers: Scripts applied in staging/preview but not yet in prod, with their predicted prod duration from the staging/preview baselines.
-- param: target = prod                        (the environment the scripts are waiting for)
-- param: from_envs = staging,preview-*,pr-*   (environments whose timings predict it: comma-separated globs)
-- param: as_of = now                          (the clock: --as-of, else now, UTC; ISO date or timestamp)
--
-- Pending: an up script applied in a source env whose version is above the current version of at least one
-- target database (current versions as in `current_versions`, so a version rolled back in prod counts as
-- pending again). Source baseline: median and p95 of its own time in the source envs up to the clock
-- (computed here, so any clock works). Prediction: that median times the service's target/source ratio,
-- the median over versions applied in both of (target median / source median); with no such version, the
-- ratio of the whole fleet, else 1. `fleet_total_ms` = predicted x target databases still below it (one
-- after another); `service_predicted_ms` sums the service's pending scripts (one database's rollout);
-- `target_before_ms` is the script's own time in the target when it ran there before (then rolled back).
WITH clock AS (
    SELECT CAST($as_of AS TIMESTAMP) AS as_of
),
globs AS (
    SELECT unnest(string_split($from_envs, ',')) AS glob
),
applied AS (
    SELECT e.*,
           e.env = $target AS in_target,
           EXISTS (SELECT 1 FROM globs WHERE e.env GLOB globs.glob) AS in_source
    FROM migrate_events e, clock
    WHERE e.kind = 'applied' AND e.direction = 'up' AND e.version IS NOT NULL AND e.ts <= clock.as_of
),
source AS (
    SELECT service, version, arg_max(name, ts) AS name,
           count(own_ms) AS n, median(own_ms) AS median_ms, quantile_cont(own_ms, 0.95) AS p95_ms,
           string_agg(DISTINCT env, ', ' ORDER BY env) AS source_envs, max(ts) AS last_source_at
    FROM applied
    WHERE in_source AND own_ms IS NOT NULL
    GROUP BY service, version
),
target AS (
    SELECT service, version, median(own_ms) AS median_ms
    FROM applied
    WHERE in_target AND own_ms IS NOT NULL
    GROUP BY service, version
),
ratios AS (   -- how much slower the target is than the sources, per version applied in both
    SELECT s.service, t.median_ms / s.median_ms AS ratio
    FROM source s JOIN target t USING (service, version)
    WHERE s.median_ms > 0
),
service_ratio AS (
    SELECT service, median(ratio) AS ratio, count(*) AS ratio_versions FROM ratios GROUP BY service
),
fleet_ratio AS (
    SELECT median(ratio) AS ratio FROM ratios
),
-- the current version of each target database
target_db AS (   -- the target env's databases that show a version (see `database_versions`)
    SELECT v.service, v.database, v.version
    FROM clock, database_versions(clock.as_of) v
    WHERE v.env = $target AND v.known_at IS NOT NULL
),
pending AS (
    SELECT s.*,
           (SELECT count(*) FROM target_db d
            WHERE d.service = s.service AND coalesce(d.version, -1) < s.version) AS databases_pending,
           (SELECT max(d.version) FROM target_db d WHERE d.service = s.service) AS target_version,
           (SELECT count(*) FROM target_db d WHERE d.service = s.service) AS target_databases
    FROM source s
)
SELECT p.service, p.version, p.name, p.source_envs, p.last_source_at,
       p.target_version, p.databases_pending, p.target_databases,
       p.n AS source_n,
       round(p.median_ms, 1) AS source_median_ms,
       round(p.p95_ms, 1) AS source_p95_ms,
       round(coalesce(sr.ratio, fr.ratio, 1.0), 2) AS ratio,
       CASE WHEN sr.ratio IS NOT NULL THEN 'service: ' || sr.ratio_versions || ' shared version(s)'
            WHEN fr.ratio IS NOT NULL THEN 'fleet'
            ELSE 'none: 1.0' END AS ratio_from,
       round(p.median_ms * coalesce(sr.ratio, fr.ratio, 1.0), 1) AS predicted_ms,
       round(p.p95_ms * coalesce(sr.ratio, fr.ratio, 1.0), 1) AS predicted_p95_ms,
       round(p.median_ms * coalesce(sr.ratio, fr.ratio, 1.0) * greatest(p.databases_pending, 1), 1) AS fleet_total_ms,
       round(sum(p.median_ms * coalesce(sr.ratio, fr.ratio, 1.0)) OVER (PARTITION BY p.service), 1)
           AS service_predicted_ms,
       round(t.median_ms, 1) AS target_before_ms
FROM pending p
LEFT JOIN service_ratio sr USING (service)
LEFT JOIN target t USING (service, version)
CROSS JOIN fleet_ratio fr
WHERE p.databases_pending > 0 OR p.target_databases = 0
ORDER BY predicted_ms DESC, p.service, p.version

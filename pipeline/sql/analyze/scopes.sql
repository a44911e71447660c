-- analyze_scopes: one row per baseline scope (env or its pool, service, version, direction) of the timed
-- applications up to $as_of, with the script_baselines figures and `candidate`: whether any of its
-- applications can be an outlier at all.
--
-- An outlier is at least $outlier_min_excess_ms slower than, and $outlier_ratio times, the median of its
-- baseline; that median is no less than the scope's fastest application and the outlier no slower than its
-- slowest (in floating point too: subtraction and division are monotonic). So a scope whose slowest and
-- fastest are closer than that, or that has no more than $min_samples applications, has no outlier, and
-- only the few candidates are scored (analyze/outliers.sql, analyze/rescore.sql).
--
-- The last application is the one with the latest ts; `tied` marks the scopes where another shares that
-- instant, whose name and last_ms analyze/scope_ties.sql sets by (ts, event_id) (a (ts, event_id) key on
-- every row would cost more than the rest of this query).
-- Parameters: $as_of, $min_samples, $outlier_ratio, $outlier_min_excess_ms, $p95.
CREATE OR REPLACE TEMP TABLE analyze_scopes AS
WITH apps AS (
    SELECT coalesce(p.pool, e.env) AS env, e.service, e.version, e.direction, e.name, e.own_ms, e.ts
    FROM migrate_events e LEFT JOIN analyze_pool p ON p.env = e.env
    WHERE e.kind = 'applied' AND e.own_ms IS NOT NULL AND e.ts <= $as_of
), scopes AS (
    SELECT env, service, version, direction,
        count(*)::INTEGER AS n,
        list_sort(list(own_ms)) AS sorted_ms,
        min(own_ms) AS fastest,
        max(own_ms) AS slowest,
        min(ts) AS first_at,
        max(ts, 2) AS latest,
        arg_max_null(name, ts) AS name,
        arg_max_null(own_ms, ts) AS last_ms
    FROM apps
    GROUP BY env, service, version, direction
), figures AS (
    SELECT *, analyze_quantile(sorted_ms, 0.5::DOUBLE) AS median_ms FROM scopes
)
SELECT env, service, version, direction, name, n, median_ms,
    analyze_quantile(sorted_ms, $p95::DOUBLE) AS p95_ms,
    analyze_quantile(list_sort(list_transform(sorted_ms, lambda x: abs(x - median_ms))), 0.5::DOUBLE) AS mad_ms,
    last_ms, latest[1] AS last_at, first_at, NULL::INTEGER AS databases,
    n > $min_samples AND slowest - fastest >= $outlier_min_excess_ms
        AND slowest / greatest(fastest, 1e-3) >= $outlier_ratio AS candidate,
    latest[2] IS NOT DISTINCT FROM latest[1] AS tied
FROM figures;

-- The databases of each scope: distinct pairs first, then counted (cheaper than count(DISTINCT), and it spills).
UPDATE analyze_scopes s
SET databases = d.databases
FROM (
    SELECT env, service, version, direction, count(*)::INTEGER AS databases
    FROM (
        SELECT DISTINCT coalesce(p.pool, e.env) AS env, e.service, e.version, e.direction, e.database
        FROM migrate_events e LEFT JOIN analyze_pool p ON p.env = e.env
        WHERE e.kind = 'applied' AND e.own_ms IS NOT NULL AND e.ts <= $as_of
    )
    GROUP BY env, service, version, direction
) d
WHERE s.env = d.env AND s.service = d.service AND s.version = d.version AND s.direction = d.direction;

SELECT count(*) FILTER (WHERE tied) FROM analyze_scopes;

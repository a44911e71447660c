-- analyze_scopes: one row per baseline scope (env or its pool, service, version, direction) of the timed
-- applications up to $as_of: the script_baselines figures, and `suspect`, whether any application may be an
-- outlier against the last $window applications of its scope before it.
--
-- `suspect` comes from a first, set-based pass (DuckDB's window quantile_cont) that only chooses the scopes
-- to score exactly (analyze/rescore.sql); a scope with no outlier in that pass has none at all, since
-- keeping outliers out of later baselines changes nothing before the first one. quantile_cont rounds in the
-- last bits unlike the exact formula, so every threshold is taken with a margin (1e-9 of the values) that
-- rounding cannot cross: a suspect may prove normal, an outlier is never missed.
-- Parameters: $as_of, $window, $min_samples, $outlier_z, $outlier_ratio, $outlier_min_excess_ms,
-- $sigma_per_half_iqr, $mad_floor_ratio, $mad_floor_ms, $p95.
CREATE OR REPLACE TEMP TABLE analyze_scopes AS
WITH apps AS (
    SELECT coalesce(p.pool, e.env) AS env, e.service, e.version, e.direction, e.name, e.database, e.own_ms,
           e.ts, e.event_id
    FROM migrate_events e LEFT JOIN analyze_pool p ON p.env = e.env
    WHERE e.kind = 'applied' AND e.own_ms IS NOT NULL AND e.ts <= $as_of
), prior AS (
    SELECT *, count(*) OVER w AS prior_n, quantile_cont(own_ms, [0.25, 0.5]) OVER w AS q
    FROM apps
    WINDOW w AS (PARTITION BY env, service, version, direction ORDER BY ts, event_id
                 ROWS BETWEEN $window PRECEDING AND 1 PRECEDING)
), marked AS (
    SELECT *, coalesce(
        prior_n >= $min_samples
        AND own_ms >= $outlier_ratio * (greatest(q[2], 1e-3) - slack)
        AND own_ms - q[2] >= $outlier_min_excess_ms - slack
        AND own_ms - q[2] >= $outlier_z * (greatest((q[2] - q[1]) * $sigma_per_half_iqr, q[2] * $mad_floor_ratio,
                                                    $mad_floor_ms) - slack) - slack,
        false) AS suspect
    FROM (SELECT *, 1e-9 * (1 + abs(own_ms) + abs(q[1]) + abs(q[2])) AS slack FROM prior)
), scopes AS (
    SELECT env, service, version, direction,
        arg_max_null(name, (ts, event_id)) AS name,
        count(*)::INTEGER AS n,
        list_sort(list(own_ms)) AS sorted_ms,
        arg_max_null(own_ms, (ts, event_id)) AS last_ms,
        max(ts) AS last_at,
        min(ts) AS first_at,
        count(DISTINCT database)::INTEGER AS databases,
        bool_or(suspect) AS suspect
    FROM marked
    GROUP BY env, service, version, direction
)
SELECT env, service, version, direction, name, n, median_ms,
    analyze_quantile(sorted_ms, $p95::DOUBLE) AS p95_ms,
    analyze_quantile(list_sort(list_transform(sorted_ms, lambda x: abs(x - median_ms))), 0.5::DOUBLE) AS mad_ms,
    last_ms, last_at, first_at, databases, suspect
FROM (SELECT *, analyze_quantile(sorted_ms, 0.5::DOUBLE) AS median_ms FROM scopes);

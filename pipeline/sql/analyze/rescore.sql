-- One step of the exact scoring of analyze_apps (the suspect scopes): each application against the last
-- $window applications of its scope before it that are not outliers, with the outlier flags of the step
-- before. Repeated until no flag changes: then every baseline holds exactly the normal applications before
-- it, as a walk through the scope in time order would give (each step settles at least the first application
-- whose flag was still wrong, and everything before it stays settled).
-- Parameters: $window, $min_samples, $outlier_z, $outlier_ratio, $outlier_min_excess_ms, $sigma_per_half_iqr,
-- $mad_floor_ratio, $mad_floor_ms.
CREATE OR REPLACE TEMP TABLE analyze_step AS
WITH kept AS (
    -- normal applications before each one: its baseline is the normal ones numbered kept-$window .. kept-1
    SELECT *, coalesce(count(*) FILTER (WHERE NOT outlier) OVER (
                  PARTITION BY env, service, version, direction ORDER BY rn
                  ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS kept
    FROM analyze_apps
), prior AS (
    SELECT env, service, version, direction, rn, own_ms, outlier AS was,
        count(*) FILTER (WHERE NOT outlier) OVER w AS prior_n,
        list_sort(list(own_ms) FILTER (WHERE NOT outlier) OVER w) AS prior_ms
    FROM kept
    WINDOW w AS (PARTITION BY env, service, version, direction ORDER BY kept
                 RANGE BETWEEN $window PRECEDING AND 1 PRECEDING)
), quantiles AS (
    SELECT *, analyze_quantile(prior_ms, 0.5::DOUBLE) AS prior_median,
              analyze_quantile(prior_ms, 0.25::DOUBLE) AS prior_q25
    FROM prior
), scored AS (
    SELECT *,
        -- (median - q25) / 0.6745 as a product with its reciprocal, as the polars scoring of earlier
        -- versions computed it: scores stay the same to the last bit
        (own_ms - prior_median) / greatest((prior_median - prior_q25) * $sigma_per_half_iqr,
                                           prior_median * $mad_floor_ratio, $mad_floor_ms) AS z,
        own_ms / greatest(prior_median, 1e-3) AS ratio
    FROM quantiles
)
SELECT env, service, version, direction, rn, prior_n, prior_median, z, outlier, outlier <> was AS changed
FROM (SELECT *, coalesce(prior_n >= $min_samples AND z >= $outlier_z AND ratio >= $outlier_ratio
                         AND own_ms - prior_median >= $outlier_min_excess_ms, false) AS outlier
      FROM scored);

UPDATE analyze_apps a
SET outlier = s.outlier, prior_n = s.prior_n, prior_median = s.prior_median, z = s.z
FROM analyze_step s
WHERE a.env = s.env AND a.service = s.service AND a.version = s.version AND a.direction = s.direction
  AND a.rn = s.rn;

SELECT count(*) FILTER (WHERE changed) FROM analyze_step;

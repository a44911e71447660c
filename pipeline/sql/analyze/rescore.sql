-- One step of the exact scoring of analyze_apps (the candidate scopes): each application against the last
-- $window applications of its scope before it that are not outliers, with the outlier flags of the step
-- before. Repeated until no flag changes; then every baseline holds exactly the normal applications before
-- it, as a walk through the scope in time order would give.
--
-- Only the scopes in analyze_active are scored again, from their row `from_rn` on: the first row whose flag
-- changed in the step before. The rows before it are settled (their flags and those before them did not
-- change, so they never will), and each step settles at least one more row, so the steps end.
--
-- A full baseline ($window values) takes its quantiles from quantile_disc: $full_quantiles pick the two
-- values around the 25 % and 50 % positions, interpolated as polars does (lo + (hi - lo) * frac, the fracs
-- $q25_frac, $median_frac). A shorter one, at the start of a scope, sorts its few values (analyze_quantile).
-- Parameters: $window, $full_quantiles, $q25_frac, $median_frac, $min_samples, $outlier_z, $outlier_ratio,
-- $outlier_min_excess_ms, $sigma_per_half_iqr, $mad_floor_ratio, $mad_floor_ms.
CREATE OR REPLACE TEMP TABLE analyze_step AS
WITH kept AS (
    -- normal applications before each one: its baseline is the normal ones numbered kept-$window .. kept-1
    SELECT a.sid, a.rn, a.own_ms, a.outlier, f.from_rn,
        coalesce(count(*) FILTER (WHERE NOT a.outlier) OVER (
            PARTITION BY a.sid ORDER BY a.rn ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS kept
    FROM analyze_apps a JOIN analyze_active f USING (sid)
), reach AS (
    SELECT sid, min(kept) AS kept_from FROM kept WHERE rn >= from_rn GROUP BY sid
), needed AS (   -- the rows to score and the normal rows their baselines draw on
    SELECT k.* FROM kept k JOIN reach r USING (sid)
    WHERE k.rn >= k.from_rn OR (NOT k.outlier AND k.kept >= r.kept_from - $window)
), prior AS (
    SELECT sid, rn, own_ms, outlier AS was, rn >= from_rn AS scored,
        count(*) FILTER (WHERE NOT outlier) OVER w AS prior_n,
        quantile_disc(own_ms, $full_quantiles::DOUBLE[]) FILTER (WHERE NOT outlier) OVER w AS q
    FROM needed
    WINDOW w AS (PARTITION BY sid ORDER BY kept RANGE BETWEEN $window PRECEDING AND 1 PRECEDING)
), short AS (   -- baselines of fewer than $window values: all the normal rows before
    SELECT p.sid, p.rn, list_sort(list(b.own_ms)) AS prior_ms
    FROM prior p JOIN needed b ON b.sid = p.sid AND b.rn < p.rn AND NOT b.outlier
    WHERE p.scored AND p.prior_n BETWEEN 1 AND $window - 1
    GROUP BY p.sid, p.rn
), quantiles AS (
    SELECT p.sid, p.rn, p.own_ms, p.was, p.prior_n,
        CASE WHEN p.prior_n = $window THEN p.q[3] + (p.q[4] - p.q[3]) * $median_frac
             ELSE analyze_quantile(s.prior_ms, 0.5::DOUBLE) END AS prior_median,
        CASE WHEN p.prior_n = $window THEN p.q[1] + (p.q[2] - p.q[1]) * $q25_frac
             ELSE analyze_quantile(s.prior_ms, 0.25::DOUBLE) END AS prior_q25
    FROM prior p LEFT JOIN short s USING (sid, rn)
    WHERE p.scored
), scored AS (
    SELECT *,
        -- (median - q25) / 0.6745 as a product with its reciprocal, as the polars scoring of earlier
        -- versions computed it: scores stay the same to the last bit
        (own_ms - prior_median) / greatest((prior_median - prior_q25) * $sigma_per_half_iqr,
                                           prior_median * $mad_floor_ratio, $mad_floor_ms) AS z,
        own_ms / greatest(prior_median, 1e-3) AS ratio
    FROM quantiles
)
SELECT sid, rn, prior_n, prior_median, z, outlier, outlier <> was AS changed
FROM (SELECT *, coalesce(prior_n >= $min_samples AND z >= $outlier_z AND ratio >= $outlier_ratio
                         AND own_ms - prior_median >= $outlier_min_excess_ms, false) AS outlier
      FROM scored);

UPDATE analyze_apps a
SET outlier = s.outlier, prior_n = s.prior_n, prior_median = s.prior_median, z = s.z
FROM analyze_step s
WHERE a.sid = s.sid AND a.rn = s.rn;

CREATE OR REPLACE TEMP TABLE analyze_active AS
SELECT sid, min(rn) AS from_rn FROM analyze_step WHERE changed GROUP BY sid;

SELECT count(*) FROM analyze_active;

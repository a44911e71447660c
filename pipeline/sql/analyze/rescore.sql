-- One step of the exact scoring of analyze_apps (the candidate scopes): each application against the last
-- $window applications of its scope before it that are not outliers, with the outlier flags of the step
-- before. Repeated until no flag changes; then every baseline holds exactly the normal applications before
-- it, as a walk through the scope in time order would give.
--
-- Only the scopes in analyze_active are scored again, from their row `from_rn` on: the first row whose flag
-- changed in the step before. The rows before it are settled (their flags and those before them did not
-- change, so they never will), and each step settles at least one more row, so the steps end.
--
-- Quantiles as polars computes them: lo + (hi - lo) * frac around position (n - 1) * q of the n sorted
-- values. quantile_disc(q) is the value at index ceil(n * q) - 1, so over any n it gives the lower median
-- (q = 0.5), the upper one (q = 0.5 + 1 / (4 * $window)) and the lower quartile neighbour (q = 0.25); the
-- upper one needs q = (k + 0.5) / n, constant only for a full baseline (n = $window). $around holds those
-- four. The few applications slow enough to be judged on z with a shorter baseline sort it instead.
-- Parameters: $window, $around, $min_samples, $outlier_z, $outlier_ratio, $outlier_min_excess_ms,
-- $sigma_per_half_iqr, $mad_floor_ratio, $mad_floor_ms.
CREATE OR REPLACE TEMP TABLE analyze_step AS
WITH kept AS (
    -- normal applications before each one: its baseline is the normal ones numbered kept-$window .. kept-1,
    -- so every application with the same count of normal ones before it has the same baseline
    SELECT a.sid, a.rn, a.own_ms, a.outlier, f.from_rn,
        coalesce(count(*) FILTER (WHERE NOT a.outlier) OVER (
            PARTITION BY a.sid ORDER BY a.rn ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS kept
    FROM analyze_apps a JOIN analyze_active f USING (sid)
), reach AS (
    SELECT sid, min(kept) FILTER (WHERE rn >= from_rn) AS kept_from,
        max(kept + (NOT outlier)::INTEGER) AS kept_total
    FROM kept GROUP BY sid
), needed AS (   -- the rows to score and the normal rows their baselines draw on
    SELECT k.* FROM kept k JOIN reach r USING (sid)
    WHERE k.rn >= k.from_rn OR (NOT k.outlier AND k.kept >= r.kept_from - $window)
), baselines AS (
    -- the baseline of each count: over the normal rows alone, the $window before the one with that count
    -- (and after the last one, for the outliers at the end); a plain ROWS frame, which DuckDB computes
    -- far faster than a filtered RANGE frame
    SELECT sid, kept, count(own_ms) OVER w AS prior_n, quantile_disc(own_ms, $around::DOUBLE[]) OVER w AS q
    FROM (SELECT sid, kept, own_ms FROM needed WHERE NOT outlier
          UNION ALL SELECT sid, kept_total, NULL FROM reach)
    WINDOW w AS (PARTITION BY sid ORDER BY kept ROWS BETWEEN $window PRECEDING AND 1 PRECEDING)
), prior AS (
    SELECT n.sid, n.rn, n.own_ms, n.outlier AS was, b.prior_n, b.q
    FROM needed n JOIN baselines b USING (sid, kept)
    WHERE n.rn >= n.from_rn
), medians AS (
    SELECT sid, rn, own_ms, was, prior_n, q,
        q[2] + (q[3] - q[2]) * ((prior_n - 1)::DOUBLE * 0.5 - floor((prior_n - 1)::DOUBLE * 0.5)) AS prior_median,
        (prior_n - 1)::DOUBLE * 0.25 - floor((prior_n - 1)::DOUBLE * 0.25) AS q25_frac
    FROM prior
), judged AS (   -- `slow`: an outlier but for z, which needs the lower quartile too
    SELECT *, coalesce(prior_n >= $min_samples AND own_ms / greatest(prior_median, 1e-3) >= $outlier_ratio
                       AND own_ms - prior_median >= $outlier_min_excess_ms, false) AS slow
    FROM medians
), short AS (   -- the sorted baseline of slow applications with fewer than $window before them
    SELECT j.sid, j.rn, list_sort(list(b.own_ms)) AS prior_ms
    FROM judged j JOIN needed b ON b.sid = j.sid AND b.rn < j.rn AND NOT b.outlier
    WHERE j.slow AND j.prior_n < $window AND j.q25_frac <> 0
    GROUP BY j.sid, j.rn
), quartiles AS (
    SELECT j.*,
        CASE WHEN j.q25_frac = 0 THEN j.q[1]
             WHEN j.prior_n = $window THEN j.q[1] + (j.q[4] - j.q[1]) * j.q25_frac
             ELSE analyze_quantile(s.prior_ms, 0.25::DOUBLE) END AS prior_q25
    FROM judged j LEFT JOIN short s USING (sid, rn)
), scored AS (
    SELECT *,
        -- (median - q25) / 0.6745 as a product with its reciprocal, as the polars scoring of earlier
        -- versions computed it: scores stay the same to the last bit
        CASE WHEN slow THEN (own_ms - prior_median) / greatest((prior_median - prior_q25) * $sigma_per_half_iqr,
                                                               prior_median * $mad_floor_ratio, $mad_floor_ms)
        END AS z
    FROM quartiles
)
SELECT sid, rn, prior_n, prior_median, z, outlier, outlier <> was AS changed
FROM (SELECT *, coalesce(slow AND z >= $outlier_z, false) AS outlier FROM scored);

UPDATE analyze_apps a
SET outlier = s.outlier, prior_n = s.prior_n, prior_median = s.prior_median, z = s.z
FROM analyze_step s
WHERE a.sid = s.sid AND a.rn = s.rn;

CREATE OR REPLACE TEMP TABLE analyze_active AS
SELECT sid, min(rn) AS from_rn FROM analyze_step WHERE changed GROUP BY sid;

SELECT count(*) FROM analyze_active;

-- The outlier streaks of analyze_apps once scored: consecutive outliers of one scope are one streak, with what
-- a duration_outlier finding reports, and when a later application was back under $outlier_ratio x the
-- baseline the streak broke from (NULL: not yet). Parameters: $outlier_ratio.
WITH starts AS (
    SELECT *, outlier AND NOT coalesce(lag(outlier) OVER (PARTITION BY env, service, version, direction ORDER BY rn),
                                       false) AS starts
    FROM analyze_apps
), numbered AS (
    SELECT *, sum(starts::INTEGER) OVER (PARTITION BY env, service, version, direction ORDER BY rn
                                         ROWS UNBOUNDED PRECEDING) AS streak
    FROM starts
), streaks AS (
    SELECT env, service, version, direction, streak,
        count(*) AS count,
        min(ts) AS first_ts,
        max(ts) AS last_ts,
        analyze_quantile(list_sort(list(own_ms)), 0.5::DOUBLE) AS observed,
        arg_min_null(prior_median, rn) AS expected,
        analyze_quantile(list_sort(list(z)), 0.5::DOUBLE) AS score,
        count(DISTINCT database) AS databases,
        arg_max_null(name, rn) AS name,
        arg_min_null(run_id, rn) AS run_id,
        arg_min_null(database, rn) AS database,
        list_sort(list(DISTINCT source_env)) AS source_envs
    FROM numbered
    WHERE outlier
    GROUP BY env, service, version, direction, streak
), recovered AS (
    SELECT s.env, s.service, s.version, s.direction, s.streak, min(a.ts) AS recovered_at
    FROM streaks s JOIN analyze_apps a
      ON a.env = s.env AND a.service = s.service AND a.version = s.version AND a.direction = s.direction
     AND a.ts > s.last_ts AND a.own_ms < $outlier_ratio * s.expected
    GROUP BY ALL
)
SELECT s.*, r.recovered_at
FROM streaks s LEFT JOIN recovered r USING (env, service, version, direction, streak)
ORDER BY env, service, version, direction, streak;

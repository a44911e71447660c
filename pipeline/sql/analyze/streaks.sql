-- The outlier streaks of analyze_apps once scored: consecutive outliers of one scope are one streak, with what
-- a duration_outlier finding reports, and when a later application was back under $outlier_ratio x the
-- baseline the streak broke from (NULL: not yet). Parameters: $outlier_ratio.
WITH starts AS (
    SELECT *, outlier AND NOT coalesce(lag(outlier) OVER (PARTITION BY sid ORDER BY rn),
                                       false) AS starts
    FROM analyze_apps
), numbered AS (
    SELECT *, sum(starts::INTEGER) OVER (PARTITION BY sid ORDER BY rn
                                         ROWS UNBOUNDED PRECEDING) AS streak
    FROM starts
), streaks AS (
    SELECT sid, any_value(env) AS env, any_value(service) AS service, any_value(version) AS version,
        any_value(direction) AS direction, streak,
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
    GROUP BY sid, streak
), recovered AS (
    SELECT s.sid, s.streak, min(a.ts) AS recovered_at
    FROM streaks s JOIN analyze_apps a
      ON a.sid = s.sid AND a.ts > s.last_ts AND a.own_ms < $outlier_ratio * s.expected
    GROUP BY ALL
)
SELECT s.* EXCLUDE (sid), r.recovered_at
FROM streaks s LEFT JOIN recovered r USING (sid, streak)
ORDER BY env, service, version, direction, streak;

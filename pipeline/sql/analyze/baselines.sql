-- script_baselines from analyze_scopes (analyze/scopes.sql): one row per scope, learning below $min_samples.
-- Parameters: $as_of, $min_samples.
INSERT INTO script_baselines BY NAME
SELECT env, service, version, direction, name, n, median_ms, p95_ms, mad_ms, last_ms, last_at, first_at, databases,
    CASE WHEN n < $min_samples THEN 'learning' ELSE 'ready' END AS state, $as_of::TIMESTAMP AS as_of
FROM analyze_scopes
ORDER BY env, service, version, direction;

-- Versions applied in prod (analyze_readiness) whose down failed its latest `verify --store` test at or before
-- $as_of: rolling them back as written would fail or leave the schema or data changed. `detail` is the first
-- line of the first failed check's detail; `env` the first prod env the version reached.
SELECT r.service, r.version, r.name, r.down_tested_at, r.down_test_failed_checks,
       list_filter(r.envs_applied, lambda e: list_contains($prod_envs, e))[1] AS env,
       (SELECT split_part(v.detail, chr(10), 1) FROM verify_results v
        WHERE v.service = r.service AND v.version = r.version AND v.status = 'fail' AND v.verified_at <= $as_of
          AND list_contains($down_test_checks, v."check")
        ORDER BY list_position($down_test_checks, v."check") LIMIT 1) AS detail
FROM analyze_readiness r
WHERE r.in_prod AND r.down_test = 'failed'
ORDER BY r.service, r.version

-- Headline figures of one week [$start, $end): runs, outcomes, p95 own duration, locks, prod rollbacks.
SELECT
    count(*) AS runs,
    count(*) FILTER (WHERE is_clean_outcome(outcome)) AS succeeded,
    count(*) FILTER (WHERE is_failure(outcome)) AS failures,
    count(*) FILTER (WHERE outcome = 'locked') AS lock_timeouts,
    (SELECT quantile_cont(own_ms, 0.95) FROM migrate_events
     WHERE kind = 'applied' AND ts >= $start AND ts < $end) AS p95_own_ms,
    (SELECT count(DISTINCT run_id) FROM migrate_events
     WHERE kind = 'applied' AND direction = 'down' AND ts >= $start AND ts < $end
       AND list_contains($prod_envs, env)) AS prod_rollbacks
FROM runs
WHERE started_at >= $start AND started_at < $end

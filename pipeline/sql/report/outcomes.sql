-- Runs by env, service and outcome in one week [$start, $end).
SELECT env, service, outcome, count(*) AS runs
FROM runs WHERE started_at >= $start AND started_at < $end
GROUP BY ALL ORDER BY env, service, outcome

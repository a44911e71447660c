-- Runs and failures per (env, service) in the recent window ($start, $as_of] and the trailing one
-- ($trail, $start], for failure_spike.
SELECT env, service,
    count(*) FILTER (WHERE is_failure(outcome) AND started_at > $start) AS f_recent,
    count(*) FILTER (WHERE started_at > $start) AS n_recent,
    count(*) FILTER (WHERE is_failure(outcome) AND started_at <= $start) AS f_trail,
    count(*) FILTER (WHERE started_at <= $start) AS n_trail,
    min(started_at) FILTER (WHERE is_failure(outcome) AND started_at > $start) AS first_failure
FROM runs
WHERE started_at > $trail AND started_at <= $as_of
GROUP BY env, service;

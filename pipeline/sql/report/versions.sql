-- The version each database was last seen at, as of $as_of, and whether it is dirty now.
SELECT env, service, database,
       arg_max(to_version, started_at) FILTER (WHERE to_version IS NOT NULL) AS version,
       max(started_at) AS last_run_at
FROM runs WHERE started_at <= $as_of AND database <> 'unknown'
GROUP BY ALL ORDER BY service, env, database

-- When each version was first applied up in each env of the promotion order ($env_order), up to $as_of, with
-- the name, database and run of the first such event as stored (the order events were loaded in).
SELECT env, service, version, min(ts) AS first_at, arg_min_null(name, rowid) AS name,
       arg_min_null(database, rowid) AS database, arg_min_null(run_id, rowid) AS run_id
FROM migrate_events
WHERE ts <= $as_of AND kind = 'applied' AND direction = 'up' AND list_contains($env_order, env)
GROUP BY env, service, version;

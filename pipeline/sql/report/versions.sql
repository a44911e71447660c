-- The version each database is at, as of $as_of (the `database_versions` rule: also after a `down`).
SELECT env, service, database, version, known_at
FROM database_versions(CAST($as_of AS TIMESTAMP)) WHERE database <> 'unknown'
ORDER BY service, env, database

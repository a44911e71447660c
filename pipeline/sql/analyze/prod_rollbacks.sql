-- Runs that applied down steps in a production env ($prod_envs) up to $as_of: the versions stepped down
-- (highest first), when, and how many of them were applied up again on that database since (with the last
-- time one was).
WITH downs AS (
    SELECT run_id, env, service, database, list(version ORDER BY version DESC) AS versions, min(ts) AS ts
    FROM migrate_events
    WHERE ts <= $as_of AND kind = 'applied' AND direction = 'down' AND list_contains($prod_envs, env)
    GROUP BY run_id, env, service, database
)
SELECT d.run_id, d.env, d.service, d.database, any_value(d.versions) AS versions, d.ts,
       count(DISTINCT u.version) AS reapplied, max(u.ts) AS reapplied_at
FROM downs d LEFT JOIN migrate_events u
  ON u.env = d.env AND u.service = d.service AND u.database = d.database AND u.ts > d.ts AND u.ts <= $as_of
 AND u.kind = 'applied' AND u.direction = 'up' AND list_contains(d.versions, u.version)
GROUP BY d.run_id, d.env, d.service, d.database, d.ts;

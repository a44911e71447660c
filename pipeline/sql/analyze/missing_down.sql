-- Versions whose down step printed `<empty>` (no .down.sql) up to $as_of, where first seen (the first such
-- event as stored), and whether the version is in prod (from analyze_readiness).
WITH empties AS (
    SELECT service, version, min(ts) AS ts, arg_min_null(env, rowid) AS env,
           arg_min_null(database, rowid) AS database, arg_min_null(run_id, rowid) AS run_id
    FROM migrate_events
    WHERE ts <= $as_of AND direction = 'down' AND name = '<empty>'
    GROUP BY service, version
)
SELECT e.*, r.in_prod, r.name
FROM empties e LEFT JOIN analyze_readiness r USING (service, version);

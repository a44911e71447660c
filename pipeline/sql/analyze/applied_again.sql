-- Versions applied up on a database right after an earlier up of the same version (no down in between: only a
-- force allows it), per (env, service, version), up to $as_of, outside the pooled ephemeral envs (analyze_pool):
-- their databases are created afresh and apply every script again.
WITH applied AS NOT MATERIALIZED (
    SELECT rowid AS ord, env, service, database, version, direction, ts, seq, name,
        hash(env, service, database, version) AS pair
    FROM migrate_events
    WHERE ts <= $as_of AND kind = 'applied' AND env NOT IN (SELECT env FROM analyze_pool)
), repeated AS (
    -- most (database, version) pairs were applied up once: only the others need ordering. Grouped by a hash
    -- of the pair, which keeps the table small; a collision only adds a pair to look at, never hides one.
    SELECT pair FROM applied WHERE direction = 'up' GROUP BY pair HAVING count(*) > 1
), steps AS (
    SELECT a.*, lag(a.direction) OVER (PARTITION BY a.env, a.service, a.database, a.version
                                       ORDER BY a.ts, a.seq, a.ord) AS prev_direction
    FROM applied a SEMI JOIN repeated r ON a.pair = r.pair
)
SELECT env, service, version, count(*) AS times, count(DISTINCT database) AS databases, min(ts) AS ts,
       arg_min_null(name, (database, ts, seq, ord)) AS name
FROM steps
WHERE direction = 'up' AND prev_direction = 'up'
GROUP BY env, service, version
ORDER BY env, service, version;

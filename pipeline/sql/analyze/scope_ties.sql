-- The last application of the scopes whose latest ts is shared (analyze_scopes.tied): the one with the
-- greatest (ts, event_id), as the order of applications in a scope is (ts, event_id). Parameters: $as_of.
UPDATE analyze_scopes s
SET name = t.name, last_ms = t.last_ms
FROM (
    SELECT coalesce(p.pool, e.env) AS env, e.service, e.version, e.direction,
        arg_max_null(e.name, (e.ts, e.event_id)) AS name, arg_max_null(e.own_ms, (e.ts, e.event_id)) AS last_ms
    FROM migrate_events e LEFT JOIN analyze_pool p ON p.env = e.env
    SEMI JOIN (SELECT env, service, version, direction FROM analyze_scopes WHERE tied) t
      ON t.env = coalesce(p.pool, e.env) AND t.service = e.service AND t.version = e.version
     AND t.direction = e.direction
    WHERE e.kind = 'applied' AND e.own_ms IS NOT NULL AND e.ts <= $as_of
    GROUP BY ALL
) t
WHERE s.env = t.env AND s.service = t.service AND s.version = t.version AND s.direction = t.direction;

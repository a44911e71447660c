-- analyze_apps: the timed applications of the candidate scopes (see analyze/scopes.sql), numbered in time order
-- within their scope (`sid`, `rn`), with room for their exact score; analyze/rescore.sql fills it in, starting
-- with every candidate scope from its first application (analyze_active). Parameters: $as_of.
CREATE OR REPLACE TEMP TABLE analyze_apps AS
WITH candidates AS (
    SELECT row_number() OVER (ORDER BY env, service, version, direction) AS sid, env, service, version, direction
    FROM analyze_scopes WHERE candidate
), apps AS (
    SELECT coalesce(p.pool, e.env) AS env, e.service, e.version, e.direction, e.name, e.database, e.own_ms,
           e.ts, e.event_id, e.run_id, e.env AS source_env
    FROM migrate_events e LEFT JOIN analyze_pool p ON p.env = e.env
    WHERE e.kind = 'applied' AND e.own_ms IS NOT NULL AND e.ts <= $as_of
)
SELECT s.sid, a.env, a.service, a.version, a.direction, a.name, a.database, a.own_ms, a.ts, a.run_id, a.source_env,
    row_number() OVER (PARTITION BY s.sid ORDER BY a.ts, a.event_id) AS rn,
    false AS outlier, NULL::BIGINT AS prior_n, NULL::DOUBLE AS prior_median, NULL::DOUBLE AS z
FROM apps a JOIN candidates s
  ON a.env = s.env AND a.service = s.service AND a.version = s.version AND a.direction = s.direction;

CREATE OR REPLACE TEMP TABLE analyze_active AS
SELECT DISTINCT sid, 1::BIGINT AS from_rn FROM analyze_apps;

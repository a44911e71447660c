-- name: current_versions
-- answers: The current migration version of every database at the clock, whether it is dirty, how it is known, and databases behind the rest of their env.
-- param: env = *               (environment glob)
-- param: service = *           (service glob)
-- param: as_of = 2026-11-16    (the clock, UTC; ISO date or timestamp)
--
-- The version comes from the last run that showed it: the version an `up` ended at or `version` printed
-- (`version_seen`), the dirty version, or after a down the version below the last one stepped down
-- (migrate prints no version after `down`; `runs.to_version` is NULL there and `from_version` of later
-- no-change runs carries the pre-down version forward, so neither is used). NULL after a down means no
-- version is applied (or the one below is not in the logs). `dirty` follows the `dirty_now` rule.
WITH clock AS (
    SELECT CAST($as_of AS TIMESTAMP) AS as_of
),
r AS (
    SELECT runs.*,
           left_dirty OR outcome = 'dirty' OR dirty_version IS NOT NULL AS evidence
    FROM runs, clock
    WHERE started_at <= clock.as_of AND env GLOB $env AND service GLOB $service
),
known AS (   -- every version a service is known to have, in any env (not `missing_file`'s asked-for one)
    SELECT DISTINCT e.service, e.version
    FROM migrate_events e, clock
    WHERE e.kind IN ('applied', 'version', 'dirty') AND e.version IS NOT NULL AND e.ts <= clock.as_of
),
last_step AS (   -- the last script step of each run
    SELECT e.run_id, arg_max(e.direction, e.seq) AS direction, arg_max(e.version, e.seq) AS version
    FROM migrate_events e, clock
    WHERE e.kind = 'applied' AND e.ts <= clock.as_of
    GROUP BY e.run_id
),
shown AS (   -- runs that show the version
    SELECT r.env, r.service, r.database, r.run_id, r.started_at,
           CASE WHEN s.direction = 'down'
                    THEN (SELECT max(k.version) FROM known k WHERE k.service = r.service AND k.version < s.version)
                ELSE coalesce(r.dirty_version, r.version_seen) END AS version,
           CASE WHEN s.direction = 'down' THEN 'below the last down step (' || s.version || ')'
                WHEN r.dirty_version IS NOT NULL THEN 'dirty version'
                WHEN r.command = 'version' THEN 'printed by migrate version'
                ELSE 'last step applied' END AS known_from
    FROM r LEFT JOIN last_step s USING (run_id)
    WHERE s.direction = 'down' OR r.dirty_version IS NOT NULL OR r.version_seen IS NOT NULL
    QUALIFY row_number() OVER (PARTITION BY r.env, r.service, r.database ORDER BY r.started_at DESC, r.run_id DESC) = 1
),
state AS (   -- the last run that tells dirty or clean
    SELECT env, service, database, evidence AS dirty
    FROM r
    WHERE evidence OR outcome IN ('success', 'no_change')
    QUALIFY row_number() OVER (PARTITION BY env, service, database ORDER BY started_at DESC, run_id DESC) = 1
),
latest AS (
    SELECT env, service, database, count(*) AS runs,
           max(started_at) AS last_run_at, arg_max(outcome, started_at) AS last_outcome
    FROM r
    GROUP BY env, service, database
)
SELECT l.env, l.service, l.database,
       v.version,
       coalesce(st.dirty, false) AS dirty,
       v.known_from,
       v.started_at AS known_at,
       max(v.version) OVER (PARTITION BY l.env, l.service) AS newest_in_env,
       v.version < max(v.version) OVER (PARTITION BY l.env, l.service) AS behind_in_env,
       l.last_run_at, l.last_outcome, l.runs
FROM latest l
LEFT JOIN shown v USING (env, service, database)
LEFT JOIN state st USING (env, service, database)
ORDER BY l.service, l.env, l.database

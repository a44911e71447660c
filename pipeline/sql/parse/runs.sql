-- Rebuild runs for the streams in `touched_streams` from migrate_events and, for the migrate-lens/v1
-- format, the wrapper's run_start / run_end records. Then re-chain from/to versions per database, from the
-- first run that changed on: the rest of the warehouse's history is read only where a run needs it (the last
-- version a database showed before the change, the versions its service is known to have).

-- Where the touched streams' runs were: the chains of those databases change from there on.
CREATE OR REPLACE TEMP TABLE touched_runs AS
SELECT env, service, database, CASE WHEN database = 'unknown' THEN stream_key ELSE database END AS scope,
       {'at': started_at, 'id': run_id} AS pos
FROM runs WHERE stream_key IN (SELECT stream_key FROM touched_streams);

DELETE FROM runs WHERE stream_key IN (SELECT stream_key FROM touched_streams);

INSERT INTO runs BY NAME
WITH ev AS (   -- $lo, $hi: the time range of the touched streams' lines and events
    SELECT * FROM migrate_events
    WHERE (ts BETWEEN $lo AND $hi OR ts IS NULL) AND stream_key IN (SELECT stream_key FROM touched_streams)
), agg AS (
    SELECT run_id, stream_key,
        min(ts) AS first_ts, max(ts) AS last_ts,
        coalesce(arg_min(env, seq) FILTER (WHERE env <> 'unknown'), arg_min(env, seq)) AS env,
        coalesce(arg_min(service, seq) FILTER (WHERE service <> 'unknown'), arg_min(service, seq)) AS service,
        coalesce(arg_min(database, seq) FILTER (WHERE database <> 'unknown'), arg_min(database, seq)) AS database,
        count(*) FILTER (WHERE kind = 'applied') AS applied,
        bool_or(kind = 'migration_failed') AS has_failed,
        bool_or(kind = 'dirty') AS has_dirty,
        bool_or(kind = 'lock_timeout') AS has_lock,
        bool_or(kind IN ('missing_file', 'connection_failed', 'prompt_refused', 'limit_short', 'error')) AS has_error,
        bool_or(kind = 'usage') AS has_usage,
        bool_or(kind = 'no_change') AS has_no_change,
        bool_or(kind = 'stopping') AS has_stopping,
        bool_or(kind IN ('buffering', 'executing', 'applied')) AS started_work,
        bool_or(kind IN ('finished_total', 'closing')) AS has_terminal,
        bool_or(verbose_mode) AS verbose_mode,
        arg_min(error_class, seq) FILTER (WHERE error_text IS NOT NULL) AS error_class,
        arg_min(error_text, seq) FILTER (WHERE error_text IS NOT NULL) AS error_text,
        max(seq) FILTER (WHERE kind = 'executing') AS last_exec_seq,
        arg_max(version, seq) FILTER (WHERE kind = 'executing') AS last_exec_v,
        max(seq) FILTER (WHERE kind = 'applied') AS last_applied_seq,
        arg_max(version, seq) FILTER (WHERE kind = 'applied') AS last_applied_v,
        arg_min(version, seq) FILTER (WHERE kind = 'applied') AS first_applied_v,
        arg_max(direction, seq) FILTER (WHERE kind IN ('applied', 'buffering', 'executing')) AS last_dir,
        arg_max(version, seq) FILTER (WHERE kind = 'version') AS printed_v,
        bool_or(kind = 'version' AND name = '(dirty)') AS printed_dirty,
        arg_max(version, seq) FILTER (WHERE kind = 'dirty') AS dirty_v,
        arg_max(version, seq) FILTER (WHERE kind = 'migration_failed') AS failed_v,
        CASE
            WHEN bool_or(kind = 'version') THEN 'version'
            WHEN bool_or(kind = 'created') THEN 'create'
            WHEN bool_or(kind IN ('prompt', 'prompt_refused') AND error_text ILIKE '%drop%' OR name ILIKE '%drop%') THEN 'drop'
            WHEN bool_or(kind IN ('prompt', 'prompt_refused')) THEN 'down'
            WHEN bool_or(direction = 'down') THEN 'down'
            WHEN bool_or(direction = 'up') THEN 'up'
            WHEN bool_or(kind = 'cli_version') THEN '-version'
        END AS inferred_command,
        count(*) AS events
    FROM ev GROUP BY run_id, stream_key
), markers AS (
    SELECT stream_key, substr(stream_key, 5) AS run_id,
        min(ts) FILTER (WHERE record = 'run_start') AS start_ts,
        max(ts) FILTER (WHERE record = 'run_end') AS end_ts,
        arg_min(attrs, ts) FILTER (WHERE record = 'run_start') AS start_attrs,
        arg_max(attrs, ts) FILTER (WHERE record = 'run_end') AS end_attrs,
        arg_min(env, ts) AS env, arg_min(service, ts) AS service, arg_min(database, ts) AS database
    FROM log_lines
    WHERE record IN ('run_start', 'run_end') AND (ts BETWEEN $lo AND $hi OR ts IS NULL)
      AND stream_key IN (SELECT stream_key FROM touched_streams)
    GROUP BY stream_key
), joined AS (
    SELECT
        coalesce(a.run_id, m.run_id) AS run_id,
        coalesce(a.stream_key, m.stream_key) AS stream_key,
        coalesce(nullif(a.env, 'unknown'), m.env, a.env, 'unknown') AS env,
        coalesce(nullif(a.service, 'unknown'), m.service, a.service, 'unknown') AS service,
        coalesce(nullif(a.database, 'unknown'), m.database, a.database, 'unknown') AS database,
        least(a.first_ts, m.start_ts) AS started_at,
        greatest(a.last_ts, m.end_ts) AS ended_at,
        m.stream_key IS NOT NULL AS wrapped,
        m.end_ts IS NOT NULL AS wrapper_saw_end,
        json_extract_string(m.start_attrs, '$.command') AS recorded_command,
        try_cast(json_extract_string(m.end_attrs, '$.exit_code') AS INTEGER) AS exit_code,
        json_extract_string(m.end_attrs, '$.signal') AS signal,
        coalesce(a.applied, 0) AS applied,
        coalesce(a.has_failed, false) AS has_failed, coalesce(a.has_dirty, false) AS has_dirty,
        coalesce(a.has_lock, false) AS has_lock, coalesce(a.has_error, false) AS has_error,
        coalesce(a.has_usage, false) AS has_usage, coalesce(a.has_no_change, false) AS has_no_change,
        coalesce(a.has_stopping, false) AS has_stopping, coalesce(a.started_work, false) AS started_work,
        coalesce(a.has_terminal, false) AS has_terminal, coalesce(a.verbose_mode, false) AS verbose_mode,
        a.error_class, a.error_text, a.last_exec_seq, a.last_exec_v, a.last_applied_seq, a.last_applied_v,
        a.first_applied_v, a.last_dir, a.printed_v, coalesce(a.printed_dirty, false) AS printed_dirty,
        a.dirty_v, a.failed_v, a.inferred_command, coalesce(a.events, 0) AS events
    FROM agg a FULL OUTER JOIN markers m ON a.stream_key = m.stream_key AND a.run_id = m.run_id
), judged AS (
    SELECT *,
        CASE
            WHEN has_failed THEN 'failed'
            WHEN has_dirty THEN 'dirty'
            WHEN has_lock THEN 'locked'
            WHEN has_error THEN 'error'
            WHEN has_usage AND coalesce(exit_code, 2) <> 0 THEN 'error'
            WHEN exit_code IS NOT NULL AND exit_code <> 0 THEN
                CASE WHEN exit_code < 0 OR exit_code IN (130, 137, 143) OR signal IS NOT NULL THEN 'interrupted'
                     ELSE 'error' END
            WHEN has_stopping THEN 'interrupted'
            WHEN exit_code = 0 THEN CASE WHEN applied = 0 AND has_no_change THEN 'no_change' ELSE 'success' END
            WHEN wrapped AND NOT wrapper_saw_end THEN 'interrupted'
            WHEN has_no_change AND applied = 0 THEN 'no_change'
            -- Without -verbose a finished `up` and one killed after its last line print the same; with it,
            -- a run that started work and never printed `Finished after` was killed.
            WHEN started_work AND verbose_mode AND NOT has_terminal THEN 'interrupted'
            WHEN last_exec_seq > coalesce(last_applied_seq, -1) THEN 'interrupted'
            ELSE 'success'
        END AS outcome
    FROM joined
), seen AS (
    -- What shows the version the run ended at, first match wins. A failure that does not name its version
    -- (default mode) shows none. After a down migrate prints nothing: the version is the one below the last
    -- step, as the logs know the service's versions by the end of the run (none: no version left).
    SELECT *,
        CASE
            WHEN printed_v IS NOT NULL THEN 'printed'
            WHEN dirty_v IS NOT NULL THEN 'dirty'
            WHEN has_failed THEN CASE WHEN coalesce(failed_v, last_exec_v) IS NOT NULL THEN 'failed' END
            WHEN outcome = 'interrupted' AND last_exec_seq > coalesce(last_applied_seq, -1) THEN 'killed'
            WHEN applied > 0 AND last_dir = 'up' THEN 'up'
            WHEN applied > 0 AND last_dir = 'down' THEN 'down'
            WHEN error_class = 'no_migration' THEN 'nil'   -- `version` on a database with no version
        END AS shown_by
    FROM judged
), known AS (   -- the versions the services of the downs are known to have, each with when it first was
    SELECT service, CASE WHEN service = 'unknown' THEN stream_key END AS stream_key, version, min(ts) AS first_ts
    FROM migrate_events
    WHERE kind IN ('applied', 'version', 'dirty') AND version >= 0
      AND service IN (SELECT service FROM seen WHERE shown_by = 'down')
    GROUP BY ALL
), reached AS (   -- after a down: the highest version known below its last step
    SELECT d.run_id, max(k.version) AS version
    FROM seen d
    JOIN known k
      ON k.service = d.service AND k.version <= d.last_applied_v - 1 AND k.first_ts <= d.ended_at
         -- an unknown service mixes unrelated services' versions: only the run's own stream counts
         AND (d.service <> 'unknown' OR k.stream_key = d.stream_key)
    WHERE d.shown_by = 'down'
    GROUP BY d.run_id
)
SELECT
    run_id, stream_key, env, service, database, started_at, ended_at,
    coalesce(recorded_command, inferred_command) AS command,
    recorded_command IS NOT NULL AS command_known,
    applied,
    NULL::BIGINT AS from_version,
    NULL::BIGINT AS to_version,
    outcome,
    CASE WHEN outcome = 'interrupted' AND error_class IS NULL THEN 'interrupted' ELSE error_class END AS error_class,
    error_text,
    exit_code,
    has_failed OR coalesce(outcome = 'interrupted' AND last_exec_seq > coalesce(last_applied_seq, -1), false) AS left_dirty,
    coalesce(dirty_v, CASE WHEN printed_dirty THEN printed_v END, failed_v,
             CASE WHEN outcome = 'interrupted' AND last_exec_seq > coalesce(last_applied_seq, -1) THEN last_exec_v END,
             CASE WHEN has_failed THEN last_exec_v END) AS dirty_version,
    verbose_mode,
    events,
    CASE shown_by
        WHEN 'printed' THEN printed_v
        WHEN 'dirty' THEN dirty_v
        WHEN 'failed' THEN coalesce(failed_v, last_exec_v)
        WHEN 'killed' THEN last_exec_v
        WHEN 'up' THEN last_applied_v
        WHEN 'down' THEN reached.version
    END AS version_seen,
    shown_by IS NOT NULL AS version_shown,
    NULL::BIGINT AS next_dirty_version,
    NULL::TIMESTAMP AS next_dirty_at
FROM seen LEFT JOIN reached USING (run_id);

-- ...where they are now, and the failures whose version is still unknown in those services: the changed
-- evidence may name it now.
INSERT INTO touched_runs
SELECT env, service, database, CASE WHEN database = 'unknown' THEN stream_key ELSE database END,
       {'at': started_at, 'id': run_id}
FROM runs WHERE stream_key IN (SELECT stream_key FROM touched_streams);

INSERT INTO touched_runs
SELECT env, service, database, CASE WHEN database = 'unknown' THEN stream_key ELSE database END,
       {'at': started_at, 'id': run_id}
FROM runs
WHERE outcome = 'failed' AND dirty_version IS NULL AND service IN (SELECT service FROM touched_runs)
  AND stream_key NOT IN (SELECT stream_key FROM touched_streams);

-- Per database (`scope`; an unknown database is its stream), the first run that changed, and what the runs
-- before it hand on: the last version shown, and the dirty version the logs show for the run just before.
CREATE OR REPLACE TEMP TABLE rechain AS
WITH first_changed AS (
    SELECT env, service, scope, min(pos) AS since FROM touched_runs GROUP BY env, service, scope
)
SELECT f.env, f.service, f.scope, f.since,
    -- in a struct, so that a shown "no version" (NULL) is not skipped like a run that shows nothing
    arg_max({'v': r.version_seen}, {'at': r.started_at, 'id': r.run_id}) FILTER (WHERE r.version_shown) AS shown,
    arg_max({'d': CASE WHEN r.version_shown THEN r.dirty_version END}, {'at': r.started_at, 'id': r.run_id}) AS prev
FROM first_changed f
LEFT JOIN runs r
  ON r.env = f.env AND r.service = f.service
 AND CASE WHEN r.database = 'unknown' THEN r.stream_key ELSE r.database END = f.scope
 AND {'at': r.started_at, 'id': r.run_id} < f.since
GROUP BY f.env, f.service, f.scope, f.since;

-- The runs to re-chain: every run of those databases from the first change on.
CREATE OR REPLACE TEMP TABLE chained AS
SELECT r.run_id, r.env, r.service, c.scope, r.database, r.started_at, r.outcome, r.applied, r.version_seen,
       r.version_shown, r.dirty_version, r.error_class, c.shown, c.prev
FROM runs r JOIN rechain c
  ON r.env = c.env AND r.service = c.service
 AND CASE WHEN r.database = 'unknown' THEN r.stream_key ELSE r.database END = c.scope
 AND {'at': r.started_at, 'id': r.run_id} >= c.since;

-- The version a run started from is where the last run before it on the same database that showed a version
-- left it (NULL when that is no version, e.g. after `down -all`). A run that changed nothing (no change,
-- refused, failed to connect) ends where it started; one that applied or failed without saying where it
-- ended is left unknown rather than guessed (a failure's version guessed below stays).
UPDATE runs SET from_version = c.from_v,
    to_version = CASE
        WHEN c.version_shown THEN c.version_seen
        WHEN c.outcome IN ('no_change', 'error', 'locked', 'dirty') OR (c.outcome = 'success' AND c.applied = 0)
            THEN c.from_v
        WHEN c.outcome = 'failed' THEN c.dirty_version END
FROM (
    SELECT run_id, version_seen, version_shown, outcome, applied, dirty_version,
        coalesce(last_value(CASE WHEN version_shown THEN {'v': version_seen} END IGNORE NULLS) OVER (
            PARTITION BY env, service, scope ORDER BY started_at, run_id
            ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
        ), shown).v AS from_v
    FROM chained
) c
WHERE runs.run_id = c.run_id;

-- Without -verbose a failed migration does not name its version. A re-run that fails on objects that
-- already exist (or are already gone) right after the database was dirty at V is V again, re-run after a
-- `force V-1`; otherwise it is the first version this service was known to have, before this run, after the
-- one the database was at. Only earlier evidence is used, so an analysis at an earlier clock is reproducible.
CREATE OR REPLACE TEMP TABLE guessed AS
WITH p AS (
    SELECT c.run_id, c.env, c.service, c.database, c.started_at, c.error_class, r.from_version, c.outcome,
        c.dirty_version,
        -- what the logs say the run before was dirty at (a version guessed for it is no evidence)
        coalesce(lag({'d': CASE WHEN c.version_shown THEN c.dirty_version END}) OVER (
            PARTITION BY c.env, c.service, c.scope ORDER BY c.started_at, c.run_id), c.prev).d AS prev_dirty
    FROM chained c JOIN runs r USING (run_id)
), wanted AS (
    SELECT * FROM p WHERE outcome = 'failed' AND dirty_version IS NULL
), up AS (   -- the versions each of their services applied up, with when each first was
    SELECT service, version, min(ts) AS first_ts FROM migrate_events
    WHERE kind = 'applied' AND direction = 'up' AND service IN (SELECT service FROM wanted)
    GROUP BY service, version
), own AS (  -- what each of them applied before it failed
    SELECT run_id, max(version) AS v FROM migrate_events
    WHERE kind = 'applied' AND direction = 'up' AND run_id IN (SELECT run_id FROM wanted)
    GROUP BY run_id
)
SELECT w.run_id, w.env, w.service, w.database,
    CASE
        WHEN w.error_class IN ('already_exists', 'does_not_exist') AND w.prev_dirty IS NOT NULL THEN w.prev_dirty
        -- past what the database was at, and past what this run applied before it failed
        ELSE (SELECT min(u.version) FROM up u
              WHERE u.service = w.service AND u.first_ts < w.started_at AND u.version > greatest(w.from_version, o.v))
    END AS v
FROM wanted w LEFT JOIN own o USING (run_id);

UPDATE runs SET dirty_version = g.v, to_version = g.v FROM guessed g WHERE runs.run_id = g.run_id AND g.v IS NOT NULL;

-- A failed run whose lines do not name its version (default mode): migrate names it the next time it is
-- asked on that database, `Dirty database version N` or `version` answering `N (dirty)`, unless the
-- database was shown clean first (a clean run, a new failure, a version shown without dirty). Runs have no
-- clock, so that answer is kept apart with the time it was printed; analysis uses it only at a later clock.
-- Never on the `unknown` database: that is no one database. Only the databases re-chained above can change.
CREATE OR REPLACE TEMP TABLE redirty AS
SELECT DISTINCT env, service, database FROM chained WHERE database <> 'unknown';

UPDATE runs SET next_dirty_version = NULL, next_dirty_at = NULL
WHERE next_dirty_at IS NOT NULL AND (env, service, database) IN (SELECT (env, service, database) FROM redirty);

UPDATE runs SET next_dirty_version = h.v, next_dirty_at = h.at
FROM (
    SELECT n.run_id, n.nxt.v AS v,
        (SELECT min(e.ts) FROM migrate_events e
         WHERE e.run_id = n.nxt.run_id AND (e.kind = 'dirty' OR e.kind = 'version' AND e.name = '(dirty)')) AS at
    FROM (
        SELECT r.run_id, r.outcome, r.version_shown,
            -- the next run that tells the database's state: dirty at a version, or not dirty
            first_value(CASE WHEN r.dirty_version IS NOT NULL OR r.version_shown OR r.applied > 0
                                  OR r.outcome IN ('success', 'no_change', 'failed')
                             THEN {'run_id': r.run_id,
                                   'v': CASE WHEN r.dirty_version IS NOT NULL AND NOT r.left_dirty
                                             THEN r.dirty_version END} END IGNORE NULLS) OVER (
                PARTITION BY r.env, r.service, r.database ORDER BY r.started_at, r.run_id
                ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING) AS nxt
        FROM runs r
        SEMI JOIN (SELECT env, service, database FROM runs
                   WHERE outcome = 'failed' AND NOT version_shown AND database <> 'unknown'
                     AND (env, service, database) IN (SELECT (env, service, database) FROM redirty)) f
            ON r.env = f.env AND r.service = f.service AND r.database = f.database
    ) n
    WHERE n.outcome = 'failed' AND NOT n.version_shown AND n.nxt.v IS NOT NULL
) h
WHERE runs.run_id = h.run_id;

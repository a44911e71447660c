-- Macros of the warehouse: re-created on every writer open (pipeline.warehouse.connect), after the
-- numbered schema steps, so a newer build's definitions replace an older build's.

-- lens_ts(text): a shipper's timestamp as UTC TIMESTAMP. RFC 3339 with Z or an offset (Docker, Fluent
-- Bit, logcli, slog), or epoch seconds / milliseconds / nanoseconds (Fluent Bit `date`, CloudWatch, Loki API).
CREATE OR REPLACE MACRO lens_ts(t) AS
    CASE
        WHEN t IS NULL OR t = '' THEN NULL
        WHEN regexp_full_match(t, '\d+(\.\d+)?') THEN
            CASE
                WHEN try_cast(t AS DOUBLE) > 1e17 THEN make_timestamp(CAST(try_cast(t AS DOUBLE) / 1000 AS BIGINT))
                WHEN try_cast(t AS DOUBLE) > 1e11 THEN make_timestamp(CAST(try_cast(t AS DOUBLE) * 1000 AS BIGINT))
                ELSE make_timestamp(CAST(round(try_cast(t AS DOUBLE) * 1e6) AS BIGINT))
            END
        ELSE try_cast(try_cast(t AS TIMESTAMPTZ) AT TIME ZONE 'UTC' AS TIMESTAMP)
    END;

-- line_text(s): a record's text without its line end (`\n`, `\r\n`, a TTY's stray `\r`s). rtrim with a
-- character set costs ten times a suffix test, and most records end in none or in one newline.
CREATE OR REPLACE MACRO line_text(s) AS
    CASE WHEN ends_with(s, chr(10)) OR ends_with(s, chr(13)) THEN regexp_replace(s, '[\r\n]+$', '') ELSE s END;

-- tag_value(tags, key): the value of the first `key:value` string in a list of tags (Datadog), else NULL.
CREATE OR REPLACE MACRO tag_value(tags, k) AS [substr(t, length(k) + 2) FOR t IN tags IF starts_with(t, k || ':')][1];

-- go_duration_ms(text): Go's time.Duration.String() (`523.4µs`, `23.619417ms`, `2m0.5s`, `0s`) in ms.
-- Almost every value has one unit; only those with several (`1m2.5s`) take the slower general path.
CREATE OR REPLACE MACRO go_duration_ms(s) AS
    CASE
        WHEN regexp_full_match(s, '[\d.]+(ms|s|µs|μs|us|ns|m|h)') THEN
            try_cast(regexp_extract(s, '^[\d.]+') AS DOUBLE) * CASE regexp_extract(s, '[a-zµμ]+$')
                WHEN 'ms' THEN 1.0 WHEN 's' THEN 1000.0 WHEN 'm' THEN 60000.0 WHEN 'h' THEN 3600000.0
                WHEN 'ns' THEN 0.000001 ELSE 0.001 END
        ELSE list_sum(list_transform(
            regexp_extract_all(s, '(\d+(?:\.\d+)?)(h|ms|m|µs|μs|us|ns|s)', 0),
            lambda x: try_cast(regexp_extract(x, '^[\d.]+') AS DOUBLE) * CASE regexp_extract(x, '[a-zµμ]+$')
                WHEN 'h' THEN 3600000.0 WHEN 'm' THEN 60000.0 WHEN 's' THEN 1000.0 WHEN 'ms' THEN 1.0
                WHEN 'ns' THEN 0.000001 ELSE 0.001 END
        ))
    END;

-- dirty_evidence(left_dirty, outcome, dirty_version): the run shows its database dirty: it left it dirty
-- (a failed script, killed mid-script), migrate refused with `Dirty database version N`, or `version` printed
-- `N (dirty)`. The one definition; analyze, dirty_episodes, database_versions and the named queries call it.
CREATE OR REPLACE MACRO dirty_evidence(left_dirty, outcome, dirty_version) AS
    left_dirty OR outcome = 'dirty' OR dirty_version IS NOT NULL;

-- is_clean_run(left_dirty, outcome, dirty_version): the run proves its database usable (success or no change
-- with no dirty evidence); it ends a dirty episode and resolves earlier failed runs.
CREATE OR REPLACE MACRO is_clean_run(left_dirty, outcome, dirty_version) AS
    is_clean_outcome(outcome) AND NOT dirty_evidence(left_dirty, outcome, dirty_version);

-- dirty_episodes(as_of): every dirty episode of a database up to the clock; the one home of the rule that
-- the `dirty_open` and `forced_recovery` findings (pipeline/analyze/findings/dirty.py) and the named queries
-- (dirty_now, dirty_mttr, forced_recoveries) share. An episode starts at the first run with dirty evidence
-- and ends at the next clean run; runs that are neither (a lock timeout, a failure that left nothing dirty)
-- change nothing. Runs are ordered by (started_at, run_id) throughout, so runs that start at the same instant
-- give the same episode, cause and dirty version on every read. recovered_* describe the clean run; NULL
-- while the episode is open.
CREATE OR REPLACE MACRO dirty_episodes(as_of) AS TABLE
WITH r AS (
    SELECT runs.*, dirty_evidence(left_dirty, outcome, dirty_version) AS evidence,
           is_clean_run(left_dirty, outcome, dirty_version) AS clean
    FROM runs WHERE started_at <= as_of
), marked AS (
    SELECT *,
        -- clean runs so far: every run of one episode shares the count of the clean runs before it
        count(*) FILTER (WHERE clean)
            OVER (PARTITION BY env, service, database ORDER BY started_at, run_id
                  ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS episode
    FROM r
), episodes AS (
    SELECT env, service, database, episode,
        arg_min(coalesce(ended_at, started_at), (started_at, run_id)) AS dirty_since,
        arg_min(run_id, (started_at, run_id)) AS cause_run_id,
        arg_min(outcome, (started_at, run_id)) AS cause_outcome,
        arg_min(error_class, (started_at, run_id)) AS cause_error_class,
        arg_min(split_part(error_text, chr(10), 1), (started_at, run_id)) AS cause_error,
        arg_max(dirty_version, (started_at, run_id)) FILTER (WHERE dirty_version IS NOT NULL) AS dirty_version,
        count(*) AS dirty_runs,
        max(started_at) AS last_dirty_run_at
    FROM marked WHERE evidence
    GROUP BY env, service, database, episode
)
SELECT e.*, c.started_at AS recovered_at, c.run_id AS recovered_run_id, c.outcome AS recovered_outcome,
       c.applied AS recovered_applied, c.to_version AS recovered_to_version,
       c.command = 'force' AND c.command_known AS force_recorded
FROM episodes e
LEFT JOIN marked c
  ON c.clean AND c.env = e.env AND c.service = e.service AND c.database = e.database AND c.episode = e.episode + 1;

-- known_versions(as_of): every version a service is known to have by the clock, in any env (applied, printed
-- by `version`, or dirty; not the one a `missing_file` error asked for).
CREATE OR REPLACE MACRO known_versions(as_of) AS TABLE
SELECT DISTINCT service, version FROM migrate_events
WHERE kind IN ('applied', 'version', 'dirty') AND version IS NOT NULL AND ts <= as_of;

-- database_versions(as_of): every database with a run by the clock, the version its last showing run left it
-- at (runs.to_version), how that is known, and whether it is dirty (the `dirty_open` rule). migrate prints no
-- version after a `down`: runs take the known one below the last step down (NULL: none applied, or not in the
-- logs).
CREATE OR REPLACE MACRO database_versions(as_of) AS TABLE
WITH r AS (
    SELECT runs.*, dirty_evidence(left_dirty, outcome, dirty_version) AS evidence
    FROM runs WHERE started_at <= as_of
), last_shown AS (   -- the last run that shows the version
    SELECT * FROM r WHERE version_shown OR dirty_version IS NOT NULL
    QUALIFY row_number() OVER (PARTITION BY env, service, database ORDER BY started_at DESC, run_id DESC) = 1
), shown AS (
    SELECT l.env, l.service, l.database, l.started_at AS known_at, l.to_version AS version,
        CASE WHEN l.dirty_version IS NOT NULL THEN 'dirty version'
             WHEN l.command = 'version' THEN 'printed by migrate version'
             WHEN l.error_class = 'no_migration' THEN 'migrate version: no migration'
             WHEN s.direction = 'down' THEN 'below the last down step (' || s.version || ')'
             ELSE 'last step applied' END AS known_from
    FROM last_shown l
    LEFT JOIN (   -- the last script step of those runs
        SELECT run_id, arg_max(direction, seq) AS direction, arg_max(version, seq) AS version
        FROM migrate_events WHERE kind = 'applied' AND run_id IN (SELECT run_id FROM last_shown)
        GROUP BY run_id
    ) s USING (run_id)
), state AS (   -- the last run that tells dirty or clean
    SELECT env, service, database, evidence AS dirty
    FROM r WHERE evidence OR is_clean_outcome(outcome)
    QUALIFY row_number() OVER (PARTITION BY env, service, database ORDER BY started_at DESC, run_id DESC) = 1
)
SELECT d.env, d.service, d.database, v.version, v.known_from, v.known_at, st.dirty
FROM (SELECT DISTINCT env, service, database FROM r) d
LEFT JOIN shown v USING (env, service, database)
LEFT JOIN state st USING (env, service, database);

-- The warehouse schema: the stable SQL surface of CONTRACT §3, plus columns the pipeline adds.
-- Timestamps are TIMESTAMP in UTC. Applied by pipeline.warehouse.apply_schema(); every statement is
-- idempotent so an older warehouse is upgraded in place.

CREATE TABLE IF NOT EXISTS ingested_sources (
    source_uri   VARCHAR NOT NULL,   -- redacted path or object URL
    size_bytes   BIGINT,
    fingerprint  VARCHAR NOT NULL,   -- size + mtime/etag + content sample; same fingerprint = skipped
    format       VARCHAR NOT NULL,   -- envelope: docker, kubernetes, loki, cloudwatch, slog, text, events
    lines        BIGINT NOT NULL,    -- records read (accepted + rejected)
    rejected     BIGINT NOT NULL,
    duplicates   BIGINT NOT NULL,    -- accepted records already stored from another source
    damage       VARCHAR,            -- e.g. a truncated compressed stream; NULL when the source read whole
    ingested_at  TIMESTAMP NOT NULL,
    load_id      VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS rejects (
    source_uri  VARCHAR NOT NULL,
    line_no     BIGINT NOT NULL,     -- 1-based record number in the source
    reason      VARCHAR NOT NULL,    -- stable code, see README § Rejects
    raw         VARCHAR,             -- the record, redacted, cut to 4 KiB
    load_id     VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS log_lines (
    line_id     VARCHAR NOT NULL,    -- md5 of stream, time, text and occurrence: a line seen twice is stored once
    source_uri  VARCHAR NOT NULL,
    line_no     BIGINT NOT NULL,
    ts          TIMESTAMP,           -- UTC
    ts_origin   VARCHAR NOT NULL,    -- envelope | verbose | mtime: how ts was known
    stream_key  VARCHAR NOT NULL,    -- one migrate process (CONTRACT §2)
    env         VARCHAR NOT NULL,
    service     VARCHAR NOT NULL,
    database    VARCHAR NOT NULL,
    message     VARCHAR NOT NULL,    -- the physical line migrate printed (verbose prefix kept), redacted
    partial     BOOLEAN NOT NULL,    -- a Docker/CRI piece of a line over 16 KiB, joined when parsed
    record      VARCHAR NOT NULL,    -- line | run_start | run_end (run_* only from the migrate-lens/v1 format)
    attrs       VARCHAR,             -- JSON: command, args, exit_code, signal of run_start / run_end records
    load_id     VARCHAR NOT NULL,
    whole       BOOLEAN NOT NULL DEFAULT false  -- one record is one whole message (slog): nothing continues it
);

CREATE TABLE IF NOT EXISTS migrate_events (
    event_id     VARCHAR NOT NULL,
    ts           TIMESTAMP,
    run_id       VARCHAR NOT NULL,
    stream_key   VARCHAR NOT NULL,
    env          VARCHAR NOT NULL,
    service      VARCHAR NOT NULL,
    database     VARCHAR NOT NULL,
    seq          BIGINT NOT NULL,    -- order within the stream
    kind         VARCHAR NOT NULL,
    version      BIGINT,
    direction    VARCHAR,            -- up | down
    name         VARCHAR,            -- migration identifier; '<empty>' when no file exists for the direction
    duration_ms  DOUBLE,             -- as printed: APPLIED = read + ran (near-cumulative), TOTAL = Finished after
    read_ms      DOUBLE,             -- verbose only; includes queue wait
    ran_ms       DOUBLE,             -- verbose only; the script's own time
    own_ms       DOUBLE,             -- the script's own execution time (ran, or derived without -verbose)
    error_class  VARCHAR,
    error_text   VARCHAR,            -- whole error, multi-line SQL body included, redacted
    error_message VARCHAR,           -- postgres message of a failed migration
    sql_line     INTEGER,            -- `in line L` (1-based in the executed statement; 0 = unknown)
    sql_column   INTEGER,            -- `(column C)`
    error_detail VARCHAR,            -- `(details: …)`
    verbose_mode      BOOLEAN NOT NULL,   -- the line carried migrate's -verbose timestamp prefix
    first_line_id VARCHAR NOT NULL,
    line_count   INTEGER NOT NULL    -- physical lines joined into this event
);

CREATE TABLE IF NOT EXISTS runs (
    run_id       VARCHAR NOT NULL,
    stream_key   VARCHAR NOT NULL,
    env          VARCHAR NOT NULL,
    service      VARCHAR NOT NULL,
    database     VARCHAR NOT NULL,
    started_at   TIMESTAMP,
    ended_at     TIMESTAMP,
    command      VARCHAR,            -- up | down | goto | version | force | drop | create …; NULL when unknown
    command_known BOOLEAN NOT NULL,  -- true when recorded by a wrapper, false when inferred from the lines
    applied      INTEGER NOT NULL,
    from_version BIGINT,
    to_version   BIGINT,
    outcome      VARCHAR NOT NULL,   -- success | no_change | failed | dirty | locked | error | interrupted
    error_class  VARCHAR,
    error_text   VARCHAR,
    exit_code    INTEGER,            -- when a wrapper recorded it
    left_dirty   BOOLEAN NOT NULL,   -- the run ended with the database dirty (failed script, killed mid-script)
    dirty_version BIGINT,            -- the version that is dirty, when known
    verbose_mode      BOOLEAN NOT NULL,
    events       INTEGER NOT NULL
);

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

ALTER TABLE runs ADD COLUMN IF NOT EXISTS version_seen BIGINT;  -- the version the run's own lines end at

-- Crash safety: a source is listed here while it loads; rows of a load that never finished are removed
-- by the next ingest. Streams wait here until their events and runs are rebuilt.
CREATE TABLE IF NOT EXISTS pending_sources (source_uri VARCHAR NOT NULL, load_id VARCHAR NOT NULL);
CREATE TABLE IF NOT EXISTS pending_streams (stream_key VARCHAR NOT NULL);

-- Rebuilt by `analyze` for its clock (--as-of); nothing after the clock is used.
CREATE TABLE IF NOT EXISTS script_baselines (
    env          VARCHAR NOT NULL,   -- or the pooled name of ephemeral envs (preview, ci)
    service      VARCHAR NOT NULL,
    version      BIGINT NOT NULL,
    direction    VARCHAR NOT NULL,
    name         VARCHAR,
    n            INTEGER NOT NULL,   -- applications with a known own duration
    median_ms    DOUBLE,
    p95_ms       DOUBLE,
    mad_ms       DOUBLE,             -- median absolute deviation
    last_ms      DOUBLE,
    last_at      TIMESTAMP,
    first_at     TIMESTAMP,
    databases    INTEGER NOT NULL,   -- distinct databases pooled into this baseline
    state        VARCHAR NOT NULL,   -- learning (fewer than analyze.min_samples) | ready
    as_of        TIMESTAMP NOT NULL
);

CREATE TABLE IF NOT EXISTS findings (
    finding_id   VARCHAR NOT NULL,   -- stable across re-analysis of the same evidence
    kind         VARCHAR NOT NULL,
    severity     VARCHAR NOT NULL,   -- info | warning | critical
    env          VARCHAR NOT NULL,
    service      VARCHAR NOT NULL,
    database     VARCHAR,
    version      BIGINT,
    run_id       VARCHAR,
    ts           TIMESTAMP,          -- when it happened (or began)
    observed     DOUBLE,
    expected     DOUBLE,
    score        DOUBLE,
    unit         VARCHAR,            -- of observed / expected: ms, minutes, rate, count
    explanation  VARCHAR NOT NULL,   -- one line a person can check
    status       VARCHAR NOT NULL,   -- open | resolved, as of the clock
    resolved_at  TIMESTAMP,
    runbook      VARCHAR,            -- the next step the rollback practice recommends
    as_of        TIMESTAMP NOT NULL
);

CREATE TABLE IF NOT EXISTS rollback_readiness (
    service          VARCHAR NOT NULL,
    version          BIGINT NOT NULL,
    name             VARCHAR,
    down_file        VARCHAR NOT NULL,  -- present | missing (`<empty>` seen) | unknown (never run down)
    envs_applied     VARCHAR[],         -- where the up ran
    in_prod          BOOLEAN NOT NULL,
    first_prod_at    TIMESTAMP,
    down_tried_envs  VARCHAR[],         -- non-prod envs where the down ran
    last_down_at     TIMESTAMP,
    last_down_ok     BOOLEAN,           -- the last non-prod down attempt applied (false: it failed)
    reapplied_after_down BOOLEAN NOT NULL,  -- the up ran again after that down, in the same env
    ready            BOOLEAN NOT NULL,  -- down present, tried and passing outside prod, and re-applied
    as_of            TIMESTAMP NOT NULL
);

-- Alert state (Alertmanager-like): one row per alert identity (rule + labels).
CREATE TABLE IF NOT EXISTS alerts (
    alert_id       VARCHAR NOT NULL,
    rule           VARCHAR NOT NULL,
    fingerprint    VARCHAR NOT NULL,   -- hash of rule and labels: the identity used to dedupe
    severity       VARCHAR NOT NULL,
    status         VARCHAR NOT NULL,   -- firing | resolved | silenced
    first_fired_at TIMESTAMP NOT NULL,
    last_sent_at   TIMESTAMP,
    sends          INTEGER NOT NULL,   -- notifications delivered for this alert
    resolved_at    TIMESTAMP,
    last_error     VARCHAR,            -- the last delivery failure, redacted; NULL once delivered
    route          VARCHAR NOT NULL,
    labels         VARCHAR NOT NULL,   -- JSON: kind, env, service, database, version
    summary        VARCHAR NOT NULL,   -- the finding's explanation
    pending        VARCHAR             -- firing | resolved: a notification not yet delivered (retried next run)
);

-- Silences from `migrate-lens silence` (those in the rules file are read from it each run).
CREATE TABLE IF NOT EXISTS silences (
    silence_id  VARCHAR NOT NULL,
    matchers    VARCHAR NOT NULL,      -- JSON object label -> value
    starts_at   TIMESTAMP NOT NULL,
    ends_at     TIMESTAMP NOT NULL,
    comment     VARCHAR NOT NULL,
    created_by  VARCHAR NOT NULL
);

-- dirty_episodes(as_of): every dirty episode of a database up to the clock, for the named queries.
-- An episode starts at the first run with dirty evidence (it left the database dirty, migrate refused with
-- `Dirty database version N`, or `version` printed `N (dirty)`) and ends at the next clean run (success or no
-- change with no dirty evidence): the rule of the `dirty_open` finding, computed from `runs` for any clock.
-- recovered_* describe that clean run; NULL while the episode is still open.
CREATE OR REPLACE MACRO dirty_episodes(as_of) AS TABLE
WITH r AS (
    SELECT runs.*, left_dirty OR outcome = 'dirty' OR dirty_version IS NOT NULL AS evidence
    FROM runs WHERE started_at <= as_of
), marked AS (
    SELECT *,
        NOT evidence AND outcome IN ('success', 'no_change') AS clean,
        -- clean runs so far: every run of one episode shares the count of the clean runs before it
        count(*) FILTER (WHERE NOT evidence AND outcome IN ('success', 'no_change'))
            OVER (PARTITION BY env, service, database ORDER BY started_at, run_id
                  ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS episode
    FROM r
), episodes AS (
    SELECT env, service, database, episode,
        arg_min(coalesce(ended_at, started_at), started_at) AS dirty_since,
        arg_min(run_id, started_at) AS cause_run_id,
        arg_min(outcome, started_at) AS cause_outcome,
        arg_min(error_class, started_at) AS cause_error_class,
        arg_min(split_part(error_text, chr(10), 1), started_at) AS cause_error,
        arg_max(dirty_version, started_at) FILTER (WHERE dirty_version IS NOT NULL) AS dirty_version,
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
-- at, how that is known, and whether it is dirty (the `dirty_open` rule). migrate prints no version after a
-- `down`, so there the version is the known one below the last step down (NULL: none applied, or not in the
-- logs); runs.to_version is NULL there and later no-change runs carry the pre-down version forward.
CREATE OR REPLACE MACRO database_versions(as_of) AS TABLE
WITH r AS (
    SELECT runs.*, left_dirty OR outcome = 'dirty' OR dirty_version IS NOT NULL AS evidence
    FROM runs WHERE started_at <= as_of
), last_step AS (   -- the last script step of each run
    SELECT run_id, arg_max(direction, seq) AS direction, arg_max(version, seq) AS version
    FROM migrate_events WHERE kind = 'applied' AND ts <= as_of
    GROUP BY run_id
), shown AS (   -- the last run that shows the version
    SELECT r.env, r.service, r.database, r.started_at AS known_at,
        CASE WHEN s.direction = 'down'
                 THEN (SELECT max(k.version) FROM known_versions(as_of) k
                       WHERE k.service = r.service AND k.version < s.version)
             ELSE coalesce(r.dirty_version, r.version_seen) END AS version,
        CASE WHEN s.direction = 'down' THEN 'below the last down step (' || s.version || ')'
             WHEN r.dirty_version IS NOT NULL THEN 'dirty version'
             WHEN r.command = 'version' THEN 'printed by migrate version'
             ELSE 'last step applied' END AS known_from
    FROM r LEFT JOIN last_step s USING (run_id)
    WHERE s.direction = 'down' OR r.dirty_version IS NOT NULL OR r.version_seen IS NOT NULL
    QUALIFY row_number() OVER (PARTITION BY r.env, r.service, r.database
                               ORDER BY r.started_at DESC, r.run_id DESC) = 1
), state AS (   -- the last run that tells dirty or clean
    SELECT env, service, database, evidence AS dirty
    FROM r WHERE evidence OR outcome IN ('success', 'no_change')
    QUALIFY row_number() OVER (PARTITION BY env, service, database ORDER BY started_at DESC, run_id DESC) = 1
)
SELECT d.env, d.service, d.database, v.version, v.known_from, v.known_at, st.dirty
FROM (SELECT DISTINCT env, service, database FROM r) d
LEFT JOIN shown v USING (env, service, database)
LEFT JOIN state st USING (env, service, database);

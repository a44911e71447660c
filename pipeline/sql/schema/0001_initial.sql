-- The warehouse schema: the stable SQL surface of docs/contract.md §3, plus columns the pipeline adds.
-- Timestamps are TIMESTAMP in UTC. Step 1 of the numbered schema steps (pipeline.warehouse.migrations):
-- a warehouse written before schema versions existed already has these tables, so every statement is idempotent.

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
    stream_key  VARCHAR NOT NULL,    -- one migrate process (docs/contract.md §2)
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
    from_version BIGINT,             -- where the last earlier run on the database that showed a version left it
    to_version   BIGINT,             -- where this run left it; after a down, the known version below the last
                                     -- step: NULL after `down -all` (no version) or when that one is not in the logs
    outcome      VARCHAR NOT NULL,   -- success | no_change | failed | dirty | locked | error | interrupted
    error_class  VARCHAR,
    error_text   VARCHAR,
    exit_code    INTEGER,            -- when a wrapper recorded it
    left_dirty   BOOLEAN NOT NULL,   -- the run ended with the database dirty (failed script, killed mid-script)
    dirty_version BIGINT,            -- the version that is dirty, when known
    verbose_mode      BOOLEAN NOT NULL,
    events       INTEGER NOT NULL
);

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

-- Rebuild migrate_events for the streams in `touched_streams` from their log_lines.
-- Parameters: $cont_ms (continuation window of multi-line errors), $run_gap_ms (silence that starts a run),
-- $lo and $hi: the time range of those streams' lines and old events (the tables' zone maps skip the rest).
-- A stream whose raw lines `prune` removed keeps its events up to its newest pruned line: they can no longer
-- be rebuilt, and a stream that speaks again (the same pod or container, weeks later) adds to them.
DELETE FROM migrate_events
WHERE (ts BETWEEN $lo AND $hi OR ts IS NULL) AND stream_key IN (SELECT stream_key FROM touched_streams)
  AND NOT EXISTS (SELECT 1 FROM pruned_streams p
                  WHERE p.stream_key = migrate_events.stream_key AND migrate_events.ts <= p.last_line_at);

INSERT INTO migrate_events
WITH pruned AS (   -- where a pruned stream's kept events end, and their last position
    SELECT p.stream_key, p.kept_until, max(e.seq) AS kept_seq
    FROM (SELECT stream_key, max(last_line_at) AS kept_until FROM pruned_streams
          WHERE stream_key IN (SELECT stream_key FROM touched_streams) GROUP BY stream_key) p
    LEFT JOIN migrate_events e ON e.stream_key = p.stream_key AND e.ts <= p.kept_until
    GROUP BY p.stream_key, p.kept_until
), streams AS (
    -- Windows partition by a small integer rather than by the long stream key.
    SELECT t.stream_key, row_number() OVER (ORDER BY t.stream_key) AS sid, starts_with(t.stream_key, 'run:') AS wrapped,
           p.kept_until, coalesce(p.kept_seq, 0) AS kept_seq
    FROM touched_streams t LEFT JOIN pruned p USING (stream_key)
), physical AS (
    SELECT l.line_id, l.ts, l.ts_origin, s.sid, s.stream_key, s.wrapped, l.env, l.service, l.database, l.message,
           l.partial, l.whole,
           s.kept_seq + row_number() OVER w AS pseq,
           coalesce(lag(l.partial) OVER w, false) AS continues,
           lag(l.ts) OVER w AS prev_ts
    FROM log_lines l JOIN streams s USING (stream_key)
    WHERE l.record = 'line' AND (l.ts BETWEEN $lo AND $hi OR l.ts IS NULL)
      -- a line shipped again from before a prune has its event already
      AND (s.kept_until IS NULL OR l.ts > s.kept_until)
    WINDOW w AS (PARTITION BY s.sid ORDER BY l.ts, l.source_uri, l.line_no)
), pieces AS (
    -- Docker and CRI cut lines over 16 KiB into pieces; a piece continues into the next record. Only those
    -- few records are grouped; every other record is a logical line of its own.
    SELECT *, max(CASE WHEN NOT continues THEN pseq END)
                  OVER (PARTITION BY sid ORDER BY pseq ROWS UNBOUNDED PRECEDING) AS lseq
    FROM physical WHERE partial OR continues
), logical AS (
    SELECT sid, stream_key, wrapped, pseq AS lseq, ts, prev_ts, ts_origin, env, service, database,
           line_id AS first_line_id, 1 AS nphys, whole, message AS text
    FROM physical WHERE NOT partial AND NOT continues
    UNION ALL
    SELECT sid, stream_key, wrapped, lseq, min(ts), first(prev_ts ORDER BY pseq), arg_min(ts_origin, pseq), arg_min(env, pseq),
           arg_min(service, pseq), arg_min(database, pseq), arg_min(line_id, pseq), count(*), bool_or(whole),
           string_agg(message, '' ORDER BY pseq)
    FROM pieces GROUP BY sid, stream_key, wrapped, lseq
), stripped AS (
    SELECT * EXCLUDE (text),
        -- the prefix is 20 characters: `2006/01/02 15:04:05 `
        CASE WHEN verbose_mode THEN substr(text, 21) ELSE text END AS msg
    FROM (SELECT *, regexp_matches(text, '^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d ') AS verbose_mode,
                 epoch_ms(ts) - epoch_ms(prev_ts) AS gap_ms
          FROM logical)
), classified AS (
    SELECT *,
        -- Each pattern runs only on the lines that start (or contain) its literal part.
        CASE
            WHEN starts_with(msg, 'error: ') THEN 'error'
            WHEN contains(msg, 'Dirty database version ')
                 AND regexp_matches(msg, 'Dirty database version -?\d+\. Fix and force version\.') THEN 'error'
            WHEN msg IN ('Not applying all down migrations', 'Aborted dropping the entire database schema') THEN 'error'
            WHEN starts_with(msg, 'Finished after ') AND regexp_full_match(msg, 'Finished after \S+') THEN 'finished_total'
            WHEN starts_with(msg, 'Finished ') AND regexp_full_match(msg, 'Finished -?\d+/[ud] .* \(read \S+, ran \S+\)')
                THEN 'applied'
            WHEN regexp_full_match(msg, '\d+/[ud] .* \(\S+\)') THEN 'applied'
            WHEN (starts_with(msg, 'Start buffering ') OR starts_with(msg, 'Scheduled '))
                 AND regexp_full_match(msg, '(Start buffering|Scheduled) \d+/[ud] .*') THEN 'buffering'
            WHEN starts_with(msg, 'Read and execute ') AND regexp_full_match(msg, 'Read and execute \d+/[ud] .*')
                THEN 'executing'
            WHEN msg = 'no change' THEN 'no_change'
            WHEN regexp_full_match(msg, '-?\d+( \(dirty\))?') THEN 'version'
            WHEN msg = 'Closing source and database' THEN 'closing'
            WHEN starts_with(msg, 'Stopping after this running migration') THEN 'stopping'
            WHEN msg IN ('Applying all down migrations', 'Dropping the entire database schema')
                 OR starts_with(msg, 'Are you sure you want to ') AND regexp_full_match(msg, 'Are you sure you want to .*\? \[y/N\]')
                THEN 'prompt'
            WHEN regexp_full_match(msg, 'v?\d+\.\d+\.\d+(-\S+)?') THEN 'cli_version'
            WHEN starts_with(msg, 'Usage: migrate ') THEN 'usage'
            WHEN regexp_full_match(msg, '\S*\d+_\S+\.(up|down)\.[A-Za-z0-9]+') THEN 'created'
        END AS line_kind,
        -- Nothing follows a fatal error in its process, so the lines after an `error:` head belong to it
        -- (the SQL body of a failed migration, a `2 errors occurred:` list) until a line carries a verbose
        -- prefix, arrives after a pause, or is a whole record (slog): that starts the next segment.
        verbose_mode OR whole OR gap_ms IS NULL OR gap_ms > $cont_ms AS breaker
    FROM stripped
), segmented AS (
    SELECT *, last_value(CASE WHEN breaker THEN lseq END IGNORE NULLS)
                  OVER (PARTITION BY sid ORDER BY lseq ROWS UNBOUNDED PRECEDING) AS seg
    FROM classified
), heads AS (
    SELECT sid, seg, min(lseq) AS err_start
    FROM segmented WHERE line_kind = 'error' GROUP BY sid, seg
), blocked AS (
    SELECT s.*, h.err_start FROM segmented s LEFT JOIN heads h USING (sid, seg)
), error_blocks AS (
    SELECT sid, err_start AS lseq,
           string_agg(msg, chr(10) ORDER BY lseq) AS block_text, sum(nphys) AS block_lines
    FROM blocked WHERE err_start IS NOT NULL AND lseq >= err_start
    GROUP BY sid, err_start
), lines AS (
    SELECT b.*, coalesce(e.block_lines, b.nphys) AS line_count,
        CASE WHEN e.block_text IS NOT NULL THEN regexp_replace(e.block_text, '^error: ', '') END AS t0
    FROM blocked b LEFT JOIN error_blocks e USING (sid, lseq)
    WHERE b.line_kind IS NOT NULL AND (b.err_start IS NULL OR b.lseq <= b.err_start)
), unglued AS (
    -- migrate's non-fatal logErr prints without a newline, so the fatal error lands on the same line:
    -- `error: Xerror: X` (or `…error: file does not exist` before v4.13). Keep one copy.
    SELECT *,
        CASE
            WHEN t0 IS NULL THEN NULL
            WHEN (length(t0) - 7) % 2 = 0 AND length(t0) > 7
                 AND t0 = left(t0, (length(t0) - 7) // 2) || 'error: ' || left(t0, (length(t0) - 7) // 2)
                THEN left(t0, (length(t0) - 7) // 2)
            WHEN regexp_matches(t0, '^no migration found for version -?\d+.*error: file does not exist$')
                THEN regexp_extract(t0, '^(.*)error: file does not exist$', 1)
            ELSE t0
        END AS t
    FROM lines
), kinded AS (
    SELECT *,
        CASE
            WHEN line_kind <> 'error' THEN line_kind
            WHEN regexp_matches(t, 'Dirty database version -?\d+\. Fix and force version\.') THEN 'dirty'
            WHEN regexp_matches(t, '^(Not applying all down migrations|Aborted dropping the entire database schema)')
                THEN 'prompt_refused'
            WHEN regexp_matches(t, 'migration failed') THEN 'migration_failed'
            WHEN regexp_matches(t, 'can''t acquire (database )?lock|database locked|try lock failed') THEN 'lock_timeout'
            WHEN regexp_matches(t, '^limit \d+ short') THEN 'limit_short'
            WHEN regexp_matches(t, '^(no migration found for version|file does not exist|first \S*: file does not exist|open \S+: no such file or directory|duplicate migration file|failed to open source)')
                THEN 'missing_file'
            WHEN regexp_matches(t, 'dial tcp|connection refused|no such host|i/o timeout|password authentication failed|pq: database "[^"]*" does not exist|SSL is not enabled|failed to open database|^parse "|connection reset by peer|too many connections|the database system is (starting up|shutting down)|server closed the connection')
                THEN 'connection_failed'
            ELSE 'error'
        END AS kind
    FROM unglued
), fields AS (
    SELECT *,
        -- Each shape's fields are extracted only for the lines of that shape (CASE evaluates lazily).
        CASE WHEN kind = 'applied' AND starts_with(msg, 'Finished ') THEN
            regexp_extract(msg, '^Finished (-?\d+)/([ud]) (.*) \(read (\S+), ran (\S+)\)$', ['v', 'd', 'name', 'read', 'ran'])
        ELSE {'v': '', 'd': '', 'name': '', 'read': '', 'ran': ''} END AS fin,
        -- `V/D NAME (DURATION)`, the commonest line: cut with string functions, as the line matched already
        -- `\d+/[ud] .* \(\S+\)` (the name runs to the last ` (`, as a greedy `.*` would)
        CASE WHEN kind = 'applied' AND NOT starts_with(msg, 'Finished ') THEN {
            'v': split_part(msg, '/', 1),
            'd': substr(msg, strpos(msg, '/') + 1, 1),
            'name': substr(msg, strpos(msg, '/') + 3,
                           length(msg) - strpos(msg, '/') - 4 - length(split_part(msg, ' (', -1))),
            'dur': left(split_part(msg, ' (', -1), -1)}
        ELSE {'v': '', 'd': '', 'name': '', 'dur': ''} END AS app,
        CASE WHEN kind IN ('buffering', 'executing') THEN
            regexp_extract(msg, '^(?:Start buffering|Scheduled|Read and execute) (\d+)/([ud]) (.*)$', ['v', 'd', 'name'])
        ELSE {'v': '', 'd': '', 'name': ''} END AS que,
        CASE WHEN kind = 'migration_failed' THEN
            regexp_extract(t, '(?s)migration failed(?:: (.*?))?(?: \(column (\d+)\))? in line (\d+): (.*?)\n? \(details: (.*)\)\s*$',
                           ['message', 'col', 'line', 'sql', 'details'])
        ELSE {'message': '', 'col': '', 'line': '', 'sql': '', 'details': ''} END AS mf
    FROM kinded
), timed AS (
    -- each printed duration parsed once
    SELECT *,
        CASE WHEN fin.v <> '' THEN go_duration_ms(fin.read) END AS read_ms,
        CASE WHEN fin.v <> '' THEN go_duration_ms(fin.ran) END AS ran_ms,
        CASE
            WHEN app.v <> '' AND kind = 'applied' THEN go_duration_ms(app.dur)
            WHEN kind = 'finished_total' THEN go_duration_ms(regexp_extract(msg, '^Finished after (\S+)$', 1))
        END AS printed_ms
    FROM fields
), parsed AS (
    SELECT
        first_line_id AS event_id, ts, ts_origin, sid, stream_key, wrapped, env, service, database, lseq AS seq, kind,
        CASE
            WHEN fin.v <> '' THEN try_cast(fin.v AS BIGINT)
            WHEN app.v <> '' AND kind = 'applied' THEN try_cast(app.v AS BIGINT)
            WHEN que.v <> '' THEN try_cast(que.v AS BIGINT)
            WHEN kind = 'version' THEN try_cast(regexp_extract(msg, '^(-?\d+)', 1) AS BIGINT)
            WHEN kind = 'dirty' THEN try_cast(regexp_extract(t, 'Dirty database version (-?\d+)', 1) AS BIGINT)
            WHEN kind = 'missing_file' AND regexp_matches(t, 'version -?\d+')
                THEN try_cast(regexp_extract(t, 'version (-?\d+)', 1) AS BIGINT)
        END AS version,
        CASE coalesce(nullif(fin.d, ''), nullif(CASE WHEN kind = 'applied' THEN app.d END, ''), nullif(que.d, ''))
            WHEN 'u' THEN 'up' WHEN 'd' THEN 'down' END AS direction,
        CASE
            WHEN fin.v <> '' THEN fin.name
            WHEN app.v <> '' AND kind = 'applied' THEN app.name
            WHEN que.v <> '' THEN que.name
            WHEN kind = 'version' AND ends_with(msg, '(dirty)') THEN '(dirty)'
            WHEN kind IN ('created', 'prompt', 'usage', 'cli_version', 'stopping') THEN msg
        END AS name,
        CASE WHEN fin.v <> '' THEN read_ms + ran_ms ELSE printed_ms END AS duration_ms,
        read_ms,
        ran_ms,
        CASE kind
            WHEN 'migration_failed' THEN CASE
                WHEN regexp_matches(t, 'already exists') THEN 'already_exists'
                WHEN regexp_matches(coalesce(nullif(mf.message, ''), t), 'does not exist') THEN 'does_not_exist'
                WHEN regexp_matches(t, 'syntax error') THEN 'syntax_error'
                WHEN regexp_matches(t, 'lock timeout|deadlock detected|could not obtain lock') THEN 'lock_conflict'
                WHEN regexp_matches(t, 'statement timeout|canceling statement') THEN 'statement_timeout'
                WHEN regexp_matches(t, 'cannot run inside a transaction block') THEN 'transaction_block'
                WHEN regexp_matches(t, 'depend on it|violates foreign key constraint') THEN 'dependency'
                WHEN regexp_matches(t, 'violates (unique|not-null|check) constraint|could not create unique index')
                    THEN 'data_violation'
                ELSE 'sql_error' END
            WHEN 'missing_file' THEN CASE
                WHEN regexp_matches(t, 'duplicate migration file') THEN 'duplicate_file'
                WHEN regexp_matches(t, 'no such file or directory') THEN 'missing_path'
                ELSE 'missing_file' END
            WHEN 'connection_failed' THEN CASE
                WHEN regexp_matches(t, 'password authentication failed') THEN 'auth_failed'
                WHEN regexp_matches(t, 'no such host') THEN 'dns'
                WHEN regexp_matches(t, 'connection refused') THEN 'connection_refused'
                WHEN regexp_matches(t, 'pq: database "[^"]*" does not exist') THEN 'database_missing'
                WHEN regexp_matches(t, 'SSL') THEN 'tls'
                WHEN regexp_matches(t, '^parse "|invalid port') THEN 'bad_dsn'
                ELSE 'connection' END
            WHEN 'error' THEN CASE
                WHEN t = 'no migration' THEN 'no_migration'
                WHEN regexp_matches(t, 'please specify|can''t read (version|limit) argument|must be >= -1|too many arguments|cannot be used with other arguments')
                    THEN 'bad_arguments'
                WHEN regexp_matches(t, 'URL cannot be empty|unknown driver|invalid URL scheme|no scheme|failed to parse scheme')
                    THEN 'bad_config'
                ELSE 'other' END
            WHEN 'dirty' THEN 'dirty'
            WHEN 'lock_timeout' THEN 'lock_timeout'
            WHEN 'limit_short' THEN 'limit_short'
            WHEN 'prompt_refused' THEN 'prompt_refused'
        END AS error_class,
        t AS error_text,
        CASE WHEN kind = 'migration_failed' THEN nullif(mf.message, '') END AS error_message,
        CASE WHEN kind = 'migration_failed' THEN try_cast(nullif(mf.line, '') AS INTEGER) END AS sql_line,
        CASE WHEN kind = 'migration_failed' THEN try_cast(nullif(mf.col, '') AS INTEGER) END AS sql_column,
        CASE WHEN kind = 'migration_failed' THEN nullif(mf.details, '') END AS error_detail,
        verbose_mode, line_count, gap_ms
    FROM timed
), marked AS (
    SELECT *, lag(error_text) OVER w AS prev_error, lag(kind) OVER w AS prev_kind, lag(ts) OVER w AS prev_event_ts
    FROM parsed WINDOW w AS (PARTITION BY sid ORDER BY seq)
), kept AS (
    SELECT *,
        CASE
            WHEN prev_kind IS NULL THEN true
            WHEN wrapped THEN false  -- a wrapper's run_id is one process already
            WHEN epoch_ms(ts) - epoch_ms(prev_event_ts) > $run_gap_ms THEN true
            WHEN prev_kind IN ('dirty', 'migration_failed', 'lock_timeout', 'missing_file', 'connection_failed',
                               'prompt_refused', 'limit_short', 'error', 'no_change', 'version',
                               'finished_total', 'closing', 'usage', 'cli_version')
                 AND kind NOT IN ('finished_total', 'closing') THEN true
            ELSE false
        END AS starts_run
    FROM marked
    -- In -verbose mode the non-fatal error and the fatal one are two timestamped lines: keep the first.
    WHERE NOT (error_text IS NOT NULL AND prev_error IS NOT NULL AND coalesce(gap_ms, 0) <= 2000
               AND (error_text = prev_error OR (error_text = 'file does not exist' AND prev_kind = 'missing_file')))
), runs_assigned AS (
    SELECT * EXCLUDE (run, exec),
        CASE WHEN wrapped THEN substr(stream_key, 5) ELSE run.id END AS run_id,
        run.seq AS run_start_seq,
        -- A failed migration names no version without -verbose; with it, the last `Read and execute` does.
        CASE WHEN exec.seq >= run.seq THEN exec.version END AS exec_version,
        CASE WHEN exec.seq >= run.seq THEN exec.direction END AS exec_direction,
        CASE WHEN exec.seq >= run.seq THEN exec.name END AS exec_name
    FROM (
        SELECT *,
            -- a run is named after its stream and its first event (hashed once per run, not per event)
            last_value(CASE WHEN starts_run THEN {'seq': seq, 'id': 'r' || left(md5(stream_key || chr(31) || event_id), 15)}
                       END IGNORE NULLS) OVER w AS run,
            last_value(CASE WHEN kind = 'executing' THEN {'seq': seq, 'version': version, 'direction': direction,
                                                          'name': name} END IGNORE NULLS) OVER w AS exec
        FROM kept
        WINDOW w AS (PARTITION BY sid ORDER BY seq ROWS UNBOUNDED PRECEDING)
    )
), applied AS (
    -- APPLIED durations are near-cumulative (read counts from when the script was queued, up to
    -- -prefetch 10 ahead), so without -verbose a script's own time is the step between consecutive
    -- APPLIED values; past the prefetch window, the step between the shipper's arrival times.
    SELECT event_id,
        CASE
            -- no file for that direction: nothing ran (a verbose `ran` of it is queue wait)
            WHEN name = '<empty>' THEN 0
            WHEN ran_ms IS NOT NULL THEN ran_ms
            WHEN prev_dur IS NULL THEN duration_ms
            WHEN pos <= 10 OR ts_origin <> 'envelope' THEN greatest(duration_ms - prev_dur, 0)
            ELSE (epoch_us(ts) - epoch_us(prev_ts)) / 1000.0
        END AS own_ms
    FROM (
        SELECT event_id, ts, ts_origin, name, duration_ms, ran_ms,
               lag(duration_ms) OVER w AS prev_dur, lag(ts) OVER w AS prev_ts, row_number() OVER w AS pos
        FROM runs_assigned WHERE kind = 'applied'
        WINDOW w AS (PARTITION BY sid, run_start_seq ORDER BY seq)
    )
)
SELECT
    r.event_id, r.ts,
    r.run_id, r.stream_key, r.env, r.service, r.database, r.seq, r.kind,
    CASE WHEN r.kind = 'migration_failed' THEN coalesce(r.version, r.exec_version) ELSE r.version END,
    CASE WHEN r.kind = 'migration_failed' THEN coalesce(r.direction, r.exec_direction) ELSE r.direction END,
    CASE WHEN r.kind = 'migration_failed' THEN coalesce(r.name, r.exec_name) ELSE r.name END,
    r.duration_ms, r.read_ms, r.ran_ms, a.own_ms,
    r.error_class, r.error_text, r.error_message, r.sql_line, r.sql_column, r.error_detail,
    r.verbose_mode, r.event_id, r.line_count
FROM runs_assigned r LEFT JOIN applied a USING (event_id);

-- One chunk's events by window queries, which DuckDB spills to disk within its memory limit: for a chunk
-- that holds a stream too long to sequence in memory (pipeline/parse/events.py). The same steps as
-- pipeline/parse/sequence.py, which tests/test_parse_incremental.py holds it equal to; each line's shape
-- and each error block's meaning come from the same two files (placeholders below).
-- Parameters: $chunk, $lo, $hi, $cont_ms, $run_gap_ms.
INSERT INTO migrate_events
WITH physical AS (
    SELECT l.line_id, l.ts, l.ts_origin, s.sid, s.wrapped, l.env, l.service, l.database, l.message, l.partial,
           l.whole,
           s.kept_seq + row_number() OVER w AS pseq,
           coalesce(lag(l.partial) OVER w, false) AS continues,
           lag(l.ts) OVER w AS prev_ts
    FROM log_lines l JOIN event_streams s USING (stream_key)
    WHERE s.chunk = $chunk AND l.record = 'line' AND (l.ts BETWEEN $lo AND $hi OR l.ts IS NULL)
      AND (s.kept_until IS NULL OR l.ts > s.kept_until)
    WINDOW w AS (PARTITION BY s.sid ORDER BY l.ts, l.source_uri, l.line_no)
), pieces AS (
    SELECT *, max(CASE WHEN NOT continues THEN pseq END)
                  OVER (PARTITION BY sid ORDER BY pseq ROWS UNBOUNDED PRECEDING) AS lseq
    FROM physical WHERE partial OR continues
), logical AS (
    SELECT sid, wrapped, pseq AS lseq, ts, prev_ts, ts_origin, env, service, database,
           line_id AS first_line_id, 1 AS nphys, whole, message AS text
    FROM physical WHERE NOT partial AND NOT continues
    UNION ALL
    SELECT sid, wrapped, lseq, min(ts), first(prev_ts ORDER BY pseq), arg_min(ts_origin, pseq), arg_min(env, pseq),
           arg_min(service, pseq), arg_min(database, pseq), arg_min(line_id, pseq), count(*), bool_or(whole),
           string_agg(message, '' ORDER BY pseq)
    FROM pieces GROUP BY sid, wrapped, lseq
), shaped AS (
    {line_shapes}
), segmented AS (
    SELECT *, last_value(CASE WHEN breaker THEN lseq END IGNORE NULLS)
                  OVER (PARTITION BY sid ORDER BY lseq ROWS UNBOUNDED PRECEDING) AS seg
    FROM (SELECT *, verbose_mode OR whole OR gap_ms IS NULL OR gap_ms > $cont_ms AS breaker
          FROM (SELECT *, epoch_ms(ts) - epoch_ms(prev_ts) AS gap_ms FROM shaped))
), heads AS (
    SELECT sid, seg, min(lseq) AS err_start FROM segmented WHERE line_kind = 'error' GROUP BY sid, seg
), blocked AS (
    SELECT s.*, h.err_start FROM segmented s LEFT JOIN heads h USING (sid, seg)
), error_blocks AS (
    SELECT sid, err_start AS lseq, regexp_replace(string_agg(msg, chr(10) ORDER BY lseq), '^error: ', '') AS t0,
           sum(nphys) AS block_lines
    FROM blocked WHERE err_start IS NOT NULL AND lseq >= err_start
    GROUP BY sid, err_start
), said AS (
    {error_heads}
), parsed AS (
    SELECT b.* EXCLUDE (version, line_kind), coalesce(a.kind, b.line_kind) AS kind,
           coalesce(b.version, a.version) AS version, coalesce(e.block_lines, b.nphys) AS line_count,
           a.error_class, a.error_text, a.error_message, a.sql_line, a.sql_column, a.error_detail
    FROM blocked b LEFT JOIN error_blocks e USING (sid, lseq) LEFT JOIN said a USING (sid, lseq)
    WHERE b.line_kind IS NOT NULL AND (b.err_start IS NULL OR b.lseq <= b.err_start)
), marked AS (
    SELECT *, lag(error_text) OVER w AS prev_error, lag(kind) OVER w AS prev_kind, lag(ts) OVER w AS prev_event_ts
    FROM parsed WINDOW w AS (PARTITION BY sid ORDER BY lseq)
), kept AS (
    SELECT *,
        CASE
            WHEN prev_kind IS NULL THEN true
            WHEN wrapped THEN false
            WHEN epoch_ms(ts) - epoch_ms(prev_event_ts) > $run_gap_ms THEN true
            WHEN prev_kind IN ('dirty', 'migration_failed', 'lock_timeout', 'missing_file', 'connection_failed',
                               'prompt_refused', 'limit_short', 'error', 'no_change', 'version',
                               'finished_total', 'closing', 'usage', 'cli_version')
                 AND kind NOT IN ('finished_total', 'closing') THEN true
            ELSE false
        END AS starts_run
    FROM marked
    WHERE NOT (error_text IS NOT NULL AND prev_error IS NOT NULL AND coalesce(gap_ms, 0) <= 2000
               AND (error_text = prev_error OR (error_text = 'file does not exist' AND prev_kind = 'missing_file')))
), runs_assigned AS (
    SELECT * EXCLUDE (run, exec),
        run.seq AS run_start_seq, run.first AS run_event_id,
        CASE WHEN exec.seq >= run.seq THEN exec.version END AS exec_version,
        CASE WHEN exec.seq >= run.seq THEN exec.direction END AS exec_direction,
        CASE WHEN exec.seq >= run.seq THEN exec.name END AS exec_name
    FROM (
        SELECT *,
            last_value(CASE WHEN starts_run THEN {'seq': lseq, 'first': first_line_id} END IGNORE NULLS) OVER w AS run,
            last_value(CASE WHEN kind = 'executing' THEN {'seq': lseq, 'version': version, 'direction': direction,
                                                          'name': name} END IGNORE NULLS) OVER w AS exec
        FROM kept
        WINDOW w AS (PARTITION BY sid ORDER BY lseq ROWS UNBOUNDED PRECEDING)
    )
), applied AS (
    SELECT first_line_id,
        CASE
            WHEN name = '<empty>' THEN 0
            WHEN ran_ms IS NOT NULL THEN ran_ms
            WHEN prev_dur IS NULL THEN duration_ms
            WHEN pos <= 10 OR ts_origin <> 'envelope' THEN greatest(duration_ms - prev_dur, 0)
            ELSE (epoch_us(ts) - epoch_us(prev_ts)) / 1000.0
        END AS own_ms
    FROM (
        SELECT first_line_id, ts, ts_origin, name, duration_ms, ran_ms,
               lag(duration_ms) OVER w AS prev_dur, lag(ts) OVER w AS prev_ts, row_number() OVER w AS pos
        FROM runs_assigned WHERE kind = 'applied'
        WINDOW w AS (PARTITION BY sid, run_start_seq ORDER BY lseq)
    )
)
SELECT
    r.first_line_id, r.ts,
    CASE WHEN s.wrapped THEN substr(s.stream_key, 5) ELSE 'r' || left(md5(s.stream_key || chr(31) || r.run_event_id), 15) END,
    s.stream_key, r.env, r.service, r.database, r.lseq, r.kind,
    CASE WHEN r.kind = 'migration_failed' THEN coalesce(r.version, r.exec_version) ELSE r.version END,
    CASE WHEN r.kind = 'migration_failed' THEN coalesce(r.direction, r.exec_direction) ELSE r.direction END,
    CASE WHEN r.kind = 'migration_failed' THEN coalesce(r.name, r.exec_name) ELSE r.name END,
    r.duration_ms, r.read_ms, r.ran_ms, a.own_ms,
    r.error_class, r.error_text, r.error_message, r.sql_line, r.sql_column, r.error_detail,
    r.verbose_mode, r.first_line_id, r.line_count
FROM runs_assigned r LEFT JOIN applied a USING (first_line_id) JOIN event_streams s USING (sid)

-- Store the events pipeline/parse/sequence.py put in order and named (`sequenced`). A script's own time
-- measured between arrival times comes in microseconds and is divided here, as SQL's decimal division rounds.
INSERT INTO migrate_events
SELECT
    event_id, ts, run_id, stream_key, env, service, database, seq, kind, version, direction, name,
    duration_ms, read_ms, ran_ms, coalesce(own_ms, own_us / 1000.0),
    error_class, error_text, error_message, sql_line, sql_column, error_detail,
    verbose_mode, event_id, line_count
FROM sequenced

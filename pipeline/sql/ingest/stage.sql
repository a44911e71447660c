-- Stage one batch of one or more sources: unwrap the envelope (the placeholder below is one of
-- sql/ingest/envelope_*.sql), decide accept or reject per record, fill metadata (record > labels > path >
-- config), redact, and key each line. `batch_sources` holds what is per source (one row per `src`).
CREATE OR REPLACE TEMP TABLE staged AS
WITH given AS (
    {envelope}
), e AS (
    -- An envelope names what it knows of a record; what it leaves out (or NULL) is a physical line of its
    -- own: not a piece of a longer one, not a whole message (slog), no wrapper attributes, no reason of its own.
    SELECT * REPLACE (coalesce(partial, false) AS partial, coalesce(record, 'line') AS record,
                      coalesce(whole, false) AS whole)
    FROM (SELECT NULL::BOOLEAN AS partial, NULL::VARCHAR AS record, NULL::VARCHAR AS attrs,
                 NULL::VARCHAR AS extra_reason, NULL::BOOLEAN AS whole WHERE false
          UNION ALL BY NAME SELECT * FROM given)
), r AS (
    SELECT *,
        CASE
            -- json_ok is NULL for plain text; false where the record is not JSON
            WHEN NOT json_ok AND regexp_full_match(raw, '\s*') THEN 'empty_line'
            WHEN NOT json_ok THEN 'malformed_json'
            WHEN json_ok AND NOT starts_with(raw, '{') AND NOT starts_with(ltrim(raw), '{') THEN
                CASE WHEN starts_with(ltrim(raw), '[') THEN 'json_array' ELSE 'not_an_object' END
            WHEN extra_reason IS NOT NULL THEN extra_reason
            WHEN NOT has_message THEN 'no_message'
            WHEN NOT has_time THEN 'no_time'
            -- outside the plausible window ([ingest] earliest_time, max_future past the wall clock): a year-0
            -- or far-future time would break every later analysis, so it never reaches log_lines
            WHEN ts IS NULL OR ts < $earliest_time OR ts > $latest_time THEN 'bad_time'
        END AS reason
    FROM e
)
SELECT
    r.src,
    r.line_no,
    reason,
    -- the record without its line end, redacted before it is cut (a cut can split a secret)
    CASE WHEN reason IS NOT NULL THEN left(redact(regexp_replace(raw, '\r?\n?$', '')), 4096) END AS raw,
    ts,
    ts_origin,
    stream_key,  -- redacted when keyed (store_batch.sql): once per distinct key, not once per line
    coalesce(nullif(env, ''), s.path_env, $default_env) AS env,
    coalesce(nullif(service, ''), s.path_service, $default_service) AS service,
    coalesce(nullif(database, ''), s.path_database, $default_database) AS database,
    -- migrate's Printf formats end in a newline; shippers keep it (and a TTY's \r) or not.
    CASE WHEN reason IS NULL THEN redact(line_text(message)) END AS message,
    partial,
    record,
    redact(attrs) AS attrs,
    whole
FROM r JOIN batch_sources s USING (src);

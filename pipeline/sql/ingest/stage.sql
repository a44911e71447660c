-- Stage one batch: unwrap the envelope (the placeholder below is one of sql/envelope_*.sql), decide accept or
-- reject per record, fill metadata (record > labels > path > config), redact, and key each line.
CREATE OR REPLACE TEMP TABLE staged AS
WITH e AS (
    {envelope}
), r AS (
    SELECT *,
        CASE
            WHEN jtype IS NOT NULL AND regexp_full_match(raw, '\s*') THEN 'empty_line'
            WHEN jtype = 'INVALID' THEN 'malformed_json'
            WHEN jtype = 'ARRAY' THEN 'json_array'
            WHEN jtype IS NOT NULL AND jtype <> 'OBJECT' THEN 'not_an_object'
            WHEN extra_reason IS NOT NULL THEN extra_reason
            WHEN NOT has_message THEN 'no_message'
            WHEN NOT has_time THEN 'no_time'
            WHEN ts IS NULL THEN 'bad_time'
        END AS reason
    FROM e
)
SELECT
    line_no,
    reason,
    CASE WHEN reason IS NOT NULL THEN left(redact(raw), 4096) END AS raw,
    ts,
    ts_origin,
    redact(stream_key) AS stream_key,
    coalesce(nullif(env, ''), $path_env, $default_env) AS env,
    coalesce(nullif(service, ''), $path_service, $default_service) AS service,
    coalesce(nullif(database, ''), $path_database, $default_database) AS database,
    -- migrate's Printf formats end in a newline; shippers keep it (and a TTY's \r) or not.
    CASE WHEN reason IS NULL THEN redact(rtrim(message, chr(13) || chr(10))) END AS message,
    partial,
    record,
    redact(attrs) AS attrs,
    whole
FROM r;

-- Go log/slog JSON from programs embedding migrate: migrate's Printf lines arrive as `msg`; the error
-- migrate returns is usually logged once, whole (SQL body included), in an `error`/`err` attribute.
SELECT
    src, line_no, raw, json_ok,
    coalesce(f[1], f[3], f[4]) IS NOT NULL AS has_message,
    CASE WHEN coalesce(f[3], f[4]) IS NOT NULL THEN 'error: ' || coalesce(f[3], f[4]) ELSE f[1] END AS message,
    f[2] IS NOT NULL AS has_time,
    lens_ts(f[2]) AS ts,
    'envelope' AS ts_origin,
    CASE WHEN coalesce(f[5], f[6]) IS NOT NULL THEN 'slog:' || coalesce(f[5], f[6]) ELSE file_stream END
        AS stream_key,
    coalesce(f[7], f[8]) AS env,
    coalesce(f[9], f[10], f[11]) AS service,
    coalesce(f[12], f[13], f[14]) AS database,
    -- one record is one whole message (the returned error with its SQL body): nothing continues it
    true AS whole
FROM (
    SELECT src, line_no, raw, file_stream, f, f IS NOT NULL AS json_ok
    FROM (SELECT *, try(json_extract_string(raw, [
            '$.msg', '$.time', '$.error', '$.err', '$.run_id', '$.pod',
            '$.env', '$.environment', '$.service', '$.service_name', '$.app',
            '$.database', '$.db', '$.tenant'
        ])) AS f FROM typed_batch)
)

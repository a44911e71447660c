-- Docker json-file: {"log":"…\n","stream":"stderr","time":"…Z"[,"attrs":{…}]}. One file = one container.
-- A `log` without its trailing newline is a piece of a line over 16 KiB (joined when parsed).
SELECT
    src, line_no, raw, json_ok,
    f[1] IS NOT NULL AS has_message,
    f[1] AS message,  -- its line end is cut when staged
    f[2] IS NOT NULL AS has_time,
    lens_ts(f[2]) AS ts,
    'envelope' AS ts_origin,
    file_stream AS stream_key,
    coalesce(f[3], f[6]) AS env,
    coalesce(f[4], f[7]) AS service,
    coalesce(f[5], f[8]) AS database,
    coalesce(NOT ends_with(f[1], chr(10)), false) AS partial
FROM (
    SELECT src, line_no, raw, file_stream, f, f IS NOT NULL AS json_ok
    FROM (SELECT *, try(json_extract_string(raw, [
            '$.log', '$.time', '$.env', '$.service', '$.database',
            '$.attrs.env', '$.attrs.service', '$.attrs.database'
        ])) AS f FROM typed_batch)
)

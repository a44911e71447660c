-- Plain text: CRI node files (`TS stderr F msg`, P = partial), CloudWatch S3 export lines (`TS msg`),
-- or bare migrate output. A line without a timestamp of its own takes the last one before it in its source
-- (SQL bodies of multi-line errors, the export's multi-line messages), else migrate's -verbose prefix, else
-- the file's modification time.
WITH parts AS (
    SELECT
        src, line_no, raw, file_stream, mtime, carry_ts, carry_origin,
        regexp_extract(raw, '^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)) (stdout|stderr) ([FP]) ?(.*)$',
            ['ts', 'stream', 'tag', 'msg']) AS cri,
        regexp_extract(raw, '^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z) (.*)$', ['ts', 'msg']) AS export,
        regexp_extract(raw, '^(\d{4}/\d\d/\d\d \d\d:\d\d:\d\d) ', 1) AS vts
    FROM (SELECT * REPLACE (regexp_replace(raw, '\r?\n?$', '') AS raw) FROM typed_batch)
), own AS (
    SELECT
        src, line_no, raw, file_stream, mtime, carry_ts, carry_origin,
        CASE WHEN cri.ts <> '' THEN cri.msg WHEN export.ts <> '' THEN export.msg ELSE raw END AS message,
        CASE
            WHEN cri.ts <> '' THEN lens_ts(cri.ts)
            WHEN export.ts <> '' THEN lens_ts(export.ts)
            WHEN vts <> '' THEN try_cast(timezone($tz, strptime(vts, '%Y/%m/%d %H:%M:%S')) AT TIME ZONE 'UTC' AS TIMESTAMP)
        END AS own_ts,
        CASE WHEN cri.ts <> '' OR export.ts <> '' THEN 'envelope' WHEN vts <> '' THEN 'verbose' END AS own_origin,
        cri.tag = 'P' AS partial
    FROM parts
)
SELECT
    src, line_no, raw, NULL::BOOLEAN AS json_ok,
    true AS has_message,
    message,
    true AS has_time,
    coalesce(last_value(own_ts IGNORE NULLS) OVER w, carry_ts, mtime) AS ts,
    coalesce(last_value(own_origin IGNORE NULLS) OVER w, carry_origin, 'mtime') AS ts_origin,
    file_stream AS stream_key,
    NULL::VARCHAR AS env, NULL::VARCHAR AS service, NULL::VARCHAR AS database,
    partial  -- NULL (not a CRI line) is no piece: stage.sql's default
FROM own
WINDOW w AS (PARTITION BY src ORDER BY line_no ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)

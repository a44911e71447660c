-- Splunk search exports: JSON lines {"preview":false,"result":{"_raw","_time","host","source","sourcetype",…}}
-- (or the result's fields at the top level), and CSV exports, whose rows arrive here as {"result":{…}}.
-- Splunk merges lines without a date into one event: a `_raw` of several lines arrives as one record per
-- line, the line in `lens_line` (ingest/exports.py). Stream = the pod and container Splunk Connect for
-- Kubernetes indexes, else host + source (the file the forwarder read), else the file. A `_raw` that is
-- Docker's splunk logging driver's own JSON is unwrapped to its `line`; its `tag` (the container) is the stream.
SELECT
    src, line_no, raw, json_ok,
    m IS NOT NULL AS has_message,
    m AS message,
    f[2] IS NOT NULL AS has_time,
    lens_ts(regexp_replace(f[2], ' UTC$', 'Z')) AS ts,
    'envelope' AS ts_origin,
    CASE WHEN f[5] IS NOT NULL
             THEN 'splunk:' || coalesce(f[6], '') || '/' || f[5] || '/' || coalesce(f[7], '')
         WHEN driver_tag IS NOT NULL THEN 'splunk:' || coalesce(f[3] || ':', '') || 'docker/' || driver_tag
         WHEN f[4] IS NOT NULL THEN 'splunk:' || coalesce(f[3] || ':', '') || f[4]
         ELSE file_stream END AS stream_key,
    coalesce(f[8], f[9]) AS env,
    coalesce(f[10], f[11], f[12]) AS service,
    coalesce(f[13], f[14], f[15]) AS database
FROM (
    SELECT src, line_no, raw, file_stream, f, f IS NOT NULL AS json_ok,
        coalesce(d[1], m0) AS m, d[2] AS driver_tag
    FROM (SELECT *, coalesce(l, f[1]) AS m0,
        -- Docker's `splunk` logging driver sends each line as its own JSON ({"line", "source", "tag"}): the
        -- line is the message and the tag (the container) the stream
        CASE WHEN starts_with(coalesce(l, f[1]), '{') AND contains(coalesce(l, f[1]), '"line"')
             THEN try(json_extract_string(coalesce(l, f[1]), ['$.line', '$.tag'])) END AS d
    FROM (SELECT *, try(json_extract_string(coalesce(json_extract(j, '$.result'), j), [
            '$._raw', '$._time', '$.host', '$.source', '$.pod', '$.namespace', '$.container_name',
            '$.env', '$.environment', '$.service', '$.service_name', '$.app',
            '$.database', '$.db', '$.tenant'
        ])) AS f, try(json_extract_string(j, '$.lens_line')) AS l
        FROM (SELECT *, try(CAST(raw AS JSON)) AS j FROM typed_batch)))
)

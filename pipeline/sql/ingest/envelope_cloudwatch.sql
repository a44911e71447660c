-- AWS CloudWatch Logs events {"logStreamName","timestamp"(epoch ms),"message"}; whole documents
-- (filter-log-events output, subscription payloads) are split into events before they get here.
-- On EKS with Container Insights `message` is itself a Fluent Bit record: decode it twice.
SELECT
    src, line_no, raw, json_ok,
    f[1] IS NOT NULL AS has_message,
    CASE WHEN starts_with(f[1], '{') AND json_valid(f[1]) AND json_extract_string(f[1], '$.log') IS NOT NULL
         THEN json_extract_string(f[1], '$.log')
         ELSE f[1] END AS message,
    f[2] IS NOT NULL AS has_time,
    lens_ts(f[2]) AS ts,
    'envelope' AS ts_origin,
    CASE WHEN f[3] IS NOT NULL THEN 'cw:' || coalesce(f[4] || ':', '') || f[3] ELSE file_stream END AS stream_key,
    f[5] AS env,
    f[6] AS service,
    f[7] AS database
FROM (
    SELECT src, line_no, raw, file_stream, f, f IS NOT NULL AS json_ok
    FROM (SELECT *, try(json_extract_string(raw, [
            '$.message', '$.timestamp', '$.logStreamName', '$.logGroupName',
            '$.env', '$.service', '$.database'
        ])) AS f FROM typed_batch)
)

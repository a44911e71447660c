-- Grafana Loki `logcli --output=jsonl`: {"labels":{…},"line":"…","timestamp":"…"}. Without a cri/docker
-- stage in Promtail/Alloy, `line` is still a raw CRI line or a Docker JSON record: unwrap both.
SELECT
    src, line_no, raw, json_ok,
    f[1] IS NOT NULL AS has_message,
    CASE
        WHEN regexp_matches(f[1], '^\d{4}-\d\d-\d\dT\S+ (stdout|stderr) [FP] ')
            THEN regexp_replace(f[1], '^\S+ (stdout|stderr) [FP] ?', '')
        WHEN starts_with(f[1], '{"log":') AND json_valid(f[1])
            THEN json_extract_string(f[1], '$.log')
        ELSE f[1]
    END AS message,
    f[2] IS NOT NULL AS has_time,
    lens_ts(f[2]) AS ts,
    'envelope' AS ts_origin,
    CASE
        WHEN coalesce(f[3], f[5]) IS NOT NULL
            THEN 'loki:' || coalesce(f[15], '') || '/' || coalesce(f[3], f[5]) || '/' || coalesce(f[4], '')
        WHEN f[16] IS NOT NULL THEN 'loki:' || f[16]
        ELSE file_stream END AS stream_key,
    coalesce(f[6], f[7]) AS env,
    coalesce(f[8], f[9], f[10], f[11]) AS service,
    coalesce(f[12], f[13], f[14]) AS database,
    coalesce(regexp_matches(f[1], '^\d{4}-\d\d-\d\dT\S+ (stdout|stderr) P '), false) AS partial
FROM (
    SELECT src, line_no, raw, file_stream, f, f IS NOT NULL AS json_ok
    FROM (SELECT *, try(json_extract_string(raw, [
            '$.line', '$.timestamp',
            '$.labels.pod', '$.labels.container', '$.labels.instance',
            '$.labels.env', '$.labels.environment',
            '$.labels.service', '$.labels.service_name', '$.labels.app', '$.labels."app.kubernetes.io/name"',
            '$.labels.database', '$.labels.db', '$.labels.tenant',
            '$.labels.namespace', '$.labels'
        ])) AS f FROM typed_batch)
)

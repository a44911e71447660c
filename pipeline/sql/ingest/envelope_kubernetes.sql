-- Kubernetes via Fluent Bit / Fluentd: {"time"|"@timestamp"|"date", "stream", "_p"|"logtag", "log",
-- "kubernetes":{pod_name, namespace_name, container_name, labels{…}}}. Stream = pod + container.
SELECT
    src, line_no, raw, json_ok,
    f[1] IS NOT NULL AS has_message,
    f[1] AS message,  -- its line end is cut when staged
    coalesce(f[2], f[3], f[4]) IS NOT NULL AS has_time,
    lens_ts(coalesce(f[2], f[3], f[4])) AS ts,
    'envelope' AS ts_origin,
    CASE WHEN f[5] IS NOT NULL
         THEN 'k8s:' || coalesce(f[6], '') || '/' || f[5] || '/' || coalesce(f[7], '')
         ELSE file_stream END AS stream_key,
    coalesce(f[8], f[9], f[10]) AS env,
    coalesce(f[11], f[12], f[13], f[14], f[15]) AS service,
    coalesce(f[16], f[17], f[18], f[19]) AS database,
    coalesce(coalesce(f[20], f[21]) = 'P', false) AS partial
FROM (
    SELECT src, line_no, raw, file_stream, f, f IS NOT NULL AS json_ok
    FROM (SELECT *, try(json_extract_string(raw, [
            '$.log', '$.time', '$."@timestamp"', '$.date',
            '$.kubernetes.pod_name', '$.kubernetes.namespace_name', '$.kubernetes.container_name',
            '$.env', '$.kubernetes.labels.env', '$.kubernetes.labels.environment',
            '$.service', '$.kubernetes.labels.service', '$.kubernetes.labels.service_name',
            '$.kubernetes.labels.app', '$.kubernetes.labels."app.kubernetes.io/name"',
            '$.database', '$.kubernetes.labels.database', '$.kubernetes.labels.db', '$.kubernetes.labels.tenant',
            '$._p', '$.logtag'
        ])) AS f FROM typed_batch)
)

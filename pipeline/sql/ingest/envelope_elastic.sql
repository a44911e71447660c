-- Elastic / OpenSearch: ECS documents as Filebeat and Elastic Agent write them, from NDJSON of `_source`
-- documents or `_search` / scroll pages (split into documents before they get here):
-- {"@timestamp", "message", "log":{"level",…}, "container":{"name","id"}, "kubernetes":{"pod":{"name"},
-- "namespace", "container":{"name"}, "labels":{…}}, "service":{"name","environment"}, "host":{"name"}}.
-- A message of several lines arrives as one record per line, the line in `lens_line` (ingest/exports.py).
-- Stream = namespace + pod + container; else the host and file the agent read; else the file.
SELECT
    src, line_no, raw, json_ok,
    coalesce(f[1], f[2]) IS NOT NULL AS has_message,
    coalesce(f[1], f[2]) AS message,
    f[3] IS NOT NULL AS has_time,
    lens_ts(f[3]) AS ts,
    'envelope' AS ts_origin,
    CASE WHEN f[4] IS NOT NULL
             THEN 'ecs:' || coalesce(f[5], '') || '/' || f[4] || '/' || coalesce(f[6], f[7], '')
         WHEN f[8] IS NOT NULL THEN 'ecs:' || coalesce(f[9] || ':', '') || f[8]
         ELSE file_stream END AS stream_key,
    coalesce(f[10], f[11], f[12], f[13], f[14], f[15]) AS env,
    -- `service` is an ECS object ({"name", "environment"}); some shippers write a plain string instead
    coalesce(f[16], f[17], CASE WHEN NOT starts_with(f[28], '{') THEN f[28] END, f[18], f[19], f[20], f[21])
        AS service,
    coalesce(f[22], f[23], f[24], f[25], f[26], f[27]) AS database
FROM (
    SELECT src, line_no, raw, file_stream, f, f IS NOT NULL AS json_ok
    FROM (SELECT *, try(json_extract_string(raw, [
            '$.lens_line', '$.message', '$."@timestamp"',
            '$.kubernetes.pod.name', '$.kubernetes.namespace', '$.kubernetes.container.name', '$.container.name',
            '$.log.file.path', '$.host.name',
            '$.labels.env', '$.labels.environment', '$.service.environment', '$.kubernetes.labels.env',
            '$.kubernetes.labels.environment', '$.env',
            '$.labels.service', '$.service.name', '$.kubernetes.labels.service', '$.kubernetes.labels.app',
            '$.kubernetes.labels."app_kubernetes_io/name"', '$.kubernetes.labels."app.kubernetes.io/name"',
            '$.labels.database', '$.labels.db', '$.labels.tenant', '$.kubernetes.labels.database',
            '$.kubernetes.labels.db', '$.kubernetes.labels.tenant', '$.service'
        ])) AS f FROM typed_batch)
)

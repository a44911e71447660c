-- Datadog log archives (gzipped JSON lines): {"_id", "date", "host", "service", "source", "status",
-- "message", "attributes":{…}, "tags":["env:prod","pod_name:…","kube_namespace:…","kube_container_name:…"]}.
-- A message of several lines (the agent's multi-line aggregation) arrives as one record per line, the line
-- in `lens_line` (ingest/exports.py). Stream = the pod_name / kube_container_name tags, else the file.
SELECT
    src, line_no, raw, json_ok,
    coalesce(f[1], f[2]) IS NOT NULL AS has_message,
    coalesce(f[1], f[2]) AS message,
    coalesce(f[3], f[4]) IS NOT NULL AS has_time,
    lens_ts(coalesce(f[3], f[4])) AS ts,
    'envelope' AS ts_origin,
    CASE WHEN tag_value(tags, 'pod_name') IS NOT NULL
             THEN 'dd:' || coalesce(tag_value(tags, 'kube_namespace'), '') || '/' || tag_value(tags, 'pod_name') || '/'
                  || coalesce(tag_value(tags, 'kube_container_name'), tag_value(tags, 'container_name'), '')
         ELSE file_stream END AS stream_key,
    coalesce(f[5], f[6], tag_value(tags, 'env')) AS env,
    coalesce(f[7], f[8], tag_value(tags, 'service')) AS service,
    coalesce(f[9], f[10], f[11], tag_value(tags, 'database'), tag_value(tags, 'db'), tag_value(tags, 'tenant')) AS database
FROM (
    SELECT src, line_no, raw, file_stream, f, f IS NOT NULL AS json_ok,
        -- `tags` as key:value strings; `ddtags` is the intake's comma-separated list
        coalesce(try(CAST(json_extract(raw, '$.tags') AS VARCHAR[])), string_split(f[12], ','), []) AS tags
    FROM (SELECT *, try(json_extract_string(raw, [
            '$.lens_line', '$.message', '$.date', '$.timestamp',
            '$.attributes.env', '$.attributes.environment',
            '$.service', '$.attributes.service',
            '$.attributes.database', '$.attributes.db', '$.attributes.tenant', '$.ddtags'
        ])) AS f FROM typed_batch)
)

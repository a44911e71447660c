-- Google Cloud Logging exports (sinks to Cloud Storage, `gcloud logging read --format=json`): LogEntry
-- {"textPayload" | "jsonPayload":{"message",…}, "timestamp", "receiveTimestamp", "resource":{"type",
-- "labels":{pod_name, namespace_name, container_name, …}}, "labels":{"k8s-pod/app",…}, "logName"}.
-- A payload of several lines arrives as one record per line, the line in `lens_line` (ingest/exports.py).
-- Stream = namespace + pod + container (GKE); a Cloud Run job's execution and task; else the file.
SELECT
    src, line_no, raw, json_ok,
    coalesce(f[1], f[2], f[3]) IS NOT NULL AS has_message,
    coalesce(f[1], f[2], f[3]) AS message,
    coalesce(f[4], f[5]) IS NOT NULL AS has_time,
    lens_ts(coalesce(f[4], f[5])) AS ts,
    'envelope' AS ts_origin,
    CASE WHEN f[6] IS NOT NULL
             THEN 'gcp:' || coalesce(f[7], '') || '/' || f[6] || '/' || coalesce(f[8], '')
         WHEN f[9] IS NOT NULL THEN 'gcp:run/' || coalesce(f[10], '') || '/' || f[9] || '/' || coalesce(f[11], '')
         ELSE file_stream END AS stream_key,
    coalesce(f[12], f[13], f[14], f[15], f[16]) AS env,
    coalesce(f[17], f[18], f[19], f[20], f[21], f[22]) AS service,
    coalesce(f[23], f[24], f[25], f[26], f[27]) AS database
FROM (
    SELECT src, line_no, raw, file_stream, f, f IS NOT NULL AS json_ok
    FROM (SELECT *, try(json_extract_string(raw, [
            '$.lens_line', '$.textPayload', '$.jsonPayload.message', '$.timestamp', '$.receiveTimestamp',
            '$.resource.labels.pod_name', '$.resource.labels.namespace_name', '$.resource.labels.container_name',
            '$.labels."run.googleapis.com/execution_name"', '$.resource.labels.job_name',
            '$.labels."run.googleapis.com/task_index"',
            '$.jsonPayload.env', '$.labels.env', '$.labels.environment', '$.labels."k8s-pod/env"',
            '$.labels."k8s-pod/environment"',
            '$.jsonPayload.service', '$.labels.service', '$.labels."k8s-pod/app"',
            '$.labels."k8s-pod/app_kubernetes_io/name"', '$.resource.labels.service_name',
            '$.resource.labels.job_name',
            '$.jsonPayload.database', '$.labels.database', '$.labels."k8s-pod/database"', '$.labels."k8s-pod/db"',
            '$.labels."k8s-pod/tenant"'
        ])) AS f FROM typed_batch)
)

-- The project's own format, migrate-lens/v1: run_start (command, args), line (one physical migrate
-- line), run_end (exit_code, signal). Stream = run_id, which the wrapper guarantees is one process.
SELECT
    src, line_no, raw, json_ok,
    f[6] <> 'line' OR f[7] IS NOT NULL AS has_message,
    coalesce(f[7], '') AS message,
    f[2] IS NOT NULL AS has_time,
    lens_ts(f[2]) AS ts,
    'envelope' AS ts_origin,
    'run:' || coalesce(f[3], file_stream) AS stream_key,
    f[4] AS env,
    f[5] AS service,
    f[8] AS database,
    f[6] AS record,
    CASE WHEN f[6] IN ('run_start', 'run_end') THEN json_object(
        'command', f[9], 'args', json_extract(raw, '$.args'),
        'exit_code', try_cast(f[10] AS INTEGER), 'signal', f[11]
    )::VARCHAR END AS attrs,
    CASE
        WHEN f[1] IS DISTINCT FROM 'migrate-lens/v1' THEN 'unsupported_schema'
        WHEN f[3] IS NULL THEN 'no_run_id'
        WHEN f[6] IS NULL OR f[6] NOT IN ('run_start', 'line', 'run_end') THEN 'unknown_event'
    END AS extra_reason
FROM (
    SELECT src, line_no, raw, file_stream, f, f IS NOT NULL AS json_ok
    FROM (SELECT *, try(json_extract_string(raw, [
            '$.schema', '$.ts', '$.run_id', '$.env', '$.service', '$.event', '$.line', '$.database',
            '$.command', '$.exit_code', '$.signal'
        ])) AS f FROM typed_batch)
)

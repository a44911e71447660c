-- Store the staged batch: rejects as they are, accepted lines keyed by content so that a line seen twice
-- (overlapping Loki or CloudWatch exports of one window) is stored once. The occurrence number keeps
-- genuinely repeated lines of one source (two identical SQL lines at one timestamp) apart.
INSERT INTO rejects
SELECT $source_uri, line_no, reason, raw, $load_id FROM staged WHERE reason IS NOT NULL;

CREATE OR REPLACE TEMP TABLE keyed AS
WITH h AS (
    SELECT *, md5(concat_ws(chr(31), stream_key, coalesce(strftime(ts, '%Y-%m-%dT%H:%M:%S.%f'), ''),
                            record, message)) AS content_hash
    FROM staged WHERE reason IS NULL
), o AS (
    SELECT h.*, row_number() OVER (PARTITION BY h.content_hash ORDER BY h.line_no) - 1
                + coalesce(seen.n, 0) AS occurrence
    FROM h LEFT JOIN (SELECT content_hash, sum(n) AS n FROM source_seen GROUP BY ALL) seen USING (content_hash)
)
SELECT *, CASE WHEN occurrence = 0 THEN content_hash ELSE md5(content_hash || ':' || occurrence) END AS line_id
FROM o;

INSERT INTO log_lines
SELECT line_id, $source_uri, line_no, ts, ts_origin, stream_key, env, service, database, message,
       partial, record, attrs, $load_id, whole
FROM keyed k
WHERE NOT EXISTS (SELECT 1 FROM log_lines l WHERE l.line_id = k.line_id);

INSERT INTO pending_streams SELECT DISTINCT stream_key FROM keyed
WHERE stream_key NOT IN (SELECT stream_key FROM pending_streams);

INSERT INTO source_seen SELECT content_hash, count(*) FROM keyed GROUP BY ALL;

INSERT INTO source_ids SELECT line_id FROM keyed;

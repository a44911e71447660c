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
), repeated AS (
    -- Almost every line is unique; only repeated ones (in this batch or earlier batches of the source)
    -- need an occurrence number.
    SELECT content_hash FROM h GROUP BY content_hash HAVING count(*) > 1
    UNION SELECT content_hash FROM source_seen
), numbered AS (
    SELECT h.*, row_number() OVER (PARTITION BY h.content_hash ORDER BY h.line_no) - 1
                + coalesce((SELECT sum(n) FROM source_seen s WHERE s.content_hash = h.content_hash), 0) AS occurrence
    FROM h WHERE content_hash IN (SELECT content_hash FROM repeated)
)
SELECT *, 0 AS occurrence, content_hash AS line_id FROM h WHERE content_hash NOT IN (SELECT content_hash FROM repeated)
UNION ALL
SELECT *, CASE WHEN occurrence = 0 THEN content_hash ELSE md5(content_hash || ':' || occurrence) END AS line_id
FROM numbered;

INSERT INTO log_lines
SELECT line_id, $source_uri, line_no, ts, ts_origin, stream_key, env, service, database, message,
       partial, record, attrs, $load_id, whole
FROM keyed k
WHERE NOT EXISTS (SELECT 1 FROM log_lines l WHERE l.line_id = k.line_id);

INSERT INTO pending_streams SELECT DISTINCT stream_key FROM keyed
WHERE stream_key NOT IN (SELECT stream_key FROM pending_streams);

INSERT INTO source_seen SELECT content_hash, count(*) FROM keyed GROUP BY ALL;

INSERT INTO source_ids SELECT line_id FROM keyed;

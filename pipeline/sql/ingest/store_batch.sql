-- Store the staged batch: rejects as they are, accepted lines keyed by content so that a line seen twice
-- (overlapping Loki or CloudWatch exports of one window) is stored once. The occurrence number keeps
-- genuinely repeated lines of one source (two identical SQL lines at one timestamp) apart.
-- Parameters: $load_id; $lo, $hi: the batch's time range (a stored line with the same id has the same
-- time, so only that range of log_lines is read); $grouped: the batch holds several sources.
CREATE OR REPLACE TEMP TABLE batch_rejects AS
WITH refused_before AS (
    -- A source that reads an earlier one's records again (a CloudWatch Logs window re-asks the overlap
    -- before its stream's last event) refused them then: they are duplicates now, not new rejects.
    SELECT s.src, r.reason, r.raw
    FROM (SELECT src, rereads FROM batch_sources WHERE rereads IS NOT NULL) s
    JOIN rejects r ON starts_with(r.source_uri, s.rereads)
)
SELECT t.src, t.line_no, t.reason, t.raw
FROM staged t ANTI JOIN refused_before b ON b.src = t.src AND b.reason = t.reason AND b.raw = t.raw
WHERE t.reason IS NOT NULL;

INSERT INTO rejects
SELECT s.source_uri, t.line_no, t.reason, t.raw, $load_id FROM batch_rejects t JOIN batch_sources s USING (src);

CREATE OR REPLACE TEMP TABLE keyed AS
WITH keys AS (
    -- a batch holds few streams: each key is redacted once, not once per line
    SELECT stream_key, redact(stream_key) AS redacted FROM (SELECT DISTINCT stream_key FROM staged WHERE reason IS NULL)
), h AS (
    SELECT t.* EXCLUDE (reason, raw, stream_key), k.redacted AS stream_key,
        md5(concat_ws(chr(31), k.redacted, coalesce(strftime(t.ts, '%Y-%m-%dT%H:%M:%S.%f'), ''), t.record, t.message))
            AS content_hash
    FROM staged t LEFT JOIN keys k USING (stream_key) WHERE t.reason IS NULL
), repeated AS (
    -- Almost every line is unique; only lines repeated within their source (in this batch, or in earlier
    -- batches of a large source) need an occurrence number.
    SELECT src, content_hash, sum(before) AS before FROM (
        SELECT src, content_hash, 0 AS before FROM h GROUP BY src, content_hash HAVING count(*) > 1
        UNION ALL
        SELECT src, content_hash, n FROM source_seen WHERE ts BETWEEN $lo AND $hi
    ) GROUP BY src, content_hash
), ided AS (
    SELECT *, content_hash AS line_id FROM h ANTI JOIN repeated USING (src, content_hash)
    UNION ALL
    SELECT * EXCLUDE (occurrence, before),
        CASE WHEN occurrence = 0 THEN content_hash ELSE md5(content_hash || ':' || occurrence) END
    FROM (
        SELECT h.*, r.before, row_number() OVER (PARTITION BY h.src, h.content_hash ORDER BY h.line_no) - 1 + r.before
            AS occurrence
        FROM h JOIN repeated r USING (src, content_hash)
    )
), firsts AS (
    -- a line in two sources of one group is stored by the first of them
    SELECT line_id, min(src) AS src FROM ided WHERE $grouped GROUP BY line_id HAVING count(*) > 1
)
SELECT i.*,
    -- only the batch's own streams can hold its line ids (the id hashes the stream): sources that share a
    -- time range (one file per node, per hour) must not read each other's lines
    NOT EXISTS (SELECT 1 FROM log_lines l WHERE l.ts BETWEEN $lo AND $hi AND l.stream_key IN (SELECT redacted FROM keys)
                AND l.line_id = i.line_id)
    AND (f.src IS NULL OR f.src = i.src) AS new
FROM ided i LEFT JOIN firsts f USING (line_id);

INSERT INTO log_lines
SELECT k.line_id, s.source_uri, k.line_no, k.ts, k.ts_origin, k.stream_key, k.env, k.service, k.database, k.message,
       k.partial, k.record, k.attrs, $load_id, k.whole
FROM keyed k JOIN batch_sources s USING (src)
WHERE k.new;

INSERT INTO pending_streams SELECT DISTINCT stream_key FROM keyed
WHERE new AND stream_key NOT IN (SELECT stream_key FROM pending_streams);

INSERT INTO load_counts
SELECT src, sum(rejected), sum(inserted) FROM (
    SELECT src, count(*) AS rejected, 0 AS inserted FROM batch_rejects GROUP BY src
    UNION ALL
    SELECT src, 0, count(*) FILTER (WHERE new) FROM keyed GROUP BY src
) GROUP BY src;

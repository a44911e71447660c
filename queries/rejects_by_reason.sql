-- name: rejects_by_reason
-- answers: Records refused at ingest, by reason and source: how many, which record numbers, a redacted sample, and the source's envelope.
-- param: reason = *            (reject reason glob, e.g. malformed_json)
--
-- `raw` is stored redacted and cut to 4 KiB; the sample here is its first 160 characters. The reasons are
-- the stable codes of README § Rejects.
SELECT j.reason, j.source_uri,
       count(*) AS rejected,
       min(j.line_no) AS first_line_no,
       max(j.line_no) AS last_line_no,
       arg_min(left(replace(j.raw, chr(10), ' '), 160), j.line_no) AS sample,
       s.format,
       s.lines AS source_records,
       s.damage,
       s.ingested_at
FROM rejects j
LEFT JOIN (SELECT source_uri, arg_max(format, ingested_at) AS format, arg_max(lines, ingested_at) AS lines,
                  arg_max(damage, ingested_at) AS damage, max(ingested_at) AS ingested_at
           FROM ingested_sources GROUP BY source_uri) s USING (source_uri)
WHERE j.reason GLOB $reason
GROUP BY j.reason, j.source_uri, s.format, s.lines, s.damage, s.ingested_at
ORDER BY rejected DESC, j.reason, j.source_uri

-- name: open_findings
-- answers: Open findings as of the last analysis, worst first: what needs a human, since when, the evidence and the runbook step.
-- param: env = *                   (environment glob)
-- param: min_severity = warning    (info, warning or critical: the least severe to list)
-- param: kind = *                  (finding kind glob, e.g. dirty_open or duration_*)
--
-- `findings` is rebuilt by `analyze` for its clock (the `as_of` column); `age_hours` is measured to it.
-- `observed` / `expected` are in `unit` (ms, minutes, rate, count).
SELECT f.severity, f.kind, f.env, f.service, f.database, f.version,
       f.ts AS since,
       round(date_diff('second', f.ts, f.as_of) / 3600.0, 1) AS age_hours,
       round(f.observed, 1) AS observed, round(f.expected, 1) AS expected, f.unit,
       round(f.score, 1) AS score,
       f.explanation, f.runbook, f.run_id, f.finding_id
FROM findings f
WHERE f.status = 'open'
  AND f.env GLOB $env
  AND f.kind GLOB $kind
  AND severity_rank(f.severity) <= severity_rank($min_severity)
ORDER BY severity_rank(f.severity), f.ts

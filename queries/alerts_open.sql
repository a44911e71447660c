-- name: alerts_open
-- answers: Alerts firing or silenced now and notifications not yet delivered: rule, route, labels, sends, and the last delivery error.
-- param: status = *            (alert status glob: firing, resolved, silenced)
-- param: as_of = now           (the clock: --as-of, else now, UTC, for silences in force; ISO date or timestamp)
--
-- One row per alert identity (rule + labels). Resolved alerts are listed only while a notification is
-- pending. `silenced_by` names silences from `migrate-lens silence` in force at the clock whose matchers (label
-- -> glob, all must match) cover the alert; silences from the rules file are not stored and not shown here.
WITH clock AS (
    SELECT CAST($as_of AS TIMESTAMP) AS as_of
)
SELECT a.severity, a.status, a.rule, a.route,
       json_extract_string(a.labels, '$.kind') AS kind,
       json_extract_string(a.labels, '$.env') AS env,
       json_extract_string(a.labels, '$.service') AS service,
       nullif(json_extract_string(a.labels, '$.database'), '') AS database,
       nullif(json_extract_string(a.labels, '$.version'), '') AS version,
       a.first_fired_at, a.last_sent_at, a.sends,
       a.pending AS undelivered,
       a.last_error,
       (SELECT string_agg(s.silence_id || ' until ' || strftime(s.ends_at, '%Y-%m-%d %H:%M'), '; ')
        FROM silences s
        WHERE s.starts_at <= clock.as_of AND s.ends_at > clock.as_of
          AND NOT EXISTS (
              SELECT 1 FROM (SELECT unnest(json_keys(s.matchers)) AS label) m
              WHERE NOT coalesce(
                  CASE WHEN m.label = 'rule' THEN a.rule
                       ELSE coalesce(json_extract_string(a.labels, '$."' || m.label || '"'), '') END
                  GLOB json_extract_string(s.matchers, '$."' || m.label || '"'), false))) AS silenced_by,
       a.summary, a.alert_id
FROM alerts a
CROSS JOIN clock
WHERE (a.status IN ('firing', 'silenced') OR a.pending IS NOT NULL)
  AND a.status GLOB $status
ORDER BY severity_rank(a.severity), a.first_fired_at, a.rule

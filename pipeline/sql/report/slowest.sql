-- The week's slowest scripts [$start, $end): per script scope, the slowest own time, how many databases
-- ran it, and its baseline median.
SELECT e.env, e.service, e.version, e.direction, any_value(e.name) AS name,
       max(e.own_ms) AS own_ms, median(e.own_ms) AS week_median_ms, count(*) AS runs,
       count(DISTINCT e.database) AS databases, arg_max(e.database, e.own_ms) AS database, max(e.ts) AS ts,
       any_value(b.median_ms) AS median_ms
FROM migrate_events e
LEFT JOIN script_baselines b USING (env, service, version, direction)
WHERE e.kind = 'applied' AND e.own_ms IS NOT NULL AND e.ts >= $start AND e.ts < $end
GROUP BY e.env, e.service, e.version, e.direction
ORDER BY own_ms DESC, e.env, e.service, e.version
LIMIT $limit

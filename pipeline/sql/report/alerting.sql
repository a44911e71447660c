-- The review's alerting section: per rule over [$start, $end) (the four weeks ending with the reviewed one),
-- how often it fired, resolved, repeated, was silenced and escalated, and the median time to resolve (minutes).
-- Noisiest first: fired + repeats.
SELECT
    rule,
    count(*) FILTER (WHERE event = 'fired') AS fired,
    count(*) FILTER (WHERE event = 'resolved') AS resolved,
    count(*) FILTER (WHERE event = 'repeat') AS repeats,
    count(*) FILTER (WHERE event = 'silenced') AS silenced,
    count(*) FILTER (WHERE event = 'escalated') AS escalated,
    median(date_diff('second', fired_at, happened_at) / 60.0) FILTER (WHERE event = 'resolved') AS median_resolve_minutes
FROM alert_history
WHERE happened_at >= $start AND happened_at < $end
GROUP BY rule
ORDER BY count(*) FILTER (WHERE event IN ('fired', 'repeat')) DESC, rule;

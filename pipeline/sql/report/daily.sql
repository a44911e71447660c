-- Runs and failures per day of one week [$start, $end).
SELECT CAST(d.day AS DATE) AS day,
       count(r.run_id) AS runs,
       count(r.run_id) FILTER (WHERE is_failure(r.outcome)) AS failures
FROM range($start, $end, INTERVAL 1 DAY) d(day)
LEFT JOIN runs r ON r.started_at >= d.day AND r.started_at < d.day + INTERVAL 1 DAY
GROUP BY d.day ORDER BY d.day

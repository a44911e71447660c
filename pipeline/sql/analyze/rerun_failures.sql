-- Failed runs up to $as_of whose error says an object already exists (or is already gone), with the last run
-- on the same database in the $lookback before them that left the version half-applied or showed it dirty
-- (`cause`, `cause_at`; NULL: none): the candidates of non_idempotent.
WITH failed AS (
    SELECT run_id, env, service, database, started_at, error_class, error_text,
           -- a default-mode failure's version: the dirty line migrate printed next, once it is printed by the clock
           CASE WHEN next_dirty_at <= $as_of THEN next_dirty_version ELSE dirty_version END AS dirty_version,
           to_version
    FROM runs
    WHERE started_at <= $as_of AND outcome = 'failed' AND error_class IN ('already_exists', 'does_not_exist')
), causes AS (
    SELECT f.run_id, arg_max(r.outcome, (r.started_at, r.run_id)) AS cause, max(r.started_at) AS cause_at
    FROM failed f JOIN runs r
      ON r.env = f.env AND r.service = f.service AND r.database = f.database
     AND r.started_at >= f.started_at - $lookback AND r.started_at < f.started_at
    WHERE r.outcome IN ('failed', 'interrupted', 'dirty')
    GROUP BY f.run_id
)
SELECT f.*, c.cause, c.cause_at
FROM failed f LEFT JOIN causes c USING (run_id);

-- Runs up to $as_of that failed, timed out on the lock or were interrupted, with the start of the first clean
-- run on their database after them (`clean_at`, NULL: none yet), which resolves them.
WITH troubled AS (
    SELECT run_id, env, service, database, started_at, outcome, error_class, error_text, left_dirty,
           -- a default-mode failure's version: the dirty line migrate printed next, once it is printed by the clock
           CASE WHEN next_dirty_at <= $as_of THEN next_dirty_version ELSE dirty_version END AS dirty_version,
           to_version
    FROM runs
    WHERE started_at <= $as_of AND outcome IN ('failed', 'locked', 'interrupted')
), clean AS (
    SELECT env, service, database, started_at
    FROM runs
    WHERE started_at <= $as_of AND is_clean_run(left_dirty, outcome, dirty_version)
)
SELECT t.*, c.started_at AS clean_at
FROM troubled t ASOF LEFT JOIN clean c
  ON c.env = t.env AND c.service = t.service AND c.database = t.database AND c.started_at > t.started_at;

-- The dirty episodes up to $as_of (the warehouse's dirty_episodes macro, the one home of the dirty rule), with
-- what dirty_open and forced_recovery report.
SELECT env, service, database, dirty_since, cause_run_id, cause_outcome, dirty_version, recovered_at,
       recovered_run_id, coalesce(force_recorded, false) AS force_recorded
FROM dirty_episodes($as_of);

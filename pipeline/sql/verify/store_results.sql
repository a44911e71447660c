-- verify --store SERVICE: replace SERVICE's rows in verify_results with this run's, one per (version, check);
-- `verify_rows` is the run's checks, registered by pipeline.verify.store().
DELETE FROM verify_results WHERE service = $service;
INSERT INTO verify_results (service, version, "check", status, detail, folder, git_commit, verified_at)
SELECT $service, version, "check", status, nullif(redact(detail), ''), $folder, $git_commit, $verified_at
FROM verify_rows
ORDER BY version, ordinal;

-- Data quality of the whole warehouse: sources, lines, rejects and metadata that said nothing.
SELECT
    (SELECT count(*) FROM ingested_sources) AS sources,
    (SELECT coalesce(sum(lines), 0) FROM ingested_sources) AS lines,
    (SELECT count(*) FROM rejects) AS rejected,
    (SELECT coalesce(sum(duplicates), 0) FROM ingested_sources) AS duplicates,
    (SELECT count(*) FROM ingested_sources WHERE damage IS NOT NULL) AS damaged,
    (SELECT count(*) FROM runs WHERE 'unknown' IN (env, service, database)) AS unknown_metadata_runs

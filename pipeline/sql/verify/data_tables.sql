-- Runs on PostgreSQL (verify's scratch databases), not DuckDB. The tables whose rows data_restored compares:
-- every table holding rows of its own (a partitioned parent holds none; its partitions are listed), except
-- golang-migrate's schema_migrations and the tables of extensions.
SELECT n.nspname, c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
  AND n.nspname NOT LIKE 'pg\_temp\_%' AND n.nspname NOT LIKE 'pg\_toast\_temp\_%'
  AND c.oid IS DISTINCT FROM to_regclass('schema_migrations')
  AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.deptype = 'e' AND e.classid = 'pg_class'::regclass AND e.objid = c.oid)
ORDER BY 1, 2

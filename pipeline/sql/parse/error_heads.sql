-- What an error block says, over the relation in braces below (sid, lseq, t0: the block's text without its
-- `error: `): its
-- kind, the version it names, its class and the parts of a failed migration's message. Few lines per
-- rebuild are error heads; the rest of the grammar is in line_shapes.sql.
WITH unglued AS (
    -- migrate's non-fatal logErr prints without a newline, so the fatal error lands on the same line:
    -- `error: Xerror: X` (or `…error: file does not exist` before v4.13). Keep one copy.
    SELECT sid, lseq,
        CASE
            WHEN t0 IS NULL THEN NULL
            WHEN (length(t0) - 7) % 2 = 0 AND length(t0) > 7
                 AND t0 = left(t0, (length(t0) - 7) // 2) || 'error: ' || left(t0, (length(t0) - 7) // 2)
                THEN left(t0, (length(t0) - 7) // 2)
            WHEN regexp_matches(t0, '^no migration found for version -?\d+.*error: file does not exist$')
                THEN regexp_extract(t0, '^(.*)error: file does not exist$', 1)
            ELSE t0
        END AS t
    FROM {heads}
), kinded AS (
    SELECT *,
        CASE
            WHEN regexp_matches(t, 'Dirty database version -?\d+\. Fix and force version\.') THEN 'dirty'
            WHEN regexp_matches(t, '^(Not applying all down migrations|Aborted dropping the entire database schema)')
                THEN 'prompt_refused'
            WHEN regexp_matches(t, 'migration failed') THEN 'migration_failed'
            WHEN regexp_matches(t, 'can''t acquire (database )?lock|database locked|try lock failed') THEN 'lock_timeout'
            WHEN regexp_matches(t, '^limit \d+ short') THEN 'limit_short'
            WHEN regexp_matches(t, '^(no migration found for version|file does not exist|first \S*: file does not exist|open \S+: no such file or directory|duplicate migration file|failed to open source)')
                THEN 'missing_file'
            WHEN regexp_matches(t, 'dial tcp|connection refused|no such host|i/o timeout|password authentication failed|pq: database "[^"]*" does not exist|SSL is not enabled|failed to open database|^parse "|connection reset by peer|too many connections|the database system is (starting up|shutting down)|server closed the connection')
                THEN 'connection_failed'
            ELSE 'error'
        END AS kind
    FROM unglued
), fields AS (
    SELECT *,
        CASE WHEN kind = 'migration_failed' THEN
            regexp_extract(t, '(?s)migration failed(?:: (.*?))?(?: \(column (\d+)\))? in line (\d+): (.*?)\n? \(details: (.*)\)\s*$',
                           ['message', 'col', 'line', 'sql', 'details'])
        ELSE {'message': '', 'col': '', 'line': '', 'sql': '', 'details': ''} END AS mf
    FROM kinded
)
SELECT sid, lseq, kind,
    CASE
        WHEN kind = 'dirty' THEN try_cast(regexp_extract(t, 'Dirty database version (-?\d+)', 1) AS BIGINT)
        WHEN kind = 'missing_file' AND regexp_matches(t, 'version -?\d+')
            THEN try_cast(regexp_extract(t, 'version (-?\d+)', 1) AS BIGINT)
    END AS version,
    CASE kind
        WHEN 'migration_failed' THEN CASE
            WHEN regexp_matches(t, 'already exists') THEN 'already_exists'
            WHEN regexp_matches(coalesce(nullif(mf.message, ''), t), 'does not exist') THEN 'does_not_exist'
            WHEN regexp_matches(t, 'syntax error') THEN 'syntax_error'
            WHEN regexp_matches(t, 'lock timeout|deadlock detected|could not obtain lock') THEN 'lock_conflict'
            WHEN regexp_matches(t, 'statement timeout|canceling statement') THEN 'statement_timeout'
            WHEN regexp_matches(t, 'cannot run inside a transaction block') THEN 'transaction_block'
            WHEN regexp_matches(t, 'depend on it|violates foreign key constraint') THEN 'dependency'
            WHEN regexp_matches(t, 'violates (unique|not-null|check) constraint|could not create unique index')
                THEN 'data_violation'
            ELSE 'sql_error' END
        WHEN 'missing_file' THEN CASE
            WHEN regexp_matches(t, 'duplicate migration file') THEN 'duplicate_file'
            WHEN regexp_matches(t, 'no such file or directory') THEN 'missing_path'
            ELSE 'missing_file' END
        WHEN 'connection_failed' THEN CASE
            WHEN regexp_matches(t, 'password authentication failed') THEN 'auth_failed'
            WHEN regexp_matches(t, 'no such host') THEN 'dns'
            WHEN regexp_matches(t, 'connection refused') THEN 'connection_refused'
            WHEN regexp_matches(t, 'pq: database "[^"]*" does not exist') THEN 'database_missing'
            WHEN regexp_matches(t, 'SSL') THEN 'tls'
            WHEN regexp_matches(t, '^parse "|invalid port') THEN 'bad_dsn'
            ELSE 'connection' END
        WHEN 'error' THEN CASE
            WHEN t = 'no migration' THEN 'no_migration'
            WHEN regexp_matches(t, 'please specify|can''t read (version|limit) argument|must be >= -1|too many arguments|cannot be used with other arguments')
                THEN 'bad_arguments'
            WHEN regexp_matches(t, 'URL cannot be empty|unknown driver|invalid URL scheme|no scheme|failed to parse scheme')
                THEN 'bad_config'
            ELSE 'other' END
        WHEN 'dirty' THEN 'dirty'
        WHEN 'lock_timeout' THEN 'lock_timeout'
        WHEN 'limit_short' THEN 'limit_short'
        WHEN 'prompt_refused' THEN 'prompt_refused'
    END AS error_class,
    t AS error_text,
    CASE WHEN kind = 'migration_failed' THEN nullif(mf.message, '') END AS error_message,
    CASE WHEN kind = 'migration_failed' THEN try_cast(nullif(mf.line, '') AS INTEGER) END AS sql_line,
    CASE WHEN kind = 'migration_failed' THEN try_cast(nullif(mf.col, '') AS INTEGER) END AS sql_column,
    CASE WHEN kind = 'migration_failed' THEN nullif(mf.details, '') END AS error_detail
FROM fields

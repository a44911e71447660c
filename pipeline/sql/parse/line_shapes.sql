-- golang-migrate's line shapes, one logical line at a time, over the relation in braces below (any with a `text`
-- column: the line as shipped, verbose prefix and all). What does not depend on the lines around it is
-- decided here, in SQL; what does (pieces, error blocks, runs) in pipeline/parse/sequence.py.
-- An `error` line's version, direction, name and duration are its error block's (sql/parse/error_heads.sql).
WITH stripped AS (
    SELECT *,
        -- the prefix is 20 characters: `2006/01/02 15:04:05 `
        CASE WHEN verbose_mode THEN substr(text, 21) ELSE text END AS msg
    FROM (SELECT *, regexp_matches(text, '^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d ') AS verbose_mode FROM {lines})
), classified AS (
    SELECT *,
        -- Each pattern runs only on the lines that start (or contain) its literal part.
        CASE
            WHEN starts_with(msg, 'error: ') THEN 'error'
            WHEN contains(msg, 'Dirty database version ')
                 AND regexp_matches(msg, 'Dirty database version -?\d+\. Fix and force version\.') THEN 'error'
            WHEN msg IN ('Not applying all down migrations', 'Aborted dropping the entire database schema') THEN 'error'
            WHEN starts_with(msg, 'Finished after ') AND regexp_full_match(msg, 'Finished after \S+') THEN 'finished_total'
            WHEN starts_with(msg, 'Finished ') AND regexp_full_match(msg, 'Finished -?\d+/[ud] .* \(read \S+, ran \S+\)')
                THEN 'applied'
            WHEN regexp_full_match(msg, '\d+/[ud] .* \(\S+\)') THEN 'applied'
            WHEN (starts_with(msg, 'Start buffering ') OR starts_with(msg, 'Scheduled '))
                 AND regexp_full_match(msg, '(Start buffering|Scheduled) \d+/[ud] .*') THEN 'buffering'
            WHEN starts_with(msg, 'Read and execute ') AND regexp_full_match(msg, 'Read and execute \d+/[ud] .*')
                THEN 'executing'
            WHEN msg = 'no change' THEN 'no_change'
            WHEN regexp_full_match(msg, '-?\d+( \(dirty\))?') THEN 'version'
            WHEN msg = 'Closing source and database' THEN 'closing'
            WHEN starts_with(msg, 'Stopping after this running migration') THEN 'stopping'
            WHEN msg IN ('Applying all down migrations', 'Dropping the entire database schema')
                 OR starts_with(msg, 'Are you sure you want to ') AND regexp_full_match(msg, 'Are you sure you want to .*\? \[y/N\]')
                THEN 'prompt'
            WHEN regexp_full_match(msg, 'v?\d+\.\d+\.\d+(-\S+)?') THEN 'cli_version'
            WHEN starts_with(msg, 'Usage: migrate ') THEN 'usage'
            WHEN regexp_full_match(msg, '\S*\d+_\S+\.(up|down)\.[A-Za-z0-9]+') THEN 'created'
        END AS line_kind
    FROM stripped
), fields AS (
    SELECT *,
        -- Each shape's fields are extracted only for the lines of that shape (CASE evaluates lazily).
        CASE WHEN line_kind = 'applied' AND starts_with(msg, 'Finished ') THEN
            regexp_extract(msg, '^Finished (-?\d+)/([ud]) (.*) \(read (\S+), ran (\S+)\)$', ['v', 'd', 'name', 'read', 'ran'])
        ELSE {'v': '', 'd': '', 'name': '', 'read': '', 'ran': ''} END AS fin,
        -- `V/D NAME (DURATION)`, the commonest line: cut with string functions, as the line matched already
        -- `\d+/[ud] .* \(\S+\)` (the name runs to the last ` (`, as a greedy `.*` would)
        CASE WHEN line_kind = 'applied' AND NOT starts_with(msg, 'Finished ') THEN {
            'v': split_part(msg, '/', 1),
            'd': substr(msg, strpos(msg, '/') + 1, 1),
            'name': substr(msg, strpos(msg, '/') + 3,
                           length(msg) - strpos(msg, '/') - 4 - length(split_part(msg, ' (', -1))),
            'dur': left(split_part(msg, ' (', -1), -1)}
        ELSE {'v': '', 'd': '', 'name': '', 'dur': ''} END AS app,
        CASE WHEN line_kind IN ('buffering', 'executing') THEN
            regexp_extract(msg, '^(?:Start buffering|Scheduled|Read and execute) (\d+)/([ud]) (.*)$', ['v', 'd', 'name'])
        ELSE {'v': '', 'd': '', 'name': ''} END AS que
    FROM classified
), timed AS (
    -- each printed duration parsed once
    SELECT *,
        CASE WHEN fin.v <> '' THEN go_duration_ms(fin.read) END AS read_ms,
        CASE WHEN fin.v <> '' THEN go_duration_ms(fin.ran) END AS ran_ms,
        CASE
            WHEN app.v <> '' THEN go_duration_ms(app.dur)
            WHEN line_kind = 'finished_total' THEN go_duration_ms(regexp_extract(msg, '^Finished after (\S+)$', 1))
        END AS printed_ms
    FROM fields
)
SELECT * EXCLUDE (fin, app, que, read_ms, ran_ms, printed_ms, text),
    CASE
        WHEN fin.v <> '' THEN try_cast(fin.v AS BIGINT)
        WHEN app.v <> '' THEN try_cast(app.v AS BIGINT)
        WHEN que.v <> '' THEN try_cast(que.v AS BIGINT)
        WHEN line_kind = 'version' THEN try_cast(regexp_extract(msg, '^(-?\d+)', 1) AS BIGINT)
    END AS version,
    CASE coalesce(nullif(fin.d, ''), nullif(app.d, ''), nullif(que.d, '')) WHEN 'u' THEN 'up' WHEN 'd' THEN 'down' END
        AS direction,
    CASE
        WHEN fin.v <> '' THEN fin.name
        WHEN app.v <> '' THEN app.name
        WHEN que.v <> '' THEN que.name
        WHEN line_kind = 'version' AND ends_with(msg, '(dirty)') THEN '(dirty)'
        WHEN line_kind IN ('created', 'prompt', 'usage', 'cli_version', 'stopping') THEN msg
    END AS name,
    CASE WHEN fin.v <> '' THEN read_ms + ran_ms ELSE printed_ms END AS duration_ms,
    read_ms,
    ran_ms,
    -- the verbose prefix the shape cut off: a piece of a long line is joined with it (sequence.py)
    CASE WHEN verbose_mode THEN left(text, 20) END AS prefix
FROM timed

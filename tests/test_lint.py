"""`lint`: the real migration folders as migrate ran them, and folders written inline for every rule."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pipeline.core.errors import SourceError, UsageError
from pipeline.lint import LintIssue, LintResult, exit_code, lint, store, to_json, to_text
from pipeline.warehouse import connect

from .conftest import CAPTURES, REAL

MIGRATIONS = REAL / "migrations"
MISSING_DOWN_5 = ("missing-down", "000005_create_audit_log.up.sql", 1)


def found(result: LintResult, *rules: str) -> set[tuple[str, str, int]]:
    """(rule, path, line) of the issues, of `rules` only when given."""
    return {(i.rule, i.path, i.line) for i in result.issues if not rules or i.rule in rules}


def write(tmp_path: Path, files: dict[str, str]) -> Path:
    folder = tmp_path / "migrations"
    folder.mkdir(exist_ok=True)
    for name, text in files.items():
        (folder / name).write_bytes(text.encode("utf-8"))
    return folder


def as_ran(tmp_path: Path, scenario: str) -> Path:
    """The folder migrate ran: app/ plus the scenario's files, `@UP4@`-style pg_sleep placeholders as numbers."""
    folder = tmp_path / scenario
    folder.mkdir()
    for src in [*(MIGRATIONS / "app").iterdir(), *(MIGRATIONS / scenario).iterdir()]:
        (folder / src.name).write_text(re.sub(r"@(?:UP|DOWN)[48]@", "1", src.read_text(encoding="utf-8")),
                                       encoding="utf-8")
    return folder


def up_only(tmp_path: Path, sql: str, *, rules: tuple[str, ...] = ()) -> set[tuple[str, int]]:
    """(rule, line) of the issues in `1_x.up.sql` holding `sql`, next to a harmless down; of `rules` only when
    given, and never no-lock-timeout unless asked (it fires on most one-statement files)."""
    result = lint(write(tmp_path, {"1_x.up.sql": sql, "1_x.down.sql": "SELECT 1;\n"}))
    return {(i.rule, i.line) for i in result.issues if i.path == "1_x.up.sql"
            and (i.rule in rules if rules else i.rule != "no-lock-timeout")}


# ---------------------------------------------------------------------------------------------- real folders

# What app/ holds besides its missing down: CHECK without NOT VALID, and files taking locks without a timeout.
APP = {
    MISSING_DOWN_5,
    ("constraint-not-valid-missing", "000007_add_orders_status_check.up.sql", 1),
    *(("no-lock-timeout", f, 1) for f in (
        "000001_create_users_table.down.sql", "000002_create_orders_table.down.sql",
        "000003_add_users_last_login_at.down.sql", "000003_add_users_last_login_at.up.sql",
        "000007_add_orders_status_check.down.sql", "000007_add_orders_status_check.up.sql",
        "000008_create_sessions_table.down.sql")),
}


def test_app_as_stored_has_a_missing_down_and_the_pg_sleep_placeholders_do_not_parse():
    result = lint(MIGRATIONS / "app")
    assert (result.files, result.versions) == (15, 8)
    assert found(result) == APP | {
        ("unparsable", "000004_backfill_order_status.up.sql", 13),  # SELECT pg_sleep(@UP4@);
        ("unparsable", "000004_backfill_order_status.down.sql", 4),
        ("unparsable", "000008_create_sessions_table.up.sql", 6),
        ("unparsable", "000008_create_sessions_table.down.sql", 2),
    }
    missing = next(i for i in result.issues if i.rule == "missing-down")
    assert (missing.version, missing.direction, missing.severity) == (5, "up", "warning")
    assert missing.message.endswith("add 000005_create_audit_log.down.sql")


def test_app_as_ran_has_no_error(tmp_path):
    result = lint(as_ran(tmp_path, "app"))
    assert found(result) == APP
    assert result.worst() == "warning"


SCENARIOS = {
    "broken-syntax": {("unparsable", "000009_create_invoices_table.up.sql", 4),
                      ("no-lock-timeout", "000009_create_invoices_table.down.sql", 1)},
    "collision": {("not-idempotent", "000009_create_users_archive.up.sql", 1),
                  ("not-idempotent", "000009_create_users_archive.down.sql", 1),
                  ("no-lock-timeout", "000009_create_users_archive.down.sql", 1),
                  # the up creates `users` (the collision), the down drops users_archive
                  ("down-not-inverse", "000009_create_users_archive.down.sql", 1)},
    "concurrently-in-tx": {("concurrently-in-transaction", "000009_add_lookup_indexes.up.sql", 1),
                           ("concurrently-in-transaction", "000009_add_lookup_indexes.up.sql", 2),
                           ("concurrently-in-transaction", "000009_add_lookup_indexes.down.sql", 1),
                           ("concurrently-in-transaction", "000009_add_lookup_indexes.down.sql", 2),
                           ("not-idempotent", "000009_add_lookup_indexes.up.sql", 1),
                           ("not-idempotent", "000009_add_lookup_indexes.up.sql", 2)},
    # DROP TABLE accounts; DROP TABLE users; the FK dependency that failed 0056 is beyond a static lint
    "down-fails": {("not-idempotent", "000009_rename_users_to_accounts.down.sql", 1),
                   ("not-idempotent", "000009_rename_users_to_accounts.down.sql", 2),
                   ("no-lock-timeout", "000009_rename_users_to_accounts.down.sql", 1)},
    "duplicate": {("duplicate-version", "000003_add_users_phone.up.sql", 1),
                  ("duplicate-version", "000003_add_users_phone.down.sql", 1),
                  ("not-idempotent", "000003_add_users_phone.up.sql", 1),
                  ("not-idempotent", "000003_add_users_phone.down.sql", 1),
                  ("no-lock-timeout", "000003_add_users_phone.up.sql", 1),
                  ("no-lock-timeout", "000003_add_users_phone.down.sql", 1)},
    # idempotent DDL, a backfill with ON CONFLICT and pg_sleep: slow is not a lint matter, locks are
    "slow": {("no-lock-timeout", "000009_backfill_user_stats.down.sql", 1),
             ("no-lock-timeout", "000010_rebuild_order_totals.down.sql", 1),
             ("no-lock-timeout", "000010_rebuild_order_totals.up.sql", 2)},
    "timeout": set(),
}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_scenario_as_ran_with_app(tmp_path, scenario):
    assert found(lint(as_ran(tmp_path, scenario))) == SCENARIOS[scenario] | APP


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_scenario_folder_alone(scenario):
    # Alone, duplicate/ holds one migration of version 3: the collision is with app/'s version 3.
    expected = {x for x in SCENARIOS[scenario] if x[0] != "duplicate-version"}
    assert found(lint(MIGRATIONS / scenario)) == expected


@pytest.mark.parametrize("capture, scenario, rule, path, line", [
    ("0033_up_syntax_error.txt", "broken-syntax", "unparsable", "000009_create_invoices_table.up.sql", 4),
    ("0043_up_collision.txt", "collision", "not-idempotent", "000009_create_users_archive.up.sql", 1),
    ("0050_verbose_up_concurrently_fails.txt", "concurrently-in-tx", "concurrently-in-transaction",
     "000009_add_lookup_indexes.up.sql", 1),
    ("0056_down_1_fails.txt", "down-fails", "not-idempotent", "000009_rename_users_to_accounts.down.sql", 2),
])
def test_lint_points_at_the_statement_migrate_failed_on(capture, scenario, rule, path, line):
    text = (CAPTURES / capture).read_text(encoding="utf-8")
    statement = (MIGRATIONS / scenario / path).read_text(encoding="utf-8").splitlines()[line - 1]
    assert statement in text
    assert (rule, path, line) in found(lint(MIGRATIONS / scenario))


def test_duplicate_names_the_file_migrate_rejected(tmp_path):
    rejected = (CAPTURES / "0064_duplicate_version.txt").read_text(encoding="utf-8").strip()
    issue = next(i for i in lint(as_ran(tmp_path, "duplicate")).issues
                 if i.rule == "duplicate-version" and i.direction == "down")
    assert rejected == "error: duplicate migration file: 000003_add_users_phone.down.sql"
    assert "duplicate migration file: 000003_add_users_phone.down.sql" in issue.message
    assert "000003_add_users_last_login_at.down.sql" in issue.message
    assert (issue.severity, issue.version) == ("error", 3)


def test_concurrently_message_says_what_postgres_said():
    issue = next(i for i in lint(MIGRATIONS / "concurrently-in-tx").issues
                 if i.rule == "concurrently-in-transaction" and i.direction == "up")
    said = "CREATE INDEX CONCURRENTLY cannot run inside a transaction block"
    assert said in (CAPTURES / "0050_verbose_up_concurrently_fails.txt").read_text(encoding="utf-8")
    assert issue.message.startswith(said)
    assert "2 statements as one query" in issue.message


def test_unparsable_names_the_line_and_column_postgres_named():
    issue = next(i for i in lint(MIGRATIONS / "broken-syntax").issues if i.rule == "unparsable")
    said = 'syntax error at or near "total_cents" (column 5) in line 4'
    assert said in (CAPTURES / "0033_up_syntax_error.txt").read_text(encoding="utf-8")
    assert (issue.line, issue.column, issue.severity) == (4, 5, "error")
    assert issue.message.startswith('PostgreSQL rejects this: syntax error at or near "total_cents" at line 4, '
                                    "column 5 (the statement starts on line 1)")


# ------------------------------------------------------------------------------------------ rules, inline

NI = {("not-idempotent", 1)}


@pytest.mark.parametrize("sql, expected", [
    ("CREATE TABLE t (a int);", NI),
    ("CREATE TABLE IF NOT EXISTS t (a int);", set()),
    ("CREATE TABLE IF NOT EXISTS accounts (LIKE users INCLUDING ALL);", set()),
    ("CREATE INDEX i ON t (a);", NI),
    ("CREATE UNIQUE INDEX IF NOT EXISTS i ON t (a);", set()),
    ("CREATE INDEX ON t (a);", NI),
    ("CREATE TYPE mood AS ENUM ('sad', 'ok');", NI),
    ("DO $$ BEGIN CREATE TYPE mood AS ENUM ('sad'); EXCEPTION WHEN duplicate_object THEN NULL; END $$;", set()),
    ("CREATE SEQUENCE s;", NI),
    ("CREATE SEQUENCE IF NOT EXISTS s;", set()),
    ("CREATE VIEW v AS SELECT 1;", NI),
    ("CREATE OR REPLACE VIEW v AS SELECT 1;", set()),
    ("CREATE MATERIALIZED VIEW mv AS SELECT 1;", NI),
    ("CREATE MATERIALIZED VIEW IF NOT EXISTS mv AS SELECT 1;", set()),
    ("CREATE FUNCTION one() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;", NI),
    ("CREATE OR REPLACE FUNCTION one() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;", set()),
    ("CREATE SCHEMA billing;", NI),
    ("CREATE EXTENSION pgcrypto;", NI),  # sqlglot keeps it as a Command: the patterns read it
    ('CREATE EXTENSION IF NOT EXISTS "uuid-ossp";', set()),
    ("DROP INDEX i;", NI),
    ("DROP INDEX IF EXISTS i;", set()),
    ("DROP TYPE mood;", NI),
    ("DROP VIEW IF EXISTS v;", set()),
    ("DROP POLICY p ON t;", NI),
    ("ALTER TABLE t ADD COLUMN a int;", NI),
    ("ALTER TABLE t ADD a int;", NI),
    ("ALTER TABLE t ADD COLUMN IF NOT EXISTS a int;", set()),
    ("ALTER TABLE t DROP CONSTRAINT c;", NI),
    ("ALTER TABLE t DROP CONSTRAINT IF EXISTS c;", set()),
    ("ALTER TABLE t ALTER COLUMN a SET NOT NULL;", set()),
    ("ALTER TYPE mood ADD VALUE 'meh';", NI),
    ("ALTER TYPE mood ADD VALUE IF NOT EXISTS 'meh';", set()),
    ("CREATE TRIGGER tr BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION f();", NI),
    ("CREATE OR REPLACE TRIGGER tr BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION f();", set()),
    ("CREATE TEMP TABLE scratch (a int);", set()),  # gone when migrate's session ends
    ("INSERT INTO t (a) VALUES (1) ON CONFLICT DO NOTHING;", set()),
    ("UPDATE t SET a = 1;", set()),
])
def test_not_idempotent(tmp_path, sql, expected):
    assert up_only(tmp_path, sql, rules=("not-idempotent",)) == expected


def test_not_idempotent_checks_each_action_of_an_alter_table(tmp_path):
    sql = ("ALTER TABLE t ADD COLUMN a int DEFAULT greatest(1, 2), ADD COLUMN IF NOT EXISTS b int,\n"
           "  ADD CONSTRAINT c UNIQUE (a, b), DROP COLUMN IF EXISTS d, DROP COLUMN e;\n")
    result = lint(write(tmp_path, {"1_x.up.sql": sql, "1_x.down.sql": "SELECT 1;"}))
    messages = sorted(i.message for i in result.issues if i.rule == "not-idempotent")
    assert messages == ["ADD COLUMN a fails if the column exists; write ADD COLUMN IF NOT EXISTS",
                        "DROP COLUMN e fails if it is already gone; write DROP COLUMN IF EXISTS"]


def test_create_type_message_offers_the_guard_postgres_allows(tmp_path):
    result = lint(write(tmp_path, {"1_x.up.sql": "CREATE TYPE mood AS ENUM ('a');",
                                   "1_x.down.sql": "DROP TYPE IF EXISTS mood;"}))
    assert [i.message for i in result.issues] == [(
        "CREATE TYPE mood fails if the type exists, and PostgreSQL has no CREATE TYPE IF NOT EXISTS: "
        "guard it with a DO block that checks pg_type")]


DU = {("destructive-in-up", 1)}


@pytest.mark.parametrize("sql, expected", [
    ("DROP TABLE IF EXISTS t;", DU),
    ("DROP SCHEMA IF EXISTS billing CASCADE;", DU),
    ("ALTER TABLE t DROP COLUMN IF EXISTS a;", DU),
    ("TRUNCATE t;", DU),
    ("TRUNCATE TABLE t, u;", DU),
    ("DELETE FROM t;", DU),
    ("DELETE FROM t WHERE a = 1;", set()),
    ("DELETE FROM t USING u WHERE t.id = u.id;", set()),
    ("WITH gone AS (DELETE FROM t RETURNING *) SELECT count(*) FROM gone;", DU),
    ("DROP INDEX IF EXISTS i;", set()),
    ("DROP VIEW IF EXISTS v;", set()),
    ("ALTER TABLE t DROP CONSTRAINT IF EXISTS c;", set()),
    ("UPDATE t SET a = NULL;", set()),
])
def test_destructive_in_up(tmp_path, sql, expected):
    assert up_only(tmp_path, sql, rules=("destructive-in-up",)) == expected


def test_destructive_in_up_and_not_idempotent_together(tmp_path):
    assert up_only(tmp_path, "DROP TABLE t;") == {("destructive-in-up", 1), ("not-idempotent", 1)}


def test_a_drop_in_a_down_file_is_not_destructive_in_up(tmp_path):
    down = "DROP TABLE IF EXISTS t;\nTRUNCATE u;\nDELETE FROM v;\nALTER TABLE w DROP COLUMN IF EXISTS a;\n"
    result = lint(write(tmp_path, {"1_x.up.sql": "CREATE TABLE IF NOT EXISTS t (a int);", "1_x.down.sql": down}))
    assert {i.rule for i in result.issues} == {"no-lock-timeout"}


def test_missing_down(tmp_path):
    result = lint(write(tmp_path, {"1_a.up.sql": "SELECT 1;", "2_b.up.sql": "SELECT 1;", "2_b.down.sql": "SELECT 1;"}))
    assert found(result) == {("missing-down", "1_a.up.sql", 1)}
    assert result.issues[0].message == (
        "no down file for version 1: `migrate down` steps past it and undoes nothing (it logs <empty>); "
        "add 1_a.down.sql")


def test_a_down_without_an_up_is_a_missing_up(tmp_path):
    result = lint(write(tmp_path, {"1_a.down.sql": "SELECT 1;"}))
    assert found(result) == {("missing-up", "1_a.down.sql", 1)}
    assert result.issues[0].message == ("1_a.down.sql has no up file: migrate records version 1 as applied and "
                                        "runs nothing for it; add the up file or remove this one")


@pytest.mark.parametrize("down, level", [("", "warning"), ("\n\n", "warning"), (";\n;", "warning"),
                                         ("-- nothing to undo: the up only backfills\n", "info"),
                                         ("/* nothing;\n to undo */\n", "info")])
def test_empty_down_is_info_when_a_comment_says_why(tmp_path, down, level):
    result = lint(write(tmp_path, {"1_a.up.sql": "SELECT 1;", "1_a.down.sql": down}))
    assert found(result) == {("empty-down", "1_a.down.sql", 1)}
    assert result.issues[0].severity == level


def test_a_down_with_one_statement_is_not_empty(tmp_path):
    assert lint(write(tmp_path, {"1_a.up.sql": "SELECT 1;", "1_a.down.sql": "-- undo\nSELECT 1;"})).issues == ()


def test_duplicate_version_counts_leading_zeros_as_migrate_does(tmp_path):
    folder = write(tmp_path, {"01_b.up.sql": "SELECT 1;", "01_b.down.sql": "SELECT 1;",
                              "1_a.up.sql": "SELECT 1;", "1_a.down.sql": "SELECT 1;"})
    result = lint(folder)
    # migrate reads names in order and rejects the second file of a version and direction
    assert found(result) == {("duplicate-version", "1_a.up.sql", 1), ("duplicate-version", "1_a.down.sql", 1)}
    assert (result.files, result.versions, result.worst()) == (4, 1, "error")


def test_timestamp_versions(tmp_path):
    folder = write(tmp_path, {"20240514091500_create_t.up.sql": "CREATE TABLE t (a int);",
                              "20240514091500_create_t.down.sql": "DROP TABLE IF EXISTS t;",
                              "20240514091501_add_b.up.sql": "ALTER TABLE t ADD COLUMN IF NOT EXISTS b int;"})
    result = lint(folder)
    assert found(result, "not-idempotent", "missing-down") == {
        ("not-idempotent", "20240514091500_create_t.up.sql", 1), ("missing-down", "20240514091501_add_b.up.sql", 1)}
    assert {i.version for i in result.issues} == {20240514091500, 20240514091501}
    assert result.versions == 2


def test_sql_files_migrate_would_skip_are_reported_not_linted(tmp_path):
    folder = write(tmp_path, {"1_a.up.sql": "SELECT 1;", "1_a.down.sql": "SELECT 1;", "README.md": "DROP TABLE x;",
                              "2_b.sql": "DROP TABLE x;", "up.sql": "", "x_1.up.sql": "DROP TABLE x;",
                              "3_c.UP.sql": "DROP TABLE x;", "notes.txt": "DROP TABLE x;"})
    (folder / "3_dir.up.sql").mkdir()
    result = lint(folder)
    assert (result.files, result.versions) == (2, 1)
    assert found(result) == {("unmatched-name", name, 1) for name in ("2_b.sql", "up.sql", "x_1.up.sql", "3_c.UP.sql")}
    issue = next(i for i in result.issues if i.path == "2_b.sql")
    assert (issue.version, issue.direction, issue.severity) == (None, None, "warning")
    assert issue.message.startswith("golang-migrate does not load 2_b.sql (its names are N_name.up.sql")


def test_files_of_another_extension_get_the_file_rules_only(tmp_path):
    result = lint(write(tmp_path, {"1_a.up.json": '[{"drop": "users"}]'}))
    assert found(result) == {("missing-down", "1_a.up.json", 1)}


@pytest.mark.parametrize("up, expected", [
    ("CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t (a);", set()),  # alone: app/000006 ran fine (0012)
    ("-- a comment; and another\n\nCREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t (a);\n-- done;\n", set()),
    ("DROP INDEX CONCURRENTLY IF EXISTS i;", set()),
    ("REINDEX INDEX CONCURRENTLY i;", set()),
    ("SET lock_timeout = '5s';\nCREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t (a);", {2}),
    ("CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t (a);\nCREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS j ON t (b);",
     {1, 2}),
    ("BEGIN;\nCREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t (a);\nCOMMIT;", {2}),
    ("START TRANSACTION;\nDROP INDEX CONCURRENTLY IF EXISTS i;\nCOMMIT;", {2}),
    ("SELECT 1;\nREINDEX INDEX CONCURRENTLY i;", {2}),
    ("CREATE INDEX IF NOT EXISTS i ON t (a);\nCREATE INDEX IF NOT EXISTS j ON t (b);", set()),
    ("BEGIN;\nCREATE TABLE IF NOT EXISTS t (a int);\nCOMMIT;", set()),
    ("SELECT 'CREATE INDEX CONCURRENTLY i ON t (a)';\nSELECT 1;", set()),
])
def test_concurrently_in_transaction(tmp_path, up, expected):
    result = lint(write(tmp_path, {"1_x.up.sql": up, "1_x.down.sql": "SELECT 1;"}))
    assert {i.line for i in result.issues if i.rule == "concurrently-in-transaction"} == expected
    assert all(i.severity == "error" for i in result.issues if i.rule == "concurrently-in-transaction")


def test_explicit_begin_is_named_in_the_message(tmp_path):
    result = lint(write(tmp_path, {"1_x.up.sql": "BEGIN;\nCREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t (a);\nCOMMIT;",
                                   "1_x.down.sql": "DROP INDEX CONCURRENTLY IF EXISTS i;"}))
    assert [i.message for i in result.issues] == [(
        "CREATE INDEX CONCURRENTLY cannot run inside a transaction block and this file opens a transaction at "
        "line 1: move it to a migration file of its own, without BEGIN/COMMIT")]


def test_with_x_multi_statement_only_an_explicit_begin_makes_a_transaction(tmp_path):
    # 0053/0054: the same concurrently-in-tx files applied and rolled back with x-multi-statement=true
    for capture in ("0053_up_multi_statement.txt", "0054_verbose_down_1_multi_statement.txt"):
        assert "error" not in (CAPTURES / capture).read_text(encoding="utf-8")
    assert lint(MIGRATIONS / "concurrently-in-tx", multi_statement=True).issues == tuple(
        i for i in lint(MIGRATIONS / "concurrently-in-tx").issues if i.rule != "concurrently-in-transaction")
    folder = write(tmp_path, {"1_x.up.sql": "BEGIN;\nDROP INDEX CONCURRENTLY IF EXISTS i;\nCOMMIT;",
                              "1_x.down.sql": "CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t (a);"})
    assert found(lint(folder, multi_statement=True)) == {("concurrently-in-transaction", "1_x.up.sql", 2)}


# ---------------------------------------------------------------------------------- statements and lines

def test_comments_and_dollar_quoted_bodies_do_not_split_statements(tmp_path):
    sql = (
        "-- 1: a header; with a semicolon\n"
        "/* 2: a block comment;\n"
        "   3: still the comment; DROP TABLE nothing; */\n"
        "\n"
        "CREATE OR REPLACE FUNCTION touch() RETURNS trigger AS $$\n"  # 5
        "BEGIN\n"
        "  NEW.updated_at := now(); RETURN NEW;\n"
        "END;\n"
        "$$ LANGUAGE plpgsql;\n"
        "DO $body$ BEGIN PERFORM 1; PERFORM 'a;b'; END $body$;\n"  # 10
        "INSERT INTO t (s) VALUES ('x; DROP TABLE y; -- not a comment'), (E'it\\'s; fine');\n"
        "\n"
        "-- 13\n"
        "DROP TABLE old_t;\n"  # 14
    )
    assert up_only(tmp_path, sql) == {("not-idempotent", 14), ("destructive-in-up", 14)}


def test_sql_standard_function_body_keeps_its_semicolons(tmp_path):
    sql = ("CREATE OR REPLACE FUNCTION two() RETURNS int LANGUAGE sql\n"
           "BEGIN ATOMIC\n  SELECT 1;\n  SELECT CASE WHEN true THEN 2 END;\nEND;\n"
           "CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t (a);\n")
    # two statements in one query, not five: the index is line 6 and `END` is not a COMMIT
    result = lint(write(tmp_path, {"1_x.up.sql": sql, "1_x.down.sql": "DROP INDEX CONCURRENTLY IF EXISTS i;"}))
    [issue] = [i for i in result.issues if i.path == "1_x.up.sql"]
    assert (issue.rule, issue.line) == ("concurrently-in-transaction", 6)
    assert "2 statements" in issue.message


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_line_is_the_statements_first_line_after_blank_lines_and_comments(tmp_path, newline):
    sql = newline.join([
        "",
        "-- the users table",
        "",
        "/* created",
        "   here */",
        "CREATE TABLE users (",  # 6
        "    id BIGINT",
        ");",
        "",
        "ALTER TABLE accounts",  # 10
        "    ADD COLUMN email TEXT; CREATE TABLE b (a int);",  # the second statement starts on 11
    ])
    assert up_only(tmp_path, sql) == {("not-idempotent", 6), ("not-idempotent", 10), ("not-idempotent", 11)}


def test_two_statements_on_one_line(tmp_path):
    assert up_only(tmp_path, "CREATE TABLE a (x int); CREATE TABLE b (x int);") == NI


def test_every_statement_postgres_rejects_is_named_and_the_rest_still_checked(tmp_path):
    sql = "SELECT 1;\n\nDROP TABLE t garbage garbage;\nDELETE FROM u x y z;\nDROP TABLE v;\n"
    assert up_only(tmp_path, sql) == {("unparsable", 3), ("unparsable", 4), ("not-idempotent", 5),
                                      ("destructive-in-up", 5)}


def test_unterminated_quote_is_one_unparsable_statement(tmp_path):
    assert up_only(tmp_path, "SELECT 1;\nSELECT 'oops;\nDROP TABLE t;\n") == {("unparsable", 2)}


@pytest.mark.parametrize("sql", [
    "COMMENT ON TRIGGER audit ON users IS 'written by'\n  ' the audit job';",  # adjacent literals
    "SELECT 'a'\n'b';",
    "CREATE OR REPLACE FUNCTION add(int, int) RETURNS int AS $$ SELECT $1 + $2 $$ LANGUAGE sql;",  # unnamed args
    "DROP INDEX IF EXISTS a, b, c;",
    "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_type WHERE typname = 'mood') THEN\n"
    "  CREATE TYPE mood AS ENUM ('sad', 'ok'); END IF; END $$;",
    "CREATE OR REPLACE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $fn$\n"
    "BEGIN NEW.updated_at := now(); RETURN NEW; END; $fn$;",
    "CREATE OR REPLACE FUNCTION two() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT 2; END;",
    "CREATE TABLE IF NOT EXISTS m (id bigint GENERATED ALWAYS AS IDENTITY, r int4range, EXCLUDE USING gist (r WITH &&));",
    "ALTER TABLE IF EXISTS ONLY t ALTER COLUMN a SET DEFAULT gen_random_uuid();",
    "CREATE POLICY p ON t USING (owner = current_user);",
    "MERGE INTO t USING u ON t.id = u.id WHEN MATCHED THEN UPDATE SET a = u.a;",
    "GRANT SELECT ON ALL TABLES IN SCHEMA public TO reader;",
    "COPY t (a) FROM STDIN;",
])
def test_what_postgresql_accepts_parses(tmp_path, sql):
    assert ("unparsable", 1) not in up_only(tmp_path, sql, rules=("unparsable",))


# ----------------------------------------------------------------------------------------- folder errors

def test_missing_folder_is_a_source_error(tmp_path):
    with pytest.raises(SourceError) as e:
        lint(tmp_path / "nope")
    assert str(e.value) == (f"{tmp_path / 'nope'}: no such migrations folder; "
                            "pass the directory migrate's -path points at")


def test_folder_without_migrations_is_a_source_error(tmp_path):
    folder = write(tmp_path, {"README.md": "# migrations", "init.sql": "CREATE TABLE t (a int);"})
    with pytest.raises(SourceError) as e:
        lint(folder)
    assert str(e.value) == (f"{folder}: no migration files (N_name.up.sql / N_name.down.sql) (1 .sql files do not "
                            "match: init.sql); point lint at the folder migrate's -path uses")


# -------------------------------------------------------------------------------------------- formatters

def test_text_is_one_line_per_issue_then_the_summary():
    folder = MIGRATIONS / "down-fails"
    assert to_text(lint(folder)).splitlines() == [
        ("000009_rename_users_to_accounts.down.sql:1: warning no-lock-timeout: DROP TABLE accounts waits for a lock "
         "on accounts with no SET lock_timeout before it: behind a long transaction it queues every query on "
         "accounts; start the file with SET lock_timeout = '5s'"),
        ("000009_rename_users_to_accounts.down.sql:1: warning not-idempotent: DROP TABLE accounts fails if it is "
         "already gone; write DROP TABLE IF EXISTS"),
        ("000009_rename_users_to_accounts.down.sql:2: warning not-idempotent: DROP TABLE users fails if it is "
         "already gone; write DROP TABLE IF EXISTS"),
        f"linted {folder}: 2 files, 1 version; 3 warnings",
    ]


def test_summary_counts_by_severity_and_the_suppressed(tmp_path):
    assert lint(as_ran(tmp_path, "duplicate")).summary().endswith("17 files, 8 versions; 2 errors, 13 warnings")
    assert lint(MIGRATIONS / "timeout").summary().endswith("2 files, 1 version; no issues")
    assert lint(MIGRATIONS / "app").summary().endswith("; 4 errors, 9 warnings")
    folder = write(tmp_path, {"1_a.up.sql": "-- migrate-lens:ignore not-idempotent\nCREATE TABLE t (a int);",
                              "1_a.down.sql": "SET lock_timeout = '5s';\nDROP TABLE IF EXISTS t;"})
    assert lint(folder).summary().endswith("2 files, 1 version; no issues (1 suppressed)")


def test_json_shape():
    result = lint(MIGRATIONS / "concurrently-in-tx")
    doc = json.loads(to_json(result))
    assert set(doc) == {"folder", "files", "versions", "summary", "suppressed", "issues"}
    assert (doc["files"], doc["versions"], doc["summary"], doc["suppressed"]) == (2, 1, result.summary(), 0)
    assert len(doc["issues"]) == len(result.issues) == 6
    assert doc["issues"][0] == {
        "rule": "concurrently-in-transaction", "severity": "error", "path": "000009_add_lookup_indexes.down.sql",
        "line": 1, "version": 9, "direction": "down", "message": result.issues[0].message, "column": None}


# ------------------------------------------------------------------------------------- exit code, storage

def _result(*severities: str) -> LintResult:
    issues = tuple(LintIssue({"error": "duplicate-version", "warning": "missing-down", "info": "unparsable"}[s],
                             s, "1_a.up.sql", 1, 1, "up", "m") for s in severities)  # type: ignore[arg-type]
    return LintResult(Path("m"), 1, 1, issues)


@pytest.mark.parametrize("severities, fail_on, code", [
    ((), "info", 0),
    (("info",), "info", 3), (("info",), "warning", 0), (("info",), "error", 0), (("info",), "never", 0),
    (("warning",), "info", 3), (("warning",), "warning", 3), (("warning",), "error", 0),
    (("warning",), "never", 0),
    (("error", "info"), "error", 3), (("error",), "warning", 3), (("error",), "never", 0),
])
def test_exit_code(severities, fail_on, code):
    assert exit_code(_result(*severities), fail_on) == code


def test_exit_code_refuses_an_unknown_level():
    with pytest.raises(UsageError) as e:
        exit_code(_result(), "critical")
    assert str(e.value) == "--fail-on critical: choose error, warning, info or never"


def test_worst():
    assert _result().worst() is None
    assert _result("info", "warning").worst() == "warning"
    assert _result("info", "error", "warning").worst() == "error"


def test_store_replaces_the_services_rows(tmp_path):
    con = connect(tmp_path / "lint.duckdb")
    assert store(con, lint(MIGRATIONS / "concurrently-in-tx"), "app") == 6
    assert store(con, lint(MIGRATIONS / "collision"), "billing") == 4
    assert store(con, lint(MIGRATIONS / "timeout"), "app") == 0  # fixed: app's rows go
    assert con.execute("SELECT service, count(*) FROM lint_issues GROUP BY ALL").fetchall() == [("billing", 4)]
    assert store(con, lint(MIGRATIONS / "duplicate"), "app") == 4
    assert con.execute("SELECT service, version, direction, rule, severity, path, line FROM lint_issues "
                       "WHERE service = 'app' AND rule = 'not-idempotent' ORDER BY path").fetchall() == [
        ("app", 3, "down", "not-idempotent", "warning", "000003_add_users_phone.down.sql", 1),
        ("app", 3, "up", "not-idempotent", "warning", "000003_add_users_phone.up.sql", 1)]
    folder = write(tmp_path, {"1_a.up.sql": "SELECT 1;", "1_a.down.sql": "SELECT 1;", "seed.sql": "SELECT 1;"})
    assert store(con, lint(folder), "seeded") == 1  # a file without a version is stored as version -1
    assert con.execute("SELECT version, direction, rule FROM lint_issues WHERE service = 'seeded'").fetchall() == [
        (-1, None, "unmatched-name")]
    assert con.execute("SELECT count(*) FROM lint_issues WHERE linted_at IS NULL OR message = ''").fetchone() == (0,)
    con.close()


def test_stored_issues_join_the_history_on_service_and_version(warehouse):
    store(warehouse, lint(MIGRATIONS / "collision"), "app")
    rows = warehouse.execute(
        "SELECT l.version, count(e.event_id) FROM lint_issues l "
        "LEFT JOIN migrate_events e ON e.service = l.service AND e.version = l.version "
        "LEFT JOIN runs r ON r.service = l.service AND r.dirty_version = l.version GROUP BY ALL").fetchall()
    assert rows == [(9, 0)]


def test_cli_lint_stores_issues_that_join_the_history_in_the_query_and_the_report(tmp_path):
    from click.testing import CliRunner

    from pipeline.api import ingest
    from pipeline.cli import main
    from pipeline.core.config import Config
    from pipeline.report import report
    from pipeline.warehouse import connect

    captures = Path(__file__).parent / "fixtures" / "real-migrate-logs" / "captures"
    folder = Path(__file__).parent / "fixtures" / "real-migrate-logs" / "migrations" / "concurrently-in-tx"
    db = tmp_path / "w.duckdb"
    con = connect(db)
    ingest(con, [str(captures / "0050_verbose_up_concurrently_fails.txt")], config=Config(), progress=False)
    con.close()
    runner = CliRunner()
    failing = runner.invoke(main, ["--db", str(db), "lint", str(folder), "--store", "unknown"])
    assert failing.exit_code == 3 and "concurrently-in-transaction" in failing.stdout
    sarif = runner.invoke(main, ["lint", str(folder), "--format", "sarif", "--fail-on", "never"])
    assert sarif.exit_code == 0 and '"version": "2.1.0"' in sarif.stdout
    bitten = runner.invoke(main, ["--db", str(db), "query", "lint_vs_history", "--format", "json"])
    assert bitten.exit_code == 0, bitten.stderr
    rows = __import__("json").loads(bitten.stdout)
    assert [(r["service"], r["version"], r["failed_runs"]) for r in rows] == [("unknown", 9, 1)]
    con = connect(db)
    html = report(con, config=Config(), as_of=__import__("datetime").datetime(2100, 1, 1), out=tmp_path).path.read_text()
    con.close()
    assert 'data-lint="unknown/9"' in html

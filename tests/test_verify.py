"""verify: each version's up, down, schema and data restored, reapply and idempotent up, against a real
PostgreSQL (the throwaway cluster verify itself starts; see the `postgres` fixture in conftest)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner
from junitparser import JUnitXml

from pipeline.cli import main
from pipeline.core.errors import SourceError
from pipeline.core.vocabulary import VERIFY_CHECKS
from pipeline.verify import VerifyResult, to_json, to_junit, to_text, verify
from pipeline.verify.postgres import migrate_split

ALL_PASS = dict.fromkeys(VERIFY_CHECKS, "pass")


def folder(root: Path, files: dict[str, str | bytes]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, body in files.items():
        (root / name).write_bytes(body if isinstance(body, bytes) else body.encode())
    return root


def statuses(result: VerifyResult) -> dict[int, dict[str, str]]:
    return {v.version: {c.check: c.status for c in v.checks} for v in result.versions}


def detail(result: VerifyResult, version: int, check: str) -> str:
    [v] = [v for v in result.versions if v.version == version]
    return next(c.detail for c in v.checks if c.check == check)


USERS = {
    "1_create_users.up.sql": "CREATE TABLE IF NOT EXISTS users (id bigserial PRIMARY KEY, email text);\n",
    "1_create_users.down.sql": "DROP TABLE IF EXISTS users;\n",
}


def test_a_clean_folder_passes_every_check_for_every_kind_of_object(postgres, tmp_path):
    migrations = folder(tmp_path / "m", {
        **USERS,
        "2_email_index.up.sql": "CREATE UNIQUE INDEX IF NOT EXISTS users_email ON users (email);",
        "2_email_index.down.sql": "DROP INDEX IF EXISTS users_email;",
        "3_mood.up.sql": """
            DO $$ BEGIN
                IF NOT EXISTS (SELECT 1 FROM pg_type WHERE typname = 'mood') THEN
                    CREATE TYPE mood AS ENUM ('ok', 'sad');
                END IF;
            END $$;
            ALTER TABLE users ADD COLUMN IF NOT EXISTS mood mood DEFAULT 'ok';
            ALTER TABLE users DROP CONSTRAINT IF EXISTS email_has_at;
            ALTER TABLE users ADD CONSTRAINT email_has_at CHECK (email LIKE '%@%');
        """,
        "3_mood.down.sql": "ALTER TABLE users DROP CONSTRAINT IF EXISTS email_has_at;\n"
                           "ALTER TABLE users DROP COLUMN IF EXISTS mood; DROP TYPE IF EXISTS mood;",
        "4_view_function_trigger.up.sql": """
            CREATE OR REPLACE VIEW active_users AS SELECT id, email FROM users WHERE mood = 'ok';
            CREATE OR REPLACE FUNCTION lower_email() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN NEW.email := lower(NEW.email); RETURN NEW; END $$;
            CREATE OR REPLACE TRIGGER users_lower_email BEFORE INSERT ON users
                FOR EACH ROW EXECUTE FUNCTION lower_email();
            CREATE SEQUENCE IF NOT EXISTS invoice_numbers START 1000;
            CREATE EXTENSION IF NOT EXISTS pg_trgm;
        """,
        "4_view_function_trigger.down.sql": """
            DROP EXTENSION IF EXISTS pg_trgm; DROP SEQUENCE IF EXISTS invoice_numbers;
            DROP TRIGGER IF EXISTS users_lower_email ON users; DROP FUNCTION IF EXISTS lower_email();
            DROP VIEW IF EXISTS active_users;
        """,
        "README.md": "not a migration",
    })
    seeds = folder(tmp_path / "seeds", {"1.sql": "INSERT INTO users (email) VALUES ('a@example.com'), ('b@x.org');"})
    result = verify(migrations, database=postgres.conninfo, seed_dir=seeds, strict=True)
    assert statuses(result) == {1: ALL_PASS, 2: ALL_PASS, 3: ALL_PASS, 4: ALL_PASS}
    assert (result.ok, result.exit_code(), result.not_reached, result.skipped_files) == (True, 0, (), ("README.md",))
    assert [v.name for v in result.versions] == ["create_users", "email_index", "mood", "view_function_trigger"]


@pytest.mark.parametrize(("up", "left_behind"), [
    ("CREATE INDEX users_email ON users (email);",
     "left behind: index public.users_email (CREATE INDEX users_email ON public.users USING btree (email))"),
    ("CREATE TYPE mood AS ENUM ('ok', 'sad');", "left behind: type public.mood (enum ('ok', 'sad'))"),
])
def test_a_down_that_leaves_an_object_fails_schema_restored_and_names_it(postgres, tmp_path, up, left_behind):
    migrations = folder(tmp_path, {**USERS, "2_add.up.sql": up, "2_add.down.sql": "-- forgot it\n"})
    result = verify(migrations, database=postgres.conninfo)
    assert statuses(result)[2] == {"up": "pass", "down": "pass", "schema_restored": "fail", "data_restored": "pass",
                                   "reapply": "fail", "idempotent_up": "fail"}
    assert detail(result, 2, "schema_restored") == left_behind
    assert "already exists" in detail(result, 2, "reapply")
    assert result.exit_code() == 3


def test_a_down_with_a_typo_fails_down_with_the_error_and_the_line(postgres, tmp_path):
    migrations = folder(tmp_path, {**USERS, "2_orders.up.sql": "CREATE TABLE IF NOT EXISTS orders (id int);",
                                   "2_orders.down.sql": "-- undo\nDROP TABLEE orders;"})
    result = verify(migrations, database=postgres.conninfo)
    assert statuses(result)[2] == {"up": "pass", "down": "fail", "schema_restored": "skip", "data_restored": "skip",
                                   "reapply": "skip", "idempotent_up": "pass"}  # on a fresh copy, not the failed one
    assert detail(result, 2, "down") == 'line 2: syntax error at or near "TABLEE" (SQLSTATE 42601)'
    assert result.exit_code() == 3


def test_data_the_down_cannot_bring_back_fails_data_restored_while_column_order_does_not_count(postgres, tmp_path):
    migrations = folder(tmp_path / "m", {
        **USERS,
        "2_drop_email.up.sql": "ALTER TABLE users DROP COLUMN IF EXISTS email;",
        # re-adds the column, last and empty: the schema is the same (order is not compared), the rows are not
        "2_drop_email.down.sql": "ALTER TABLE users ADD COLUMN IF NOT EXISTS email text;",
    })
    seeds = folder(tmp_path / "seeds", {"1.sql": "INSERT INTO users (email) VALUES ('a@example.com'), ('b@x.org');"})
    result = verify(migrations, database=postgres.conninfo, seed_dir=seeds)
    assert statuses(result)[2] == {**ALL_PASS, "data_restored": "fail"}
    assert detail(result, 2, "data_restored") == "public.users: 2 rows, but their contents differ"
    assert result.exit_code() == 0  # reported; counted only with --strict
    strict = verify(migrations, database=postgres.conninfo, seed_dir=seeds, strict=True)
    assert strict.exit_code() == 3


def test_a_missing_down_is_missing_and_exits_3_unless_allowed(postgres, tmp_path):
    migrations = folder(tmp_path, {**USERS, "2_orders.up.sql": "CREATE TABLE IF NOT EXISTS orders (id int);"})
    result = verify(migrations, database=postgres.conninfo)
    assert statuses(result)[2] == {"up": "pass", "down": "missing", "schema_restored": "skip",
                                   "data_restored": "skip", "reapply": "skip", "idempotent_up": "pass"}
    assert result.exit_code() == 3
    assert verify(migrations, database=postgres.conninfo, allow_missing_down=True).exit_code() == 0


def test_a_non_idempotent_up_fails_idempotent_up_and_counts_only_with_strict(postgres, tmp_path):
    migrations = folder(tmp_path, {"1_orders.up.sql": "CREATE TABLE orders (id int);",
                                   "1_orders.down.sql": "DROP TABLE orders;"})
    result = verify(migrations, database=postgres.conninfo)
    assert statuses(result)[1] == {**ALL_PASS, "idempotent_up": "fail"}
    assert detail(result, 1, "idempotent_up") == 'relation "orders" already exists (SQLSTATE 42P07)'
    assert result.exit_code() == 0
    assert verify(migrations, database=postgres.conninfo, strict=True).exit_code() == 3


CONCURRENTLY = {
    **USERS,
    "2_email_index.up.sql": "SET lock_timeout = '5s';\nCREATE INDEX CONCURRENTLY IF NOT EXISTS users_email ON users (email);",
    "2_email_index.down.sql": "DROP INDEX IF EXISTS users_email;",
    "3_orders.up.sql": "CREATE TABLE IF NOT EXISTS orders (id int);",
    "3_orders.down.sql": "DROP TABLE IF EXISTS orders;",
}


def test_concurrently_among_other_statements_fails_as_under_migrate_and_stops_there(postgres, tmp_path):
    result = verify(folder(tmp_path, CONCURRENTLY), database=postgres.conninfo)
    assert [v.version for v in result.versions] == [1, 2] and result.not_reached == (3,)
    assert statuses(result)[2] == {"up": "fail", **dict.fromkeys(VERIFY_CHECKS[1:], "skip")}
    assert detail(result, 2, "up") == ("CREATE INDEX CONCURRENTLY cannot run inside a transaction block "
                                       "(SQLSTATE 25001)")
    assert result.exit_code() == 3


def test_concurrently_passes_alone_in_its_file_and_with_multi_statement(postgres, tmp_path):
    alone = {**CONCURRENTLY, "2_email_index.up.sql": "CREATE INDEX CONCURRENTLY IF NOT EXISTS users_email ON users (email);"}
    assert statuses(verify(folder(tmp_path / "alone", alone), database=postgres.conninfo))[2] == ALL_PASS
    split = verify(folder(tmp_path / "split", CONCURRENTLY), database=postgres.conninfo, multi_statement=True)
    assert statuses(split) == {1: ALL_PASS, 2: ALL_PASS, 3: ALL_PASS} and split.ok


def test_multi_statement_cuts_at_every_semicolon_like_migrate_even_inside_a_literal(postgres, tmp_path):
    assert migrate_split("SELECT 'a;b';\n\nSELECT 1;  \n") == [(0, "SELECT 'a;"), (10, "b';"), (13, "\n\nSELECT 1;")]
    migrations = folder(tmp_path, {**USERS, "2_seed.up.sql": "INSERT INTO users (email) VALUES ('a;b@x.org');",
                                   "2_seed.down.sql": "DELETE FROM users WHERE email = 'a;b@x.org';"})
    assert verify(migrations, database=postgres.conninfo).ok
    split = verify(migrations, database=postgres.conninfo, multi_statement=True)
    assert statuses(split)[2]["up"] == "fail"
    assert "unterminated quoted string" in detail(split, 2, "up")


def test_each_file_runs_with_migrate_s_schema_migrations_bookkeeping(postgres, tmp_path):
    """While version N's up runs, migrate holds (N, dirty); while its down runs, (N-1, dirty)."""
    def expect(version: int) -> str:
        return (f"DO $$ BEGIN IF (SELECT (version, dirty) FROM schema_migrations) IS DISTINCT FROM ({version}::bigint, "
                f"true) THEN RAISE EXCEPTION 'schema_migrations holds %', (SELECT (version, dirty) FROM "
                "schema_migrations); END IF; END $$;")
    migrations = folder(tmp_path, {"1_a.up.sql": expect(1), "1_a.down.sql": expect(-1),
                                   "7_b.up.sql": expect(7), "7_b.down.sql": expect(1)})
    result = verify(migrations, database=postgres.conninfo)
    assert statuses(result) == {1: ALL_PASS, 7: ALL_PASS}, result.versions


def test_a_file_that_is_not_utf8_fails_its_check_with_the_decode_error(postgres, tmp_path):
    migrations = folder(tmp_path, {**USERS, "2_bad.up.sql": b"INSERT INTO users (email) VALUES ('caf\xe9');",
                                   "2_bad.down.sql": "SELECT 1;", "3_next.up.sql": "SELECT 1;"})
    result = verify(migrations, database=postgres.conninfo)
    assert statuses(result)[2]["up"] == "fail" and result.not_reached == (3,)
    assert detail(result, 2, "up") == (f"{migrations / '2_bad.up.sql'}: not UTF-8 (invalid continuation byte at byte offset "
                                       "38); PostgreSQL would refuse it (invalid byte sequence for encoding UTF8): "
                                       "save the file as UTF-8")


@pytest.mark.parametrize(("files", "message"), [
    ({"README.md": "x"}, "no migration files (N_name.up.sql / N_name.down.sql)"),
    ({"1_a.up.sql": "", "1_b.up.sql": "", "2_c.up.sql": ""},
     "duplicate migration versions: 1_a.up.sql, 1_b.up.sql (version 1, up)"),
])
def test_bad_folders_are_an_error_naming_the_files(tmp_path, files, message):
    with pytest.raises(SourceError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        verify(folder(tmp_path, files))


def test_json_has_the_documented_shape(postgres, tmp_path):
    result = verify(folder(tmp_path, {**USERS, "2_x.up.sql": "CREATE TABLE x (a int);"}), database=postgres.conninfo)
    doc = json.loads(to_json(result))
    assert doc["ok"] is False and doc["not_reached"] == []
    assert doc["versions"][1] == {
        "version": 2, "name": "x",
        "checks": {"up": "pass", "down": "missing", "schema_restored": "skip", "data_restored": "skip",
                   "reapply": "skip", "idempotent_up": "fail"},
        "details": {"down": "no down file for version 2: `migrate down` steps past it and undoes nothing",
                    "schema_restored": "no down to run", "data_restored": "no down to run",
                    "reapply": "no down to run", "idempotent_up": 'relation "x" already exists (SQLSTATE 42P07)'}}
    text = to_text(result)
    assert text.splitlines()[0].split() == ["version", "name", *VERIFY_CHECKS]
    assert text.splitlines()[2].split() == ["2", "x", "pass", "MISSING", "skip", "skip", "skip", "FAIL"]


def test_junit_is_the_jenkins_surefire_shape_with_one_case_per_version_and_check(postgres, tmp_path):
    result = verify(folder(tmp_path, {**CONCURRENTLY, "1_create_users.up.sql": "CREATE TABLE users (id int, email text);"}),
                    database=postgres.conninfo)
    root = ET.fromstring(to_junit(result).encode())
    assert root.tag == "testsuites"
    [suite] = list(root)
    assert suite.tag == "testsuite" and suite.get("name", "").startswith("migrate-lens verify ")
    cases = suite.findall("testcase")
    assert [(c.get("classname"), c.get("name")) for c in cases] == [
        *[("migrations.1_create_users", check) for check in VERIFY_CHECKS],
        *[("migrations.2_email_index", check) for check in VERIFY_CHECKS], ("migrations.3", "up")]
    for element in (root, suite):  # the counts the CI reporters read agree with the cases
        assert int(element.get("tests")) == len(cases)
        assert int(element.get("failures")) == sum(1 for c in cases if c.find("failure") is not None) == 1
        assert int(element.get("skipped")) == sum(1 for c in cases if c.find("skipped") is not None) == 6
        assert element.get("errors") == "0" and float(element.get("time")) > 0
    assert all(float(c.get("time")) >= 0 and set(c.attrib) == {"classname", "name", "time"} for c in cases)
    failure = cases[6].find("failure")
    assert failure.get("type") == "fail" and "CREATE INDEX CONCURRENTLY" in failure.get("message")
    # idempotent_up of version 1 failed but is not counted without --strict: a pass that says so
    assert "already exists" in cases[5].find("system-out").text and cases[5].find("failure") is None
    for case in cases:
        assert {child.tag for child in case} <= {"failure", "skipped", "system-out"}
    # and a JUnit reader as CI plugins use one (junitparser) sees the same cases and outcomes
    path = tmp_path / "verify.xml"
    path.write_text(to_junit(result), encoding="utf-8")
    read = [(c.classname, c.name, [type(r).__name__ for r in c.result]) for s in JUnitXml.fromfile(str(path))
            for c in s]
    assert len(read) == len(cases) and read[6] == ("migrations.2_email_index", "up", ["Failure"])
    assert sum(r[2] == ["Skipped"] for r in read) == 6 and sum(r[2] == [] for r in read) == len(cases) - 7


def test_the_cli_exit_codes_and_outputs(postgres, tmp_path):
    clean = folder(tmp_path / "clean", USERS)
    broken = folder(tmp_path / "broken", {**USERS, "2_x.up.sql": "CREATE TABLE IF NOT EXISTS x (a int);",
                                          "2_x.down.sql": "SELECT 1;"})
    runner = CliRunner()
    db = ["--database", postgres.conninfo]
    ok = runner.invoke(main, ["verify", str(clean), *db])
    assert ok.exit_code == 0, ok.output
    assert ok.stdout.splitlines()[-1].startswith(f"verified {clean}: 1 version in ")
    # progress goes to stderr (a CI log shows a long verify moving), never into the report on stdout
    assert re.fullmatch(r"verify: 1/1 versions checked \(\d+ s\)", ok.stderr.strip())
    assert "versions checked" not in ok.stdout
    quiet = runner.invoke(main, ["verify", str(clean), *db, "--no-progress"])
    assert (quiet.exit_code, quiet.stderr) == (0, "")
    failed = runner.invoke(main, ["verify", str(broken), *db, "--format", "junit", "--output", str(tmp_path / "j.xml")])
    assert failed.exit_code == 3 and "FAILED (1 counted)" in failed.stdout  # schema_restored (IF NOT EXISTS reapplies)
    assert ET.parse(tmp_path / "j.xml").getroot().get("failures") == "1"
    empty = runner.invoke(main, ["verify", str(folder(tmp_path / "empty", {})), *db])
    assert (empty.exit_code, empty.stderr.strip()) == (1, (f"Error: {tmp_path / 'empty'}: no migration files "
                                                           "(N_name.up.sql / N_name.down.sql); point verify at the "
                                                           "folder migrate's -path uses"))
    usage = runner.invoke(main, ["verify", str(clean), "--format", "xml"])
    assert usage.exit_code == 2


def test_a_seed_for_no_version_is_refused_before_any_server_starts(tmp_path):
    seeds = folder(tmp_path / "seeds", {"7.sql": "SELECT 1;", "notes.txt": "not a seed"})
    with pytest.raises(SourceError, match=r"7\.sql: no migration has version 7; a seed file is named after the "
                                          r"version it follows \(\{version\}\.sql\)"):
        verify(folder(tmp_path / "m", USERS), seed_dir=seeds)


def test_a_seed_that_fails_names_the_seed_and_postgres_error(postgres, tmp_path):
    seeds = folder(tmp_path / "seeds", {"1.sql": "INSERT INTO nope VALUES (1);"})
    with pytest.raises(SourceError) as raised:
        verify(folder(tmp_path / "m", USERS), database=postgres.conninfo, seed_dir=seeds)
    assert str(raised.value) == ('seed 1.sql failed after version 1\'s up: line 1: relation "nope" does not exist '
                                 "(SQLSTATE 42P01); fix the seed file")

"""`query` runs in DuckDB's sandbox: no file, network, extension or settings access, one statement; each refusal
is one line and exit 1, and named queries and macros keep working."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.warehouse import connect

from .conftest import CAPTURES

FILES = "Error: the query command reads the warehouse only: no files, network or extensions " \
        "(export with --format csv/json/parquet --output FILE instead)\n"


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sandbox") / "w.duckdb"
    connect(path).close()
    result = CliRunner().invoke(main, ["ingest", str(CAPTURES / "0012_up.txt"), "--db", str(path)])
    assert result.exit_code == 0, result.output
    return path


def _q(db: Path, sql: str):
    return CliRunner().invoke(main, ["query", sql, "--db", str(db), "--format", "csv"])


@pytest.mark.parametrize("sql, target", [
    ("COPY (SELECT 'owned') TO '{tmp}/copied.txt'", "copied.txt"),
    ("EXPORT DATABASE '{tmp}/exported'", "exported"),
])
def test_statements_that_write_files_are_refused_and_write_nothing(db, tmp_path, sql, target):
    result = _q(db, sql.format(tmp=tmp_path))
    assert (result.exit_code, result.stderr) == (1, FILES)
    assert not (tmp_path / target).exists()


@pytest.mark.parametrize("sql", [
    "SELECT * FROM read_text('/etc/passwd')",
    "SELECT * FROM glob('/root/*')",
    "SELECT * FROM read_csv('/etc/hostname')",
    "ATTACH '/tmp/another.duckdb' AS other",
    "INSTALL httpfs",
    "LOAD httpfs",
])
def test_reading_the_host_or_loading_extensions_is_refused(db, sql):
    result = _q(db, sql)
    assert (result.exit_code, result.stderr) == (1, FILES)


def test_a_path_in_from_is_a_table_name_not_a_file(db):
    result = _q(db, "SELECT * FROM '/etc/hostname'")
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == "Error: SQL: Catalog Error: Table with name /etc/hostname does not exist!\n"


@pytest.mark.parametrize("sql", ["SET enable_external_access = true", "SET memory_limit = '64GB'",
                                 "RESET lock_configuration"])
def test_settings_cannot_be_changed(db, sql):
    result = _q(db, sql)
    assert (result.exit_code, result.stderr) == (1, "Error: the query command cannot change settings "
                                                    "(they are locked for the sandbox)\n")


def test_writing_the_warehouse_is_refused(db):
    result = _q(db, "DELETE FROM runs")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: the query command is read-only: it cannot change the warehouse")


@pytest.mark.parametrize("sql, count", [("SELECT 1; SELECT 2", 2), ("SELECT 1; COPY (SELECT 1) TO 'x.csv'", 2),
                                        ("/* only a comment */", 0)])
def test_exactly_one_statement(db, sql, count):
    result = _q(db, sql)
    assert (result.exit_code, result.stderr) == (1, f"Error: SQL: give exactly one statement (this has {count})\n")


def test_named_queries_macros_and_plain_sql_still_work(db):
    assert _q(db, "SELECT count(*) AS n FROM runs;").stdout == "n\n1\n"
    assert _q(db, "SELECT is_failure('dirty') AS f, severity_rank('critical') AS r").stdout == "f,r\ntrue,0\n"
    named = CliRunner().invoke(main, ["query", "current_versions", "--db", str(db), "--format", "csv",
                                      "--param", "as_of=2100-01-01"])
    assert named.exit_code == 0, named.stderr
    assert named.stdout.splitlines()[0].startswith("env,service,database")

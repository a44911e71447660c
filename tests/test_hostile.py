"""A hostile week: each class of defect a tester found, kept from coming back. Every test asserts the exact
one-line message, the exit code and the accounting."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import main

from .conftest import CAPTURES

CLOCK = ["--as-of", "2100-01-01T00:00:00Z"]


def _cli(*args: str):
    return CliRunner().invoke(main, [*args])


# ---------------------------------------------------------------- stale or missing analysis is not health

def test_report_and_alert_refuse_when_nothing_was_analyzed(tmp_path):
    db = str(tmp_path / "w.duckdb")
    assert _cli("ingest", str(CAPTURES / "0033_up_syntax_error.txt"), "--db", db).exit_code == 0
    for command in ("report", "alert"):
        result = _cli(command, "--db", db, "--out", str(tmp_path / "out"), *CLOCK)
        assert result.exit_code == 1
        assert result.stderr == (f"Error: {command}: nothing was analyzed yet; run `migrate-lens analyze` first "
                                 "(or `migrate-lens run`, which does)\n")
    assert not (tmp_path / "out" / "reports").exists()


def test_report_refuses_an_analysis_older_than_the_last_ingest_until_analyze_runs_again(tmp_path):
    db = str(tmp_path / "w.duckdb")
    assert _cli("ingest", str(CAPTURES / "0012_up.txt"), "--db", db).exit_code == 0
    assert _cli("analyze", "--db", db, *CLOCK).exit_code == 0
    assert _cli("report", "--db", db, "--out", str(tmp_path / "out"), *CLOCK).exit_code == 0
    assert _cli("ingest", str(CAPTURES / "0033_up_syntax_error.txt"), "--db", db).exit_code == 0
    stale = _cli("report", "--db", db, "--out", str(tmp_path / "out"), *CLOCK)
    assert stale.exit_code == 1
    when = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"
    assert re.fullmatch(rf"Error: report: sources were ingested at {when} UTC, after the last analysis \({when}\); "
                        r"run `migrate-lens analyze` first \(or `migrate-lens run`, which does\)\n", stale.stderr)
    assert _cli("analyze", "--db", db, *CLOCK).exit_code == 0
    assert _cli("report", "--db", db, "--out", str(tmp_path / "out"), *CLOCK).exit_code == 0


def test_an_unchanged_reingest_does_not_make_the_analysis_stale(tmp_path):
    db = str(tmp_path / "w.duckdb")
    capture = str(CAPTURES / "0012_up.txt")
    assert _cli("ingest", capture, "--db", db).exit_code == 0
    assert _cli("analyze", "--db", db, *CLOCK).exit_code == 0
    assert "skipped 1 unchanged" in _cli("ingest", capture, "--db", db).stdout
    assert _cli("alert", "--dry-run", "--db", db, "--out", str(tmp_path / "out"), *CLOCK).exit_code == 0


# ---------------------------------------------------------------- a mistyped --db creates nothing

@pytest.mark.parametrize("command", [["analyze"], ["report"], ["alert", "--dry-run"], ["query", "SELECT 1"],
                                     ["export", "--parquet", "PARQUET"]])
def test_commands_that_only_read_refuse_a_path_with_no_warehouse(tmp_path, command):
    db = tmp_path / "typo.duckdb"
    args = [a.replace("PARQUET", str(tmp_path / "pq")) for a in command]
    result = _cli(*args, "--db", str(db), "--out", str(tmp_path / "out"))
    assert result.exit_code == 1
    assert result.stderr == (f"Error: {db}: no migrate-lens warehouse here (check --db, or run "
                             "`migrate-lens ingest` first)\n")
    assert not db.exists() and not Path(f"{db}.wal").exists()


@pytest.mark.parametrize("command", [["ingest", "CAPTURE"], ["run", "CAPTURE", "--dry-run"],
                                     ["silence", "--match", "env=prod", "--for", "1h", "--comment", "maintenance"]])
def test_commands_that_load_something_may_create_the_warehouse(tmp_path, command):
    db = tmp_path / "new.duckdb"
    args = [a.replace("CAPTURE", str(CAPTURES / "0012_up.txt")) for a in command]
    result = _cli(*args, "--db", str(db), "--out", str(tmp_path / "out"), *CLOCK)
    assert result.exit_code == 0, result.output
    assert db.exists()


# ---------------------------------------------------------------- named queries answer for the command's clock

def test_named_queries_default_their_clock_to_as_of_else_now(tmp_path):
    db = str(tmp_path / "w.duckdb")
    assert _cli("ingest", str(CAPTURES / "0035_up_dirty.txt"), "--db", db).exit_code == 0  # time: the file's mtime

    def dirty(*clock: str) -> list[str]:
        result = _cli("query", "dirty_now", "--format", "csv", "--db", db, *clock)
        assert result.exit_code == 0, result.stderr
        return result.stdout.splitlines()[1:]

    assert dirty("--as-of", "2000-01-01T00:00:00Z") == []  # before the run: nothing dirty yet
    assert len(dirty("--as-of", "2100-01-01T00:00:00Z")) == 1
    assert len(dirty()) == 1  # no --as-of: now, which is after the file was written
    listed = _cli("query", "--list", "--db", db).stdout
    assert "[as_of=now]" in listed and "2026-11-16" not in listed


# ---------------------------------------------------------------- output that cannot crash or reach a terminal

def test_csv_and_json_serialize_nested_values_and_csv_escapes_control_characters(tmp_path):
    db = str(tmp_path / "w.duckdb")
    assert _cli("ingest", str(CAPTURES / "0012_up.txt"), "--db", db).exit_code == 0
    sql = "SELECT [1, 2] AS l, {'k': 'v'} AS s, 'red' || chr(27) || '[31m' || chr(13) AS t"
    csv_out = _cli("query", sql, "--format", "csv", "--db", db)
    assert csv_out.exit_code == 0, csv_out.stderr
    assert csv_out.stdout == 'l,s,t\n"[1, 2]","{""k"": ""v""}",red\\x1b[31m\\x0d\n'
    json_out = _cli("query", sql, "--format", "json", "--db", db)
    assert json_out.stdout == '[{"l":[1,2],"s":{"k":"v"},"t":"red\\u001b[31m\\r"}]\n'


def test_the_shipped_lint_vs_history_query_exports_as_csv(tmp_path):
    db = str(tmp_path / "w.duckdb")
    folder = CAPTURES.parent / "migrations" / "concurrently-in-tx"
    assert _cli("lint", str(folder), "--store", "unknown", "--db", db, "--fail-on", "never").exit_code == 0
    assert _cli("ingest", str(CAPTURES / "0050_verbose_up_concurrently_fails.txt"), "--db", db).exit_code == 0
    result = _cli("query", "lint_vs_history", "--format", "csv", "--db", db, *CLOCK)
    assert result.exit_code == 0, result.stderr
    header, row = result.stdout.splitlines()
    assert header == "service,version,rules,worst_lint,failed_runs,dirty_runs,rollbacks,rolled_back_in"
    # rolled_back_in is a list column (NULL here: no rollback); the CSV writer used to refuse it whole
    assert row == 'unknown,9,"concurrently-in-transaction, not-idempotent",error,1,1,0,'

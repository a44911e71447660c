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

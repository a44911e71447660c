"""`migrate-lens wrap`: a stand-in migrate replays real captures with their exit codes and timing; the output
passes through byte for byte, the exit code is migrate's, and the events ingest into the same runs."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.api import ingest
from pipeline.core.config import Config
from pipeline.warehouse import connect

from .conftest import CAPTURES, FIXTURES, REAL, ROOT, rows

CLI = [str(ROOT / ".venv" / "bin" / "migrate-lens")]
DSN = "postgres://app:Wr4pSecret@db:5432/app?sslmode=disable"


def _exit_code(name: str) -> int:
    with (REAL / "index.tsv").open(encoding="utf-8") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            if row["file"].endswith(name):
                return int(row["exit_code"])
    raise KeyError(name)


def _fake_migrate(tmp_path: Path, capture: str, *, hang: bool = False) -> Path:
    """An executable named `migrate` that replays `capture` and exits with its recorded code."""
    script = tmp_path / "migrate"
    extra = " --hang" if hang else ""
    script.write_text(f"#!/bin/sh\nexec {sys.executable} {FIXTURES / 'fake_migrate.py'} {CAPTURES / capture} "
                      f"{_exit_code(capture)} --pause 0.005{extra} -- \"$@\"\n", encoding="utf-8")
    script.chmod(0o755)
    return script


def _wrap(tmp_path: Path, migrate: Path, *args: str, **popen) -> subprocess.Popen:
    cli = CLI if Path(CLI[0]).exists() else [sys.executable, "-c", "from pipeline.cli import main; main()"]
    return subprocess.Popen([*cli, "wrap", "--env", "prod", "--service", "billing", "--database", "tenant_001",
                             "--events", str(tmp_path / "events.jsonl"), "--", str(migrate), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen)


@pytest.mark.parametrize("capture", ["0012_up.txt", "0033_up_syntax_error.txt", "0026_goto_42_missing.txt",
                                     "0024_verbose_goto_8.txt", "0035_up_dirty.txt", "0013_up_again_nochange.txt"])
def test_output_passes_through_and_the_events_make_the_same_run(tmp_path, capture):
    proc = _wrap(tmp_path, _fake_migrate(tmp_path, capture), "-path", "/srv/mig/app", "-database", DSN, "up")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == _exit_code(capture)
    assert err == (CAPTURES / capture).read_bytes() and out == b""

    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text(encoding="utf-8").splitlines()]
    assert events[0]["event"] == "run_start" and events[-1]["event"] == "run_end"
    assert events[0]["command"] == "up" and "Wr4pSecret" not in json.dumps(events)
    assert events[-1]["exit_code"] == _exit_code(capture)

    wrapped = connect(tmp_path / "wrapped.duckdb")
    ingest(wrapped, [str(tmp_path / "events.jsonl")], config=Config(), progress=False)
    bare = connect(tmp_path / "bare.duckdb")
    ingest(bare, [str(CAPTURES / capture)], config=Config(), progress=False)
    got = rows(wrapped, "SELECT outcome, applied, error_class, env, service, database, command, exit_code FROM runs")
    want = rows(bare, "SELECT outcome, applied, error_class FROM runs")
    assert [g[:3] for g in got] == want
    assert got[0][3:] == ("prod", "billing", "tenant_001", "up", _exit_code(capture))
    assert rows(wrapped, "SELECT kind, version, own_ms IS NOT NULL FROM migrate_events ORDER BY seq") == \
        rows(bare, "SELECT kind, version, own_ms IS NOT NULL FROM migrate_events ORDER BY seq")
    wrapped.close()
    bare.close()


def test_sigterm_is_forwarded_recorded_and_the_run_is_interrupted(tmp_path):
    migrate = _fake_migrate(tmp_path, "0024_verbose_goto_8.txt", hang=True)
    # Only the first lines, then a hang: a migration still running when Kubernetes stops the pod.
    proc = _wrap(tmp_path, migrate, "-path", "/srv/mig/app", "-database", DSN, "up")
    events_file = tmp_path / "events.jsonl"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if events_file.exists() and events_file.read_text(encoding="utf-8").count('"event": "line"') >= 17:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    assert proc.returncode == 128 + signal.SIGTERM
    end = json.loads(events_file.read_text(encoding="utf-8").splitlines()[-1])
    assert end["event"] == "run_end" and end["signal"] == "SIGTERM"
    con = connect(tmp_path / "w.duckdb")
    ingest(con, [str(events_file)], config=Config(), progress=False)
    assert rows(con, "SELECT outcome, exit_code FROM runs") == [("interrupted", end["exit_code"])]
    con.close()


def test_a_missing_executable_is_one_error_line(tmp_path):
    from click.testing import CliRunner

    from pipeline.cli import main

    result = CliRunner().invoke(main, ["wrap", "--events", str(tmp_path / "e.jsonl"), "--",
                                       str(tmp_path / "no-migrate"), "up"])
    assert result.exit_code == 1
    assert result.stderr == f"Error: {tmp_path / 'no-migrate'}: not found (is migrate on PATH?)\n"
    assert os.path.exists(tmp_path / "e.jsonl")

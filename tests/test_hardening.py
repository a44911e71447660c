"""What migrate-lens survives: arbitrary input, a SIGKILL mid-ingest, secrets in every output, hostile text in
the terminal."""

from __future__ import annotations

import json
import random
import re
import signal
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pipeline.api import ingest
from pipeline.cli import main
from pipeline.core.config import Config
from pipeline.warehouse import connect

from .conftest import CAPTURES, SAMPLE_LOGS, SampleTemplate, rows, sample_truth
from .kit.kill import ingest_killed_midway
from .test_redact import SECRETS

REAL_LINES = sorted({ln for p in CAPTURES.glob("*.txt") for ln in p.read_text(encoding="utf-8").splitlines()})[:400]


def _accounted(con) -> tuple[int, int, int, int]:
    return rows(con, "SELECT (SELECT coalesce(sum(lines), 0) FROM ingested_sources), (SELECT count(*) FROM log_lines), "
                     "(SELECT coalesce(sum(duplicates), 0) FROM ingested_sources), (SELECT count(*) FROM rejects)")[0]


def _envelope(kind: str, line: str, i: int) -> str:
    ts = f"2026-11-12T10:00:{i % 60:02d}.{i:06d}Z"
    if kind == "docker":
        return json.dumps({"log": line + "\n", "stream": "stderr", "time": ts})
    if kind == "kubernetes":
        return json.dumps({"time": ts, "log": line, "_p": "F", "kubernetes": {"pod_name": "p", "container_name": "m"}})
    if kind == "loki":
        return json.dumps({"labels": {"pod": "p"}, "line": line, "timestamp": ts})
    if kind == "cri":
        return f"{ts} stderr F {line}"
    return line


@pytest.mark.slow
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(
    kind=st.sampled_from(["docker", "kubernetes", "loki", "cri", "bare"]),
    picks=st.lists(st.one_of(st.sampled_from(REAL_LINES), st.text(max_size=80)), max_size=40),
    noise=st.lists(st.binary(max_size=120), max_size=8),
    seed=st.integers(0, 2**16),
)
@example(kind="bare", picks=[], noise=[b"\r\x00"], seed=0)  # a lone CR then a NUL: two lines
def test_arbitrary_lines_and_bytes_never_crash_and_every_line_is_accounted_for(tmp_path_factory, kind, picks,
                                                                               noise, seed):
    folder = tmp_path_factory.mktemp("prop")
    lines = [_envelope(kind, p.replace("\n", " ").replace("\r", " "), i).encode() for i, p in enumerate(picks)]
    lines += [n.replace(b"\n", b" ") for n in noise]
    random.Random(seed).shuffle(lines)
    path = folder / ("x-json.log" if kind == "docker" else "x.log" if kind in ("cri", "bare") else "x.jsonl")
    path.write_bytes(b"\n".join(lines) + (b"\n" if lines else b""))
    con = connect(folder / "w.duckdb")
    result = ingest(con, [str(path)], config=Config(), progress=False, envelope=None)
    total, stored, duplicates, rejected = _accounted(con)
    data = path.read_bytes().removeprefix(b"\xef\xbb\xbf")
    # A line ends at "\n", "\r\n" or a lone "\r" (classic Mac line ends); the last may lack one.
    ends = len(re.findall(rb"\r\n|\r|\n", data))
    assert total == result.lines == ends + (0 if data.endswith((b"\n", b"\r")) or not data else 1)
    assert stored + duplicates + rejected == total
    con.close()


def _big_log(path: Path, runs: int) -> None:
    with path.open("w", encoding="utf-8") as f:
        for r in range(runs):
            for v in range(1, 9):
                ts = f"2026-11-12T{(r // 3600) % 24:02d}:{(r // 60) % 60:02d}:{r % 60:02d}.{v:06d}Z"
                f.write(json.dumps({"log": f"{v}/u script_{v} ({v * 10 + r % 7}.5ms)\n", "stream": "stderr",
                                    "time": ts, "attrs": {"env": "prod"}}) + "\n")


@pytest.mark.slow
def test_an_ingest_killed_with_sigkill_then_rerun_ends_with_the_uninterrupted_counts(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    for n in range(3):
        _big_log(logs / f"c{n}-json.log", 6000)
    config = tmp_path / "lens.toml"
    config.write_text("[ingest]\nbatch_lines = 5000\n", encoding="utf-8")
    db = tmp_path / "killed.duckdb"
    killed_mid_run = ingest_killed_midway(db, config, logs, wal_bytes=200_000, timeout=60) == -signal.SIGKILL
    again = CliRunner().invoke(main, ["--config", str(config), "--db", str(db), "--no-progress", "ingest", str(logs)])
    assert again.exit_code == 0, again.stderr
    clean = connect(tmp_path / "clean.duckdb")
    ingest(clean, [str(logs)], config=Config(), progress=False)
    resumed = connect(db)
    for table in ("log_lines", "rejects", "migrate_events", "runs", "ingested_sources"):
        assert rows(resumed, f"SELECT count(*) FROM {table}") == rows(clean, f"SELECT count(*) FROM {table}"), table
    assert rows(resumed, "SELECT count(*) - count(DISTINCT line_id) FROM log_lines") == [(0,)]
    assert rows(resumed, "SELECT count(*) FROM pending_sources") == [(0,)]
    assert killed_mid_run, "the ingest finished before it could be killed: make the input bigger"
    resumed.close()
    clean.close()


def test_no_secret_reaches_the_report_the_emails_or_the_terminal(sample_template: SampleTemplate, tmp_path):
    """A leaking log run through `run` into a warehouse that already holds the demo fleet (its leaked DSN too)."""
    logs = tmp_path / "logs" / "env=prod" / "service=billing" / "database=tenant_001"
    logs.mkdir(parents=True)
    (logs / "leak.log").write_text("".join(f'error: failed to open database, "{text}"\n' for text, _ in SECRETS),
                                   encoding="utf-8")
    out = tmp_path / "out"
    db = sample_template.copy(tmp_path / "w.duckdb")
    runner = CliRunner()
    job = runner.invoke(main, ["--db", str(db), "--out", str(out), "--as-of", sample_truth()["as_of"], "run",
                               str(SAMPLE_LOGS), str(tmp_path / "logs"), "--dry-run"])
    assert job.exit_code == 0, job.stderr
    shown = runner.invoke(main, ["--db", str(db), "query", "SELECT message FROM log_lines WHERE source_uri LIKE '%leak%'",
                                 "--format", "csv"])
    errors = runner.invoke(main, ["--db", str(db), "query", "SELECT error_text FROM runs", "--format", "json"])
    outputs = {"run stdout": job.stdout, "query table": shown.stdout, "query json": errors.stdout}
    for path in [*out.rglob("*.html"), *out.rglob("*.eml")]:
        outputs[str(path)] = path.read_text(encoding="utf-8", errors="replace")
    assert any(p.endswith(".eml") for p in outputs) and any(p.endswith(".html") for p in outputs)
    assert len(shown.stdout.splitlines()) == len(SECRETS) + 1 and "***" in shown.stdout
    for where, text in outputs.items():
        for secret in [*(secret for _, secret in SECRETS), *sample_truth()["secrets"]]:
            assert secret not in text, (where, secret)


def test_terminal_escape_sequences_from_logs_are_shown_not_obeyed(tmp_path):
    log = tmp_path / "x.log"
    log.write_bytes(b"1/u evil\x1b]0;owned\x07\x1b[2J (3ms)\n")
    db = tmp_path / "w.duckdb"
    runner = CliRunner()
    assert runner.invoke(main, ["--db", str(db), "ingest", str(log)]).exit_code == 0
    table = runner.invoke(main, ["--db", str(db), "query", "SELECT name FROM migrate_events"])
    assert "\x1b" not in table.stdout and "\x07" not in table.stdout
    assert "\\x1b]0;owned\\x07\\x1b[2J" in table.stdout

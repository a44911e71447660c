"""The demo fleet in sample_logs/: every planted incident is rebuilt, every line is accounted for, and the
generator still writes exactly the committed files.

What to expect is read from sample_logs/expected.jsonc, which the generator writes from the scenario it
planted (the incidents are listed in sample_logs/README.md).
"""

from __future__ import annotations

import gzip
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest
import zstandard

from .conftest import ROOT, SAMPLE_LOGS, SampleTemplate, rows, sample_truth

TRUTH = sample_truth()


@pytest.fixture(scope="module")
def fleet(sample_template: SampleTemplate, tmp_path_factory: pytest.TempPathFactory):
    con = duckdb.connect(str(sample_template.copy(tmp_path_factory.mktemp("fleet") / "fleet.duckdb")), read_only=True)
    yield con, sample_template.ingest
    con.close()


def _when(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).replace(tzinfo=None)


def _relative(uri: str) -> str:
    return Path(uri).relative_to(SAMPLE_LOGS).as_posix()


def test_every_file_is_read_with_its_envelope_and_every_record_accounted_for(fleet):
    con, result = fleet
    got = {_relative(uri): (fmt, lines)
           for uri, fmt, lines in rows(con, "SELECT source_uri, format, lines FROM ingested_sources")}
    assert got.keys() == TRUTH["sources"].keys()
    for name, want in TRUTH["sources"].items():
        fmt, lines = got[name]
        assert lines == want["records"], name
        assert fmt == want["format"] or lines == 0, name  # an empty file shows no envelope
    stored, rejected = rows(con, "SELECT (SELECT count(*) FROM log_lines), (SELECT count(*) FROM rejects)")[0]
    assert result.lines == TRUTH["records"] == stored + rejected + result.duplicates


def test_planted_bad_records_are_rejected_with_their_reason(fleet):
    con, _ = fleet
    got = [{"source": _relative(uri), "line": line, "reason": reason}
           for uri, line, reason in rows(con, "SELECT source_uri, line_no, reason FROM rejects ORDER BY 1, 2")]
    assert got == TRUTH["rejects"]


def test_overlapping_loki_exports_are_stored_once(fleet):
    con, result = fleet
    repeated = TRUTH["duplicates"]
    assert result.duplicates == repeated["records"] > 0
    assert rows(con, "SELECT sum(duplicates) FROM ingested_sources WHERE source_uri IN (SELECT unnest(?::VARCHAR[]))",
                [[str(SAMPLE_LOGS / name) for name in repeated["between"]]]) == [(repeated["records"],)]
    assert rows(con, "SELECT count(*) - count(DISTINCT line_id) FROM log_lines") == [(0,)]


def test_every_run_is_rebuilt_with_its_outcome(fleet):
    con, _ = fleet
    got: dict[str, Counter[str]] = {}
    for service, env, outcome, n in rows(con, "SELECT service, env, outcome, count(*) FROM runs GROUP BY ALL"):
        got.setdefault(f"{service}/{env}", Counter())[outcome] = n
    assert {k: dict(v) for k, v in got.items()} == TRUTH["runs"]


@pytest.mark.parametrize("incident", TRUTH["incidents"], ids=lambda i: f"{i['id']}-{i['env']}-{i['service']}")
def test_planted_incident_is_rebuilt_as_its_run(incident, fleet):
    """The run in the incident's stream (pod, log stream, run id, container or file) nearest its first line."""
    con, _ = fleet
    found = rows(con, """
        SELECT outcome, error_class, applied, dirty_version, command, command_known, exit_code, to_version,
               abs(epoch(started_at) - epoch(?::TIMESTAMP)) AS off_s
        FROM runs WHERE env = ? AND service = ? AND database = ? AND contains(stream_key, ?)
        ORDER BY off_s LIMIT 1""", [_when(incident["first_line"]), incident["env"], incident["service"],
                                   incident["database"], incident["stream"]])
    assert found, f"no run in stream {incident['stream']}"
    outcome, error_class, applied, dirty_version, command, command_known, exit_code, to_version, off_s = found[0]
    assert off_s < 5
    assert (outcome, error_class, applied, dirty_version) == (
        incident["outcome"], incident["error_class"], incident["applied"], incident["dirty_version"])
    if command_known:  # a wrapper said which command ran; otherwise the command is inferred from the lines
        assert command == incident["command"]
    if exit_code is not None:  # only a wrapper records how migrate exited
        assert exit_code == incident["exit_code"]
    if "version_after" in incident:
        assert to_version == incident["version_after"]


def test_the_analysis_finds_exactly_the_planted_findings(sample_template: SampleTemplate, tmp_path):
    con = duckdb.connect(str(sample_template.copy(tmp_path / "w.duckdb")), read_only=True)
    found = rows(con, "SELECT kind, status, env, service, database, version FROM findings")
    con.close()
    for want in TRUTH["findings"]:
        matches = [f for f in found if (f[0], *f[2:]) == (want["kind"], want["env"], want["service"], want["database"],
                                                          want["version"]) and f[1] == want.get("status", f[1])]
        assert len(matches) == 1, (want, matches)
    assert len(found) == len(TRUTH["findings"])


def test_each_database_ends_at_the_version_the_fleet_ended_with(fleet):
    con, _ = fleet
    last = rows(con, "SELECT env, service, database, max_by(to_version, started_at) FROM runs "
                     "GROUP BY ALL ORDER BY ALL")
    assert last == sorted((s["env"], s["service"], s["database"], s["version"]) for s in TRUTH["final_state"])


def test_the_database_left_dirty_is_dirty_at_the_end(fleet):
    con, _ = fleet
    dirty = sorted((s["env"], s["service"], s["database"], s["version"]) for s in TRUTH["final_state"] if s["dirty"])
    assert dirty  # tenant_007 is left dirty on purpose (incident 2)
    assert rows(con, "SELECT env, service, database, version FROM findings WHERE kind = 'dirty_open' "
                     "AND status = 'open' ORDER BY ALL") == dirty
    for env, service, database, _ in dirty:  # the on-call's `version` run says so too
        assert rows(con, "SELECT name FROM migrate_events WHERE (env, service, database) = (?, ?, ?) "
                         "AND kind = 'version' ORDER BY ts DESC LIMIT 1", [env, service, database]) == [("(dirty)",)]


def test_down_steps_and_the_empty_down_file(fleet):
    con, _ = fleet
    downs = rows(con, "SELECT env, service, database, version, name FROM migrate_events "
                      "WHERE kind = 'applied' AND direction = 'down' ORDER BY ts, seq")
    assert downs == [(d["env"], d["service"], d["database"], d["version"], d["name"]) for d in TRUTH["down_steps"]]
    assert any(d["name"] == "<empty>" for d in TRUTH["down_steps"])


def test_no_line_lacks_metadata(fleet):
    con, _ = fleet
    assert rows(con, "SELECT count(*) FROM runs WHERE 'unknown' IN (env, service, database)") == [(0,)]


def test_leaked_dsn_password_is_nowhere(fleet):
    con, _ = fleet
    for secret in TRUTH["secrets"]:
        for table, column in [("log_lines", "message"), ("migrate_events", "error_text"), ("runs", "error_text"),
                              ("rejects", "raw"), ("findings", "explanation")]:
            assert rows(con, f"SELECT count(*) FROM {table} WHERE contains({column}, ?)", [secret]) == [(0,)]
    leaks = sum(i["error_class"] == "dns" for i in TRUTH["incidents"])  # the DSN is in a DNS error (10c)
    assert rows(con, "SELECT count(*) FROM runs WHERE error_class = 'dns' AND contains(error_text, 'billing:***@')") == [
        (leaks,)]


def test_level_shift_durations_are_derived_per_script(fleet):
    con, _ = fleet
    shift = TRUTH["level_shift"]
    by_week = dict(rows(con, """
        SELECT strftime(ts, '%G-W%V'), median(own_ms) FROM migrate_events
        WHERE env = ? AND service = ? AND version = ? AND kind = 'applied' AND direction = 'up' GROUP BY 1""",
                        [shift["env"], shift["service"], shift["version"]]))
    for week, typical_ms in shift["typical_ms"].items():
        assert by_week[week] == pytest.approx(typical_ms, rel=0.25), week


def _content(path: Path) -> bytes:
    """What a reader gets: compressed files compared decompressed (library builds may pack differently)."""
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        return gzip.decompress(data)
    if path.name.endswith(".zst"):
        return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    return data


@pytest.mark.slow
def test_regenerating_sample_logs_reproduces_the_committed_files(tmp_path):
    out = tmp_path / "sample_logs"
    done = subprocess.run([sys.executable, str(SAMPLE_LOGS / "generate.py"), "--out", str(out)], cwd=ROOT,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    committed = sorted(p.relative_to(SAMPLE_LOGS).as_posix() for p in SAMPLE_LOGS.rglob("*")
                       if p.is_file() and p.suffix not in (".py", ".pyc", ".md"))
    assert written == committed
    for name in written:
        assert _content(out / name) == _content(SAMPLE_LOGS / name), name
    # bare default-mode text has no timestamps: its time is the file's mtime, which the generator sets
    bare = "text/bare/env=staging/service=catalog/database=catalog/up-2026-11-10.txt"
    end = max(_when(i["first_line"]) for i in TRUTH["incidents"] if i["stream"] == bare)
    assert abs(datetime.fromtimestamp((out / bare).stat().st_mtime, UTC).replace(tzinfo=None) - end).total_seconds() < 5

"""Small sources are stored many at a time (one staging pass, one transaction per group): every guarantee
of a source stored on its own still holds per source."""

from __future__ import annotations

import gzip
import json
import os
import signal
import zlib
from pathlib import Path

import pytest
from click.testing import CliRunner
from fsspec.implementations.local import LocalFileSystem

from pipeline.api import ingest
from pipeline.cli import main
from pipeline.core.config import Config, IngestConfig
from pipeline.warehouse import connect

from .conftest import rows
from .kit.kill import ingest_killed_midway

ALONE = Config(ingest=IngestConfig(group_source_bytes=0))  # every source on its own, batch by batch


def _docker(v: int, second: int = 0) -> str:
    return json.dumps({"log": f"{v}/u step_{v} ({v}.5ms)\n", "stream": "stderr",
                       "time": f"2026-11-12T10:00:{second:02d}.{v:06d}Z"})


def _write(path: Path, text: str | bytes, mtime: float | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def _fleet(root: Path) -> Path:
    """Sources of several envelopes whose per-source state would leak into a neighbour if a group mixed it up."""
    # Text: a line without a time of its own takes the last one before it in its own file, else the file's
    # mtime, never a time from the file before it in the group.
    _write(root / "a" / "migrate.txt", "2026/11/12 10:00:00 1/u create_users (2.5ms)\n2/u add_email (3.5ms)\n",
           mtime=1_790_000_000)
    _write(root / "b" / "migrate.txt", "no change\n", mtime=1_790_086_400)
    # One container's log and its rotated copy overlap by two lines: stored once, by the first source listed.
    lines = [_docker(v) for v in range(1, 7)]
    _write(root / "c" / "c0ffee-json.log.1", "".join(ln + "\n" for ln in lines[:4]))
    _write(root / "c" / "c0ffee-json.log", "".join(ln + "\n" for ln in lines[2:]))
    # The same SQL line twice in each of two pods of one stream: numbered per source, so the second pod's
    # three lines are the first pod's three (duplicates), not two more copies of the SQL line.
    for pod in ("d", "e"):
        _write(root / pod / "pod.jsonl", "".join(json.dumps({
            "time": "2026-11-12T11:00:00.5Z", "_p": "F", "log": text,
            "kubernetes": {"pod_name": "schema-migrate-x", "namespace_name": "shop", "container_name": "migrate"},
        }) + "\n" for text in ["error: migration failed in line 0: ALTER TABLE t;", "ALTER TABLE t;", "ALTER TABLE t;"]))
    # A source with bad records and a damaged one among the good ones.
    _write(root / "f" / "mixed-json.log", (_docker(7) + "\n{broken\n").encode() + b"\xff\xfe\n" + _docker(8).encode())
    packed = gzip.compress("".join(_docker(v, 30) + "\n" for v in range(20)).encode())
    _write(root / "g" / "cut-json.log.gz", packed[: len(packed) * 3 // 5])
    _write(root / "h" / "empty-json.log", "")
    return root


def _tables(con) -> dict[str, list[tuple]]:
    return {
        "sources": rows(con, "SELECT source_uri, format, lines, rejected, duplicates, damage FROM ingested_sources "
                             "ORDER BY 1"),
        "lines": rows(con, "SELECT line_id, source_uri, line_no, ts, ts_origin, stream_key, message, partial "
                           "FROM log_lines ORDER BY 1"),
        "rejects": rows(con, "SELECT source_uri, line_no, reason, raw FROM rejects ORDER BY 1, 2"),
        "runs": rows(con, "SELECT stream_key, started_at, outcome, applied FROM runs ORDER BY 1, 2"),
    }


def test_a_group_stores_each_source_exactly_as_it_would_be_stored_on_its_own(tmp_path):
    logs = _fleet(tmp_path / "logs")
    grouped, alone = connect(tmp_path / "grouped.duckdb"), connect(tmp_path / "alone.duckdb")
    result = ingest(grouped, [str(logs)], config=Config(), progress=False)
    ingest(alone, [str(logs)], config=ALONE, progress=False)
    assert _tables(grouped) == _tables(alone)
    whole, fragment = zlib.decompressobj(wbits=31).decompress((logs / "g" / "cut-json.log.gz").read_bytes()).rsplit(
        b"\n", 1)
    kept = whole.count(b"\n") + 1
    assert fragment, "the cut must fall inside a line for this test"
    assert (result.sources, result.lines, result.stored, result.rejected, result.duplicates, result.damaged) == (
        9, 23 + kept, 14 + kept, 4, 5, 1)
    by_source = {Path(uri).parent.name + "/" + Path(uri).name: counts
                 for uri, *counts in rows(grouped, "SELECT source_uri, lines, rejected, duplicates FROM ingested_sources")}
    assert by_source["c/c0ffee-json.log"] == [4, 0, 0] and by_source["c/c0ffee-json.log.1"] == [4, 0, 2]
    assert by_source["d/pod.jsonl"] == [3, 0, 0] and by_source["e/pod.jsonl"] == [3, 0, 3]
    assert by_source["f/mixed-json.log"] == [4, 2, 0]
    assert rows(grouped, "SELECT line_no, reason FROM rejects WHERE source_uri LIKE '%mixed-json.log' ORDER BY 1") == [
        (2, "malformed_json"), (3, "invalid_utf8")]
    assert rows(grouped, "SELECT line_no FROM log_lines WHERE source_uri LIKE '%mixed-json.log' ORDER BY 1") == [
        (1,), (4,)]
    assert rows(grouped, "SELECT reason FROM rejects WHERE source_uri LIKE '%cut-json.log.gz' ORDER BY line_no")[-2:] == [
        ("truncated_record",), ("truncated_compressed_stream",)]
    assert rows(grouped, "SELECT count(*) FROM rejects WHERE source_uri NOT SIMILAR TO '.*(mixed|cut)-json.*'") == [(0,)]
    assert rows(grouped, "SELECT epoch(ts)::BIGINT, ts_origin FROM log_lines WHERE source_uri LIKE '%/a/migrate.txt' "
                         "ORDER BY line_no") == [(1_794_477_600, "verbose")] * 2
    assert rows(grouped, "SELECT epoch(ts)::BIGINT, ts_origin FROM log_lines WHERE source_uri LIKE '%/b/migrate.txt'") == [
        (1_790_086_400, "mtime")]
    grouped.close()
    alone.close()


def test_a_source_that_cannot_be_read_is_left_out_of_its_group_and_read_next_run(tmp_path, monkeypatch, warehouse):
    logs = tmp_path / "logs"
    for n in range(6):
        _write(logs / f"c{n}-json.log", "".join(_docker(v, n) + "\n" for v in range(1, 4)))
    locked = logs / "c3-json.log"
    real_open = LocalFileSystem._open
    opened: list[str] = []

    def refuse_after_fingerprint(self, name, *args, **kwargs):
        opened.append(str(name))
        if Path(name) == locked and opened.count(str(name)) > 1:  # fingerprinted, then refused when read
            raise PermissionError(13, "Permission denied", str(name))
        return real_open(self, name, *args, **kwargs)

    monkeypatch.setattr(LocalFileSystem, "_open", refuse_after_fingerprint)
    first = ingest(warehouse, [str(logs)], config=Config(), progress=False)
    assert first.failed == (f"{locked}: permission denied (check read access)",)
    assert (first.sources, first.stored) == (5, 15)
    assert rows(warehouse, "SELECT count(*) FROM log_lines WHERE source_uri = ?", [str(locked)]) == [(0,)]
    assert rows(warehouse, "SELECT count(*) FROM ingested_sources WHERE source_uri = ?", [str(locked)]) == [(0,)]
    monkeypatch.setattr(LocalFileSystem, "_open", real_open)
    second = ingest(warehouse, [str(logs)], config=Config(), progress=False)
    assert (second.sources, second.skipped, second.stored, second.failed) == (1, 5, 3, ())
    assert rows(warehouse, "SELECT line_no FROM log_lines WHERE source_uri = ? ORDER BY 1", [str(locked)]) == [
        (1,), (2,), (3,)]


def test_a_read_that_fails_for_a_moment_is_retried_within_the_group(tmp_path, monkeypatch, warehouse):
    logs = tmp_path / "logs"
    for n in range(3):
        _write(logs / f"c{n}-json.log", "".join(_docker(v, n) + "\n" for v in range(1, 4)))
    flaky = logs / "c1-json.log"
    real_open = LocalFileSystem._open
    calls = {"n": 0}

    def reset_twice(self, name, *args, **kwargs):
        if Path(name) == flaky:
            calls["n"] += 1
            if calls["n"] in (2, 3):  # the fingerprint's open succeeds, then two reads are reset
                raise ConnectionResetError(104, "Connection reset by peer")
        return real_open(self, name, *args, **kwargs)

    monkeypatch.setattr(LocalFileSystem, "_open", reset_twice)
    monkeypatch.setattr("pipeline.ingest.BACKOFF_SECONDS", 0.01)
    result = ingest(warehouse, [str(logs)], config=Config(), progress=False)
    assert (result.sources, result.stored, result.failed, calls["n"]) == (3, 9, (), 4)


def test_an_ingest_killed_during_grouped_loads_leaves_no_half_loaded_source_and_a_rerun_gives_exact_counts(tmp_path):
    logs = tmp_path / "logs"
    for n in range(400):  # 400 pod logs of 120 lines, 600 lines a group: dozens of group transactions
        _write(logs / f"pod{n:03d}" / "c0ffee-json.log",
               "".join(_docker(v, n % 60) + "\n" for v in range(n * 1000, n * 1000 + 120)))
    config = tmp_path / "lens.toml"
    config.write_text("[ingest]\ngroup_lines = 600\n", encoding="utf-8")
    db = tmp_path / "killed.duckdb"
    assert ingest_killed_midway(db, config, logs, wal_bytes=400_000) == -signal.SIGKILL, "the ingest finished before it could be killed: make the input bigger"
    killed = connect(db)
    stored = rows(killed, "SELECT count(*) FROM ingested_sources")[0][0]
    assert 0 < stored < 400
    # Every source is stored whole or not at all: no line of a source that is not marked ingested.
    assert rows(killed, "SELECT count(*) FROM log_lines WHERE source_uri NOT IN "
                        "(SELECT source_uri FROM ingested_sources)") == [(0,)]
    assert rows(killed, "SELECT count(*) FROM (SELECT source_uri FROM log_lines GROUP BY 1 HAVING count(*) <> 120)") == [
        (0,)]
    killed.close()
    again = CliRunner().invoke(main, ["--config", str(config), "--db", str(db), "--no-progress", "ingest", str(logs)])
    assert again.exit_code == 0, again.stderr
    clean = connect(tmp_path / "clean.duckdb")
    ingest(clean, [str(logs)], config=Config(), progress=False)
    resumed = connect(db)
    for table in ("log_lines", "rejects", "migrate_events", "runs", "ingested_sources"):
        assert rows(resumed, f"SELECT count(*) FROM {table}") == rows(clean, f"SELECT count(*) FROM {table}"), table
    assert rows(resumed, "SELECT count(*) - count(DISTINCT line_id) FROM log_lines") == [(0,)]
    assert rows(resumed, "SELECT sum(lines), sum(duplicates) FROM ingested_sources") == [(48_000, 0)]
    resumed.close()
    clean.close()


@pytest.mark.parametrize("group_sources", [1, 2, 1000])
def test_the_group_size_changes_nothing_that_is_stored(tmp_path, group_sources):
    logs = _fleet(tmp_path / "logs")
    con = connect(tmp_path / "w.duckdb")
    ingest(con, [str(logs)], config=Config(ingest=IngestConfig(group_sources=group_sources)), progress=False)
    reference = connect(tmp_path / "alone.duckdb")
    ingest(reference, [str(logs)], config=ALONE, progress=False)
    assert _tables(con) == _tables(reference)
    con.close()
    reference.close()

"""Parse rebuilds only what changed: the runs of the touched streams, and each touched database's version chain
from the first changed run on. What it stores is what a rebuild of everything would store."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.api import ingest
from pipeline.core.config import Config
from pipeline.ingest.sources import discover
from pipeline.warehouse import connect

from .conftest import SAMPLE_LOGS, rows

RUNS = ("SELECT run_id, stream_key, env, service, database, started_at, ended_at, command, applied, from_version, "
        "to_version, outcome, error_class, left_dirty, dirty_version, version_seen, version_shown, "
        "next_dirty_version, next_dirty_at FROM runs ORDER BY run_id")
# One service's three envs, whose failures are named by each other's evidence, then an unrelated source.
SOURCES = [SAMPLE_LOGS / "slog" / "identity-prod.jsonl.zst", SAMPLE_LOGS / "slog" / "identity-staging.jsonl",
           SAMPLE_LOGS / "slog" / "identity-dev.jsonl", SAMPLE_LOGS / "kubernetes" / "orders-2026-W44.jsonl"]


def _all_at_once(tmp_path: Path, sources: list[Path]) -> list[tuple]:
    con = connect(tmp_path / "all.duckdb")
    ingest(con, [str(s) for s in sources], config=Config(), progress=False)
    runs = rows(con, RUNS)
    con.close()
    return runs


@pytest.mark.parametrize("order", ["listed", "reversed"])
def test_sources_ingested_one_at_a_time_in_any_order_give_the_runs_of_one_ingest(tmp_path, order):
    sources = SOURCES[:3][:: -1 if order == "reversed" else 1] + SOURCES[3:]
    con = connect(tmp_path / "one-by-one.duckdb")
    for source in sources:
        ingest(con, [str(source)], config=Config(), progress=False)
    assert rows(con, RUNS) == _all_at_once(tmp_path, SOURCES)
    # the evidence crosses files: a default-mode failure named from another env's applied versions
    assert rows(con, "SELECT count(*) FROM runs WHERE outcome = 'failed' AND NOT version_shown "
                     "AND dirty_version IS NOT NULL AND to_version = dirty_version") != [(0,)]
    con.close()


def test_a_rebuild_in_many_parts_gives_the_runs_of_one_part(tmp_path, monkeypatch):
    monkeypatch.setattr("pipeline.parse.REBUILD_LINES", 150)
    con = connect(tmp_path / "parts.duckdb")
    ingest(con, [str(s) for s in SOURCES], config=Config(), progress=False)
    assert rows(con, RUNS) == _all_at_once(tmp_path, SOURCES)
    con.close()


EVENTS = "SELECT * FROM migrate_events ORDER BY stream_key, seq"


def test_events_sequenced_in_small_chunks_are_the_events_of_one_chunk(tmp_path, monkeypatch):
    # sample logs of every envelope: pieces of long lines, error blocks, verbose and default mode, wrappers
    sources = [str(SAMPLE_LOGS)]
    whole = connect(tmp_path / "whole.duckdb")
    ingest(whole, sources, config=Config(), progress=False)
    monkeypatch.setattr("pipeline.parse.events.CHUNK_LINES", 40)
    chunked = connect(tmp_path / "chunked.duckdb")
    ingest(chunked, sources, config=Config(), progress=False)
    [(chunks,)] = rows(chunked, "SELECT count(DISTINCT chunk) FROM event_streams")
    assert chunks > 1
    assert rows(chunked, EVENTS) == rows(whole, EVENTS)
    assert rows(chunked, RUNS) == rows(whole, RUNS)
    whole.close()
    chunked.close()


def test_a_stream_too_long_for_memory_is_sequenced_by_window_queries_to_the_same_events(tmp_path, monkeypatch):
    sources = [str(SAMPLE_LOGS)]
    whole = connect(tmp_path / "whole.duckdb")
    ingest(whole, sources, config=Config(), progress=False)
    calls = []
    monkeypatch.setattr("pipeline.parse.events.WINDOWED_LINES", 40)
    monkeypatch.setattr("pipeline.parse.events._sequence_chunk", lambda *a: calls.append(a))
    windowed = connect(tmp_path / "windowed.duckdb")
    ingest(windowed, sources, config=Config(), progress=False)
    assert calls == []  # every chunk of the sample logs is longer than 40 lines: none went to polars
    assert rows(windowed, EVENTS) == rows(whole, EVENTS)
    assert rows(windowed, RUNS) == rows(whole, RUNS)
    whole.close()
    windowed.close()


def test_a_new_source_rechains_only_its_own_databases_from_its_first_run_on(tmp_path, warehouse):
    orders = [s.uri for s in discover([str(SAMPLE_LOGS / "kubernetes")]).sources]
    ingest(warehouse, [str(SAMPLE_LOGS / "slog"), orders[0]], config=Config(), progress=False)
    # Marks that no rebuild would leave: on another service's runs, and on every orders run so far (those
    # before the new file's first run are on a chain that cannot change up to there).
    warehouse.execute("UPDATE runs SET from_version = -42 WHERE service = 'identity'")
    warehouse.execute("UPDATE runs SET to_version = -42 WHERE service = 'orders'")
    before = rows(warehouse, "SELECT count(*) FROM runs WHERE service = 'orders'")[0][0]
    ingest(warehouse, [orders[1]], config=Config(), progress=False)
    [(start,)] = rows(warehouse, "SELECT min(started_at) FROM runs WHERE stream_key IN "
                                 "(SELECT stream_key FROM log_lines WHERE source_uri = ?)", [orders[1]])
    assert rows(warehouse, "SELECT count(*) FROM runs WHERE service = 'orders'")[0][0] > before
    assert rows(warehouse, "SELECT count(*) FROM runs WHERE service = 'identity' AND from_version <> -42") == [(0,)]
    assert rows(warehouse, "SELECT count(*) FROM runs WHERE service = 'orders' AND started_at < ? "
                           "AND to_version IS DISTINCT FROM -42", [start]) == [(0,)]
    assert rows(warehouse, "SELECT count(*) FROM runs WHERE service = 'orders' AND started_at >= ? "
                           "AND to_version = -42", [start]) == [(0,)]

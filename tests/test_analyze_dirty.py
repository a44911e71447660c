"""The dirty rule has one home, the warehouse's `dirty_episodes(as_of)` macro: the `dirty_open` and
`forced_recovery` findings and the named queries dirty_now, dirty_mttr, forced_recoveries and
current_versions must tell the same story about the same warehouse."""

from __future__ import annotations

import statistics
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from pipeline.analyze import analyze
from pipeline.api import ingest
from pipeline.core.config import Config
from pipeline.core.vocabulary import CLEAN_OUTCOMES, OUTCOMES
from pipeline.query import run_query
from pipeline.warehouse import connect

from .kit.fleet import Fleet

T0 = datetime(2026, 10, 5, 10, 0)
AS_OF = T0 + timedelta(days=2)


def dirty_fleet(fleet: Fleet) -> None:
    """Dirty episodes of every shape on three databases."""
    # prod/orders: 5 fails, `up` is refused as dirty, a lock timeout inside the episode (neither dirty nor clean:
    # the episode goes on), then forced back and applied cleanly; a day later a killed run leaves 6 dirty.
    fleet.up("prod", "orders", "orders", T0, [(4, "add_status", 10.0)])
    fleet.fail("prod", "orders", "orders", T0 + timedelta(hours=1), 5, "add_refunds")
    fleet.dirty("prod", "orders", "orders", T0 + timedelta(hours=2), 5)
    fleet.lock_timeout("prod", "orders", "orders", T0 + timedelta(hours=3))
    fleet.up("prod", "orders", "orders", T0 + timedelta(hours=5), [(5, "add_refunds", 12.0)])
    fleet.killed("prod", "orders", "orders", T0 + timedelta(days=1), 6, "add_index")
    # staging/search: `version` printing `3 (dirty)` opens an episode; a `no change` run closes it.
    fleet.version("staging", "search", "search", T0 + timedelta(hours=2), 3, dirty=True)
    fleet.no_change("staging", "search", "search", T0 + timedelta(hours=4))
    # prod/billing/tenant_01: two pods start at the same instant on a dirty database; one is refused at 7, the
    # other's `version` prints `8 (dirty)`. One episode, whichever order the warehouse reads them in.
    tie = T0 + timedelta(hours=6)
    fleet.dirty("prod", "billing", "tenant_01", tie, 7)
    fleet.version("prod", "billing", "tenant_01", tie, 8, dirty=True)
    fleet.no_change("prod", "billing", "tenant_01", tie + timedelta(hours=2))


@pytest.fixture(scope="module")
def analysed(tmp_path_factory) -> Path:
    """The dirty fleet ingested and analysed as of AS_OF; tests open it read-only, as the query command does."""
    root = tmp_path_factory.mktemp("dirty")
    fleet = Fleet(root / "logs")
    dirty_fleet(fleet)
    con = connect(root / "w.duckdb")
    try:
        ingest(con, [str(fleet.root)], config=Config(), progress=False)
        analyze(con, config=Config(), as_of=AS_OF)
    finally:
        con.close()
    return root / "w.duckdb"


@pytest.fixture
def ro(analysed: Path):
    con = connect(analysed, read_only=True)
    yield con
    con.close()


def findings(con: duckdb.DuckDBPyConnection, kind: str) -> list[dict]:
    cur = con.execute("SELECT * FROM findings WHERE kind = ? ORDER BY ts, finding_id", [kind])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def query(con: duckdb.DuckDBPyConnection, name: str, **params: str) -> list[dict]:
    return run_query(con, name, {"as_of": AS_OF.isoformat(), **params}).to_dicts()


def test_dirty_now_lists_exactly_the_open_dirty_findings(ro):
    open_findings = {(f["env"], f["service"], f["database"], f["version"], f["ts"], f["run_id"])
                     for f in findings(ro, "dirty_open") if f["status"] == "open"}
    dirty_now = {(r["env"], r["service"], r["database"], r["dirty_version"], r["dirty_since"], r["cause_run_id"])
                 for r in query(ro, "dirty_now")}
    assert dirty_now == open_findings
    assert {k[:4] for k in dirty_now} == {("prod", "orders", "orders", 6)}


def test_forced_recoveries_are_the_resolved_dirty_findings_and_their_forced_recoveries(ro):
    resolved = {(f["env"], f["service"], f["database"], f["version"], f["ts"], f["resolved_at"])
                for f in findings(ro, "dirty_open") if f["status"] == "resolved"}
    forced = {(f["env"], f["service"], f["database"], f["version"], f["ts"], f["run_id"])
              for f in findings(ro, "forced_recovery")}
    rows = query(ro, "forced_recoveries", days="3650")
    assert {(r["env"], r["service"], r["database"], r["dirty_version"], r["dirty_since"], r["recovered_at"])
            for r in rows} == resolved
    assert {(r["env"], r["service"], r["database"], r["dirty_version"], r["recovered_at"], r["clean_run_id"])
            for r in rows} == forced
    assert sorted(k[:3] for k in resolved) == [("prod", "billing", "tenant_01"), ("prod", "orders", "orders"),
                                               ("staging", "search", "search")]


def test_dirty_mttr_is_computed_from_the_same_episodes_as_the_findings(ro):
    by_service: dict[tuple[str, str], list[dict]] = {}
    for f in findings(ro, "dirty_open"):
        by_service.setdefault((f["env"], f["service"]), []).append(f)
    rows = query(ro, "dirty_mttr", days="3650")
    assert {(r["env"], r["service"]) for r in rows} == set(by_service)
    for r in rows:
        found = by_service[(r["env"], r["service"])]
        hours = [f["observed"] / 60 for f in found if f["status"] == "resolved"]
        open_hours = [f["observed"] / 60 for f in found if f["status"] == "open"]
        assert (r["recovered"], r["open_now"]) == (len(hours), len(open_hours)), r
        if hours:
            assert r["mttr_hours"] == pytest.approx(statistics.mean(hours), abs=0.06)
            assert r["worst_hours"] == pytest.approx(max(hours), abs=0.06)
        if open_hours:
            assert r["open_hours"] == pytest.approx(max(open_hours), abs=0.06)


def test_current_versions_marks_dirty_exactly_the_databases_dirty_now_lists(ro):
    dirty = {(r["env"], r["service"], r["database"]) for r in query(ro, "current_versions") if r["dirty"]}
    assert dirty == {(r["env"], r["service"], r["database"]) for r in query(ro, "dirty_now")}
    assert dirty == {("prod", "orders", "orders")}


def test_runs_starting_at_the_same_instant_are_read_in_run_id_order_by_findings_and_queries(ro):
    # The episode starts at the first of the two runs and carries the dirty version of the last, in
    # (started_at, run_id) order: the same for the finding and for the query, however DuckDB scans the table.
    (first_id, _), (_, last_version) = ro.execute(
        "SELECT run_id, dirty_version FROM runs WHERE database = 'tenant_01' AND dirty_version IS NOT NULL "
        "ORDER BY started_at, run_id").fetchall()
    [d] = [f for f in findings(ro, "dirty_open") if f["database"] == "tenant_01"]
    assert (d["run_id"], d["version"]) == (first_id, last_version)
    [r] = [r for r in query(ro, "forced_recoveries", days="3650") if r["database"] == "tenant_01"]
    assert (r["dirty_version"], r["dirty_runs"]) == (last_version, 2)


@pytest.mark.parametrize("outcome", OUTCOMES)
def test_a_clean_run_is_a_clean_outcome_without_dirty_evidence(warehouse, outcome):
    [(evidence, clean)] = warehouse.execute(
        "SELECT dirty_evidence(false, $o, NULL), is_clean_run(false, $o, NULL)", {"o": outcome}).fetchall()
    assert (evidence, clean) == (outcome == "dirty", outcome in CLEAN_OUTCOMES)
    # a run that left the database dirty, or printed a dirty version, is never clean, whatever its outcome
    [(left, printed)] = warehouse.execute(
        "SELECT is_clean_run(true, $o, NULL), is_clean_run(false, $o, 5)", {"o": outcome}).fetchall()
    assert (left, printed) == (False, False)

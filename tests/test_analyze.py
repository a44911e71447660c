"""Analysis: script baselines, findings and rollback readiness, rebuilt for one clock.

Every test builds a small fleet in code (tests/kit/fleet.py writes what migrate prints, as Docker json-file
logs under Hive paths), plants incidents, ingests, analyzes at a clock and checks that each incident is found
with the right key (kind, env, service, database, version), severity and status, and that the explanation
names the figures. Expected figures are computed here from the planted timings, never read back.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import statistics
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from pipeline.analyze import analyze
from pipeline.api import ingest
from pipeline.cli import main
from pipeline.core.config import Config
from pipeline.warehouse import connect

from .conftest import capture_index, cycle_sleeps, rows
from .kit.fleet import Fleet

T0 = datetime(2026, 10, 5, 10, 0)  # a Monday; every fleet starts here
AS_OF = datetime(2026, 11, 16)
TENANTS = [f"tenant_{i:02d}" for i in range(1, 41)]
WARN = ("warning", "critical")


# -- helpers ---------------------------------------------------------------------------------------------------
def config(**analyze_overrides: object) -> Config:
    return Config.model_validate({"analyze": analyze_overrides})


def run_analysis(con: duckdb.DuckDBPyConnection, fleet: Fleet, as_of: datetime = AS_OF,
                 cfg: Config | None = None) -> list[dict]:
    """Ingest everything the fleet wrote (incremental: files seen before are skipped), analyze, read findings."""
    cfg = cfg or Config()
    ingest(con, [str(fleet.root)], config=cfg, progress=False)
    analyze(con, config=cfg, as_of=as_of)
    return findings(con)


def findings(con: duckdb.DuckDBPyConnection) -> list[dict]:
    cur = con.execute("SELECT * FROM findings ORDER BY ts, kind, finding_id")
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def of(found: list[dict], kind: str, **where: object) -> list[dict]:
    return [f for f in found if f["kind"] == kind and all(f[k] == v for k, v in where.items())]


def key(f: dict) -> tuple:
    return (f["kind"], f["env"], f["service"], f["database"], f["version"])


def run_id_of(con: duckdb.DuckDBPyConnection, env: str, database: str, started: datetime) -> str:
    [(run_id,)] = rows(con, "SELECT run_id FROM runs WHERE env = ? AND database = ? AND started_at >= ? "
                            "ORDER BY started_at LIMIT 1", [env, database, started])
    return run_id


def rollout(fleet: Fleet, env: str, service: str, dbs: list[str], at: datetime, version: int, name: str,
            own_ms: list[float], gap: timedelta = timedelta(minutes=15)) -> list[datetime]:
    """One script rolled out database after database (tenants of one env), with the given own times."""
    times = []
    for i, (db, ms) in enumerate(zip(dbs, own_ms, strict=True)):
        times.append(at + i * gap)
        fleet.up(env, service, db, times[-1], [(version, name, ms)])
    return times


def around(ms: float, n: int, seed: int, spread: float = 0.02) -> list[float]:
    """n deterministic timings within ±spread of ms."""
    rng = random.Random(seed)
    return [round(ms * (1 + rng.uniform(-spread, spread)), 3) for _ in range(n)]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Warehouse files of small scenarios, ingested once for the module; `built(build)` gives a copy and its clock."""
    made: dict[str, tuple[Path, datetime]] = {}

    def copy_of(build) -> tuple[duckdb.DuckDBPyConnection, datetime]:
        if build.__name__ not in made:
            root = tmp_path_factory.mktemp(build.__name__)
            fleet = Fleet(root / "logs")
            as_of = build(fleet)
            con = connect(root / "w.duckdb")
            ingest(con, [str(fleet.root)], config=Config(), progress=False)
            con.close()
            made[build.__name__] = (root / "w.duckdb", as_of)
        path, as_of = made[build.__name__]
        target = tmp_path_factory.mktemp("copy") / "w.duckdb"
        shutil.copyfile(path, target)
        return connect(target), as_of

    return copy_of


# -- a healthy fleet -------------------------------------------------------------------------------------------
def healthy_fleet(fleet: Fleet, weeks: int = 3, seed: int = 20261116) -> None:
    """Three services through dev -> staging -> prod each week, lognormal ±15% timings, no-change re-runs."""
    rng = random.Random(seed)
    layout = {"billing": TENANTS[:10], "orders": ["orders"], "search": ["search"]}
    base = {}
    for week in range(weeks):
        monday = T0 + timedelta(weeks=week)
        for service, prod_dbs in layout.items():
            scripts = []
            for version in (2 * week + 1, 2 * week + 2):
                base.setdefault((service, version), rng.choice([35.0, 420.0, 2_600.0, 14_000.0]))
                scripts.append((version, f"{service}_change_{version}"))
            for day, env, dbs in ((0, "dev", [service]), (1, "staging", [service]), (2, "prod", prod_dbs)):
                for i, db in enumerate(dbs):
                    own = [(v, n, base[(service, v)] * rng.lognormvariate(0, 0.15)) for v, n in scripts]
                    fleet.up(env, service, db, monday + timedelta(days=day, minutes=10 * i), own)
            # pods restarting run `migrate up` again: nothing to do
            fleet.no_change("prod", service, prod_dbs[week % len(prod_dbs)], monday + timedelta(days=4, hours=20))
            fleet.no_change("staging", service, service, monday + timedelta(days=5, hours=20))
        fleet.version("prod", "billing", TENANTS[0], monday + timedelta(days=4, hours=9), 2 * week + 2)


def test_healthy_fleet_with_ordinary_noise_raises_no_warning(warehouse, tmp_path):
    fleet = Fleet(tmp_path / "logs")
    healthy_fleet(fleet)
    found = run_analysis(warehouse, fleet)
    assert [f["explanation"] for f in found if f["severity"] in WARN] == []
    assert rows(warehouse, "SELECT count(*) FROM runs WHERE outcome = 'no_change'") == [(18,)]
    # prod billing scripts were judged: each ran on 10 tenants, the last 5 against a ready baseline (min_samples 5)
    ready = rows(warehouse, "SELECT count(*) FROM script_baselines WHERE env = 'prod' AND service = 'billing' "
                            "AND state = 'ready'")
    assert ready == [(6,)]


# -- runs that went wrong --------------------------------------------------------------------------------------
@pytest.mark.parametrize(("env", "severity"), [("prod", "critical"), ("staging", "warning")])
def test_failed_run_is_found_with_its_version_and_resolved_by_a_clean_run(warehouse, tmp_path, env, severity):
    fleet = Fleet(tmp_path / "logs")
    fleet.up("dev", "billing", "main", T0, [(1, "create_invoices", 20.0), (2, "add_totals", 31.0),
                                            (3, "add_currency", 12.0)])
    fleet.up(env, "billing", "main", T0 + timedelta(days=1), [(1, "create_invoices", 21.0), (2, "add_totals", 30.0)])
    failed_at = T0 + timedelta(days=2)
    fleet.fail(env, "billing", "main", failed_at, 3, "add_currency", error_class="syntax_error")
    found = run_analysis(warehouse, fleet, as_of=failed_at + timedelta(hours=1))
    [f] = of(found, "failed_run")
    assert key(f) == ("failed_run", env, "billing", "main", 3)
    assert (f["severity"], f["status"], f["resolved_at"]) == (severity, "open", None)
    assert f["run_id"] == run_id_of(warehouse, env, "main", failed_at)
    assert f["explanation"].startswith(f"{env}/billing/main: migration 3 failed (syntax_error): migration failed: "
                                       'syntax error at or near "total_cents" (column 5) in line 4')

    fixed_at = failed_at + timedelta(hours=3)
    fleet.up(env, "billing", "main", fixed_at, [(3, "add_currency", 11.0)])
    [f] = of(run_analysis(warehouse, fleet, as_of=fixed_at + timedelta(hours=1)), "failed_run")
    assert (f["status"], f["resolved_at"]) == ("resolved", fixed_at + timedelta(milliseconds=5) + timedelta(milliseconds=11))
    assert "a clean run followed at " + f"{fixed_at:%Y-%m-%d %H:%M}" in f["explanation"]


def test_failed_run_after_applying_scripts_names_the_script_that_failed(warehouse, tmp_path):
    fleet = Fleet(tmp_path / "logs")
    scripts = [(1, "create_invoices", 20.0), (2, "add_totals", 31.0), (3, "add_currency", 12.0), (4, "add_tax", 9.0)]
    fleet.up("staging", "billing", "main", T0, scripts)
    fleet.up("prod", "billing", "main", T0 + timedelta(days=1), scripts[:2])
    fleet.fail("prod", "billing", "main", T0 + timedelta(days=2), 4, "add_tax", applied_before=[scripts[2]])
    [f] = of(run_analysis(warehouse, fleet, as_of=T0 + timedelta(days=3)), "failed_run")
    assert key(f) == ("failed_run", "prod", "billing", "main", 4)


def test_failure_spike_against_the_services_own_trailing_rate(warehouse, tmp_path):
    fleet = Fleet(tmp_path / "logs")
    as_of = datetime(2026, 11, 16)
    # orders: a clean month, then 3 of 4 runs fail in the last week
    for day in range(8, 35, 3):
        fleet.no_change("prod", "orders", "orders", as_of - timedelta(days=day))
    fleet.lock_timeout("prod", "orders", "orders", as_of - timedelta(days=5))
    fleet.dirty("prod", "orders", "orders", as_of - timedelta(days=4), 7)
    fleet.lock_timeout("prod", "orders", "orders", as_of - timedelta(days=3))
    fleet.no_change("prod", "orders", "orders", as_of - timedelta(days=2))
    # search: fails often, but no more often now than before (50% vs 33%): not a spike
    for day in range(8, 32, 2):
        at = as_of - timedelta(days=day, hours=3)
        (fleet.lock_timeout if day % 3 == 0 else fleet.no_change)("prod", "search", "search", at)
    for day in range(1, 7):
        at = as_of - timedelta(days=day, hours=3)
        (fleet.lock_timeout if day % 2 == 0 else fleet.no_change)("prod", "search", "search", at)
    found = run_analysis(warehouse, fleet, as_of=as_of)
    [f] = of(found, "failure_spike")
    assert key(f) == ("failure_spike", "prod", "orders", None, None)
    assert (f["severity"], f["status"]) == ("critical", "open")
    assert f["observed"] == pytest.approx(0.75) and f["expected"] == pytest.approx(0.05)
    assert f["score"] == pytest.approx(15.0)
    assert f["explanation"] == ("prod/orders: 3 of 4 runs failed in the last 7 days (75%) vs 0 of 9 in the 28 "
                                "days before (5% counted), 15.0x")
    # the orders spike, counted the way the finding says: its own trailing rate is floored at spike_rate_floor
    assert of(run_analysis(warehouse, fleet, as_of=as_of, cfg=config(spike_rate_floor=0.3)), "failure_spike") == []


def test_lock_timeout_is_found_and_resolved_by_the_next_clean_run(warehouse, tmp_path):
    fleet = Fleet(tmp_path / "logs")
    fleet.up("prod", "orders", "orders", T0, [(1, "create_orders", 14.0), (2, "add_status", 8.0)])
    locked_at = T0 + timedelta(days=3)
    fleet.lock_timeout("prod", "orders", "orders", locked_at)
    found = run_analysis(warehouse, fleet, as_of=locked_at + timedelta(hours=1))
    [f] = of(found, "lock_timeout")
    assert key(f) == ("lock_timeout", "prod", "orders", "orders", 2)  # the version the database stayed at
    assert (f["severity"], f["status"]) == ("warning", "open")
    assert f["explanation"] == "prod/orders/orders: could not take migrate's advisory lock (another migrate held it)"
    fleet.no_change("prod", "orders", "orders", locked_at + timedelta(hours=2))
    [f] = of(run_analysis(warehouse, fleet, as_of=locked_at + timedelta(hours=3)), "lock_timeout")
    assert f["status"] == "resolved"


def test_killed_run_is_interrupted_and_leaves_the_database_dirty(warehouse, tmp_path):
    fleet = Fleet(tmp_path / "logs")
    fleet.up("prod", "billing", "main", T0, [(1, "create_invoices", 20.0), (2, "add_totals", 31.0)])
    killed_at = T0 + timedelta(days=1)
    fleet.killed("prod", "billing", "main", killed_at, 4, "backfill_totals", applied_before=[(3, "add_currency", 12.0)])
    found = run_analysis(warehouse, fleet, as_of=killed_at + timedelta(hours=2))
    [f] = of(found, "interrupted_run")
    assert key(f) == ("interrupted_run", "prod", "billing", "main", 4)
    assert (f["severity"], f["status"]) == ("warning", "open")
    assert "while running 4" in f["explanation"] and "killed" in f["explanation"]
    [d] = of(found, "dirty_open")
    assert key(d) == ("dirty_open", "prod", "billing", "main", 4)
    assert (d["severity"], d["status"]) == ("critical", "open")
    assert d["observed"] == pytest.approx(120, abs=0.1)


# -- dirty databases and forced recoveries ----------------------------------------------------------------------
def _dirty_history(fleet: Fleet, env: str) -> datetime:
    """Version 5 fails on `env`/orders (it applied fine in dev); a later `up` is refused as dirty."""
    fleet.up("dev", "orders", "orders", T0, [(4, "add_status", 8.0), (5, "add_refunds", 25.0)])
    fleet.up(env, "orders", "orders", T0 + timedelta(days=1), [(4, "add_status", 8.0)])
    failed_at = T0 + timedelta(days=2)
    fleet.fail(env, "orders", "orders", failed_at, 5, "add_refunds", error_class="statement_timeout")
    fleet.dirty(env, "orders", "orders", failed_at + timedelta(minutes=20), 5)
    return failed_at


@pytest.mark.parametrize(("env", "after", "severity"), [
    ("prod", timedelta(minutes=45), "critical"),
    ("prod", timedelta(minutes=20, seconds=10), "warning"),  # dirty for less than dirty_critical_minutes
    ("staging", timedelta(minutes=45), "warning"),
])
def test_dirty_open_says_how_long_the_database_has_been_dirty(warehouse, tmp_path, env, after, severity):
    fleet = Fleet(tmp_path / "logs")
    failed_at = _dirty_history(fleet, env)
    found = run_analysis(warehouse, fleet, as_of=failed_at + after)
    [d] = of(found, "dirty_open")
    assert key(d) == ("dirty_open", env, "orders", "orders", 5)
    assert (d["severity"], d["status"], d["resolved_at"]) == (severity, "open", None)
    minutes = after.total_seconds() / 60
    assert d["observed"] == pytest.approx(minutes, abs=0.1)
    assert d["explanation"] == (f"{env}/orders/orders is dirty at version 5 for {minutes:.0f} min "
                                f"(since {failed_at:%Y-%m-%d %H:%M}, run failed)")
    assert of(found, "forced_recovery") == []


@pytest.mark.parametrize(("env", "severity"), [("prod", "warning"), ("staging", "info")])
def test_forced_recovery_is_inferred_from_dirty_then_a_clean_run(warehouse, tmp_path, env, severity):
    fleet = Fleet(tmp_path / "logs")
    failed_at = _dirty_history(fleet, env)
    # someone ran `migrate force 4` (prints nothing), then `up` applied 5 cleanly
    clean_at = failed_at + timedelta(hours=2)
    fleet.up(env, "orders", "orders", clean_at, [(5, "add_refunds", 24.0)])
    found = run_analysis(warehouse, fleet, as_of=clean_at + timedelta(days=1))
    [r] = of(found, "forced_recovery")
    assert key(r) == ("forced_recovery", env, "orders", "orders", 5)
    assert (r["severity"], r["status"]) == (severity, "resolved")
    assert r["observed"] == pytest.approx(120, abs=0.1)
    assert r["explanation"] == (f"{env}/orders/orders: dirty at 5 from {failed_at:%Y-%m-%d %H:%M} for 120 min; the run "
                                f"at {clean_at:%Y-%m-%d %H:%M} was clean, so the version was forced in between "
                                "(`force` prints nothing; inferred)")
    [d] = of(found, "dirty_open")
    assert key(d) == ("dirty_open", env, "orders", "orders", 5)
    assert (d["severity"], d["status"]) == ("info", "resolved")
    assert d["resolved_at"] == r["ts"]
    assert d["explanation"].startswith(f"{env}/orders/orders was dirty at version 5 for 120 min")


def test_version_command_printing_dirty_opens_an_episode_and_a_clean_one_closes_it(warehouse, tmp_path):
    # a default-mode `up` killed by SIGTERM prints nothing: only `migrate version` tells
    fleet = Fleet(tmp_path / "logs")
    fleet.up("prod", "orders", "orders", T0, [(4, "add_status", 8.0)])
    seen_at = T0 + timedelta(days=1)
    fleet.version("prod", "orders", "orders", seen_at, 5, dirty=True)
    [d] = of(run_analysis(warehouse, fleet, as_of=seen_at + timedelta(hours=1)), "dirty_open")
    assert key(d) == ("dirty_open", "prod", "orders", "orders", 5)
    assert (d["severity"], d["status"]) == ("critical", "open")
    assert d["explanation"].startswith("prod/orders/orders is dirty at version 5 for 60 min")
    fleet.version("prod", "orders", "orders", seen_at + timedelta(hours=2), 4)  # someone ran `force 4`
    found = run_analysis(warehouse, fleet, as_of=seen_at + timedelta(hours=3))
    assert [(f["status"], f["severity"]) for f in of(found, "dirty_open")] == [("resolved", "info")]
    [r] = of(found, "forced_recovery")
    assert key(r) == ("forced_recovery", "prod", "orders", "orders", 5) and "inferred" in r["explanation"]


# -- durations --------------------------------------------------------------------------------------------------
LONE = [9800, 9650, 10100, 9900, 9700, 9850, 9750, 9950, None, 9800, 9900, 10000]  # None: tenant_09, the slow one


@pytest.mark.parametrize(("env", "slow_ms", "severity", "figures"), [
    ("prod", 412_000, "critical", "6.9 min vs median 9.8 s of earlier runs, 42x"),
    ("prod", 40_000, "warning", "40.0 s vs median 9.8 s of earlier runs, 4x"),  # under critical_ratio 10
    ("staging", 412_000, "warning", "6.9 min vs median 9.8 s of earlier runs, 42x"),
])
def test_lone_duration_outlier_on_one_database(warehouse, tmp_path, env, slow_ms, severity, figures):
    fleet = Fleet(tmp_path / "logs")
    own = [slow_ms if ms is None else ms for ms in LONE]
    times = rollout(fleet, env, "billing", TENANTS[:12], T0, 7, "backfill_invoice_totals", own)
    found = run_analysis(warehouse, fleet)
    [f] = of(found, "duration_outlier")
    assert key(f) == ("duration_outlier", env, "billing", "tenant_09", 7)
    assert f["severity"] == severity
    assert f["run_id"] == run_id_of(warehouse, env, "tenant_09", times[8])
    assert (f["observed"], f["expected"]) == (pytest.approx(slow_ms), pytest.approx(9825))  # median of the 8 before
    assert f["explanation"].startswith(f"{env}/billing/tenant_09 7/u backfill_invoice_totals: {figures}, robust z ")
    # the next tenant ran at the usual speed: the outlier is over as of the clock
    assert f["status"] == "resolved" and f["resolved_at"] == times[9] + timedelta(milliseconds=5 + LONE[9])


def _shift_after_8(fleet: Fleet) -> datetime:
    """Script 12 takes ~9.8 s on the first 8 tenants, then ~400 s on the next 12 (data grew; an index is missing)."""
    rollout(fleet, "prod", "billing", TENANTS[:20], T0, 12, "add_ledger_index",
            around(9_800, 8, seed=1) + around(400_000, 12, seed=2))
    return AS_OF


def _shift_after_5(fleet: Fleet) -> datetime:
    """The same shift after only min_samples (5) normal tenants."""
    rollout(fleet, "prod", "billing", TENANTS[:17], T0, 12, "add_ledger_index",
            around(9_800, 5, seed=1) + around(400_000, 12, seed=2))
    return AS_OF


def test_level_shift_across_tenant_databases_is_reported_once(built):
    con, as_of = built(_shift_after_8)
    try:
        analyze(con, config=Config(), as_of=as_of)
        shifts = of(findings(con), "duration_outlier")
    finally:
        con.close()
    assert len(shifts) == 1, [f["explanation"] for f in shifts]
    [f] = shifts
    assert key(f) == ("duration_outlier", "prod", "billing", None, 12)
    assert (f["severity"], f["status"], f["run_id"]) == ("critical", "open", None)
    m = re.fullmatch(r"prod/billing 12/u add_ledger_index: level shift, (\S+ \S+) \(median of (\d+) runs on (\d+) "
                     r"databases since 2026-10-05\) vs (\S+ \S+) before, (\d+)x, robust z \d+", f["explanation"])
    assert m, f["explanation"]
    assert int(m.group(2)) >= 3 and m.group(2) == m.group(3)
    assert m.group(4) == "9.8 s" and m.group(1).endswith("min") and 38 <= int(m.group(5)) <= 43


@pytest.mark.parametrize("build", [_shift_after_5, _shift_after_8])
def test_level_shift_counts_every_database_at_the_new_level(built, build):
    con, as_of = built(build)
    try:
        analyze(con, config=Config(), as_of=as_of)
        [f] = of(findings(con), "duration_outlier")
    finally:
        con.close()
    assert f["database"] is None and "level shift" in f["explanation"]
    assert "(median of 12 runs on 12 databases since" in f["explanation"]


@pytest.mark.parametrize("earlier", [1, 4])
def test_cold_start_claims_no_outlier(warehouse, tmp_path, earlier):
    fleet = Fleet(tmp_path / "logs")
    rollout(fleet, "prod", "billing", TENANTS[:earlier + 1], T0, 3, "add_currency", [9_800.0] * earlier + [400_000.0])
    assert of(run_analysis(warehouse, fleet), "duration_outlier") == []
    state = rows(warehouse, "SELECT n, state FROM script_baselines WHERE version = 3")
    assert state == [(earlier + 1, "learning" if earlier + 1 < 5 else "ready")]


def test_run_under_test_is_not_in_its_own_baseline(warehouse, tmp_path):
    # exactly min_samples (5) identical earlier applications, then one slow one: flagged against 2.0 s
    fleet = Fleet(tmp_path / "logs")
    rollout(fleet, "prod", "billing", TENANTS[:6], T0, 3, "add_currency", [2_000.0] * 5 + [9_000.0])
    [f] = of(run_analysis(warehouse, fleet), "duration_outlier")
    assert (f["database"], f["expected"], f["observed"]) == ("tenant_06", 2_000.0, 9_000.0)
    assert "9.0 s vs median 2.0 s of earlier runs, 4x" in f["explanation"]


@pytest.mark.parametrize(("last_ms", "flagged"), [(30_000.0, True), (2_001.0, False), (2_150.0, False)])
def test_identical_timings_mad_zero_still_judge_fairly(warehouse, tmp_path, last_ms, flagged):
    fleet = Fleet(tmp_path / "logs")
    rollout(fleet, "prod", "billing", TENANTS[:9], T0, 3, "add_currency", [2_000.0] * 8 + [last_ms])
    found = of(run_analysis(warehouse, fleet), "duration_outlier")
    assert rows(warehouse, "SELECT mad_ms FROM script_baselines WHERE version = 3") == [(0.0,)]
    if not flagged:
        assert found == []
        return
    [f] = found
    assert key(f) == ("duration_outlier", "prod", "billing", "tenant_09", 3)
    # spread floor: max(5% of the 2 s median, 5 ms) = 100 ms, so z = (30 000 - 2 000) / 100
    assert f["score"] == pytest.approx(280.0)
    assert f["explanation"].endswith("30.0 s vs median 2.0 s of earlier runs, 15x, robust z 280")


# -- baselines --------------------------------------------------------------------------------------------------
def test_script_baselines_match_a_hand_computation(warehouse, tmp_path):
    fleet = Fleet(tmp_path / "logs")
    own = [812.5, 790.25, 1203.0, 845.125, 801.0, 2950.75, 830.5]
    for i, ms in enumerate(own):  # version 3 runs second in its run: its own time is a step between APPLIED values
        fleet.up("prod", "billing", TENANTS[i], T0 + timedelta(minutes=10 * i), [(2, "add_totals", 15.0 + i),
                                                                               (3, "add_currency", ms)])
    fleet.up("staging", "billing", "main", T0 - timedelta(days=1), [(2, "add_totals", 15.0), (3, "add_currency", 800.0)])
    run_analysis(warehouse, fleet)
    [(n, median, p95, mad, last, last_at, name, dbs, state)] = rows(warehouse, """
        SELECT n, median_ms, p95_ms, mad_ms, last_ms, last_at, name, databases, state FROM script_baselines
        WHERE env = 'prod' AND service = 'billing' AND version = 3 AND direction = 'up'""")
    med = statistics.median(own)
    assert n == 7 and (name, dbs, state) == ("add_currency", 7, "ready")
    assert median == pytest.approx(med, abs=1e-6)
    assert p95 == pytest.approx(statistics.quantiles(own, n=20, method="inclusive")[18], abs=1e-6)
    assert mad == pytest.approx(statistics.median(abs(x - med) for x in own), abs=1e-6)
    assert last == pytest.approx(own[-1], abs=1e-6)
    assert last_at == T0 + timedelta(minutes=60, milliseconds=5) + timedelta(milliseconds=15.0 + 6 + own[-1])
    assert rows(warehouse, "SELECT n, state FROM script_baselines WHERE env = 'staging' AND version = 3") == [(1, "learning")]


FROM_SCRATCH = [(v, f"change_{v}", 20.0 + 7.5 * v) for v in range(1, 15)]  # every script, applied to a fresh database


def test_preview_environments_share_one_pooled_baseline(warehouse, tmp_path):
    fleet = Fleet(tmp_path / "logs")
    slow = [(v, n, 50_000.0 if v == 12 else ms) for v, n, ms in FROM_SCRATCH]
    for pr in range(101, 108):
        fleet.up(f"preview-pr-{pr}", "shop", "app", T0 + timedelta(hours=pr - 100), slow if pr == 107 else FROM_SCRATCH)
    found = run_analysis(warehouse, fleet)
    assert rows(warehouse, "SELECT DISTINCT env, n, state FROM script_baselines ORDER BY ALL") == [("preview", 7, "ready")]
    # own times are right past migrate's prefetch window too (script 12 is the 12th APPLIED line of its run)
    medians = dict(rows(warehouse, "SELECT version, median_ms FROM script_baselines"))
    assert medians == {v: pytest.approx(ms, abs=0.01) for v, _, ms in FROM_SCRATCH}
    [f] = of(found, "duration_outlier")
    assert (f["version"], f["database"], f["severity"]) == (12, "app", "warning")
    assert "12/u change_12: 50.0 s vs median 110 ms of earlier runs, 455x" in f["explanation"]


def test_outlier_in_a_pooled_env_names_the_real_environment(warehouse, tmp_path):
    fleet = Fleet(tmp_path / "logs")
    for pr in range(101, 107):
        fleet.up(f"preview-pr-{pr}", "shop", "app", T0 + timedelta(hours=pr - 100), FROM_SCRATCH[:3])
    fleet.up("preview-pr-107", "shop", "app", T0 + timedelta(hours=8), [*FROM_SCRATCH[:2], (3, "change_3", 50_000.0)])
    [f] = of(run_analysis(warehouse, fleet), "duration_outlier")
    assert f["env"] == "preview-pr-107" or "preview-pr-107" in f["explanation"]


# -- rollbacks, promotion, down files, idempotency ---------------------------------------------------------------
def test_prod_rollback_is_open_until_the_version_is_reapplied(warehouse, tmp_path):
    fleet = Fleet(tmp_path / "logs")
    scripts = [(1, "create_invoices", 20.0), (2, "add_totals", 31.0), (3, "add_currency", 12.0), (4, "add_tax", 9.0)]
    fleet.up("prod", "billing", "main", T0, scripts)
    down_at = T0 + timedelta(days=1)
    fleet.down("prod", "billing", "main", down_at, [(4, "add_tax", 6.5)])
    fleet.down("staging", "billing", "main", down_at, [(4, "add_tax", 6.5)])  # not prod: not a finding
    found = run_analysis(warehouse, fleet, as_of=down_at + timedelta(hours=1))
    [f] = of(found, "prod_rollback")
    assert key(f) == ("prod_rollback", "prod", "billing", "main", 4)
    assert (f["severity"], f["status"]) == ("warning", "open")
    assert f["explanation"] == f"prod/billing/main: rolled back 4 at {down_at:%Y-%m-%d %H:%M}; not re-applied since"
    fleet.up("prod", "billing", "main", down_at + timedelta(hours=2), [(4, "add_tax", 9.0)])
    [f] = of(run_analysis(warehouse, fleet, as_of=down_at + timedelta(hours=3)), "prod_rollback")
    assert f["status"] == "resolved" and f["explanation"].endswith("; re-applied since")


def test_promotion_skipped_follows_env_order_and_ignores_services_without_staging(warehouse, tmp_path):
    fleet = Fleet(tmp_path / "logs")
    s = {1: "create_invoices", 2: "add_totals", 3: "add_currency", 4: "add_tax"}
    fleet.up("dev", "billing", "main", T0, [(v, s[v], 10.0) for v in (1, 2, 3, 4)])
    fleet.up("staging", "billing", "main", T0 + timedelta(days=1), [(v, s[v], 10.0) for v in (1, 2)])
    fleet.up("prod", "billing", "main", T0 + timedelta(days=2), [(v, s[v], 10.0) for v in (1, 2, 3)])
    prod_4 = T0 + timedelta(days=3)
    fleet.up("prod", "billing", "main", prod_4, [(4, s[4], 10.0)])
    staging_4 = T0 + timedelta(days=4)  # 4 reached staging a day after prod; 3 never did
    fleet.up("staging", "billing", "main", staging_4, [(4, s[4], 10.0)])
    # search keeps no staging logs at all: nothing to compare prod with
    fleet.up("dev", "search", "search", T0, [(1, "create_index", 10.0)])
    fleet.up("prod", "search", "search", T0 + timedelta(days=2), [(1, "create_index", 10.0)])
    found = of(run_analysis(warehouse, fleet), "promotion_skipped")
    assert [(key(f), f["severity"], f["status"]) for f in found] == [
        (("promotion_skipped", "prod", "billing", "main", 3), "warning", "open"),
        (("promotion_skipped", "prod", "billing", "main", 4), "warning", "resolved"),
    ]
    assert found[0]["explanation"] == f"prod/billing: 3/u add_currency applied {T0 + timedelta(days=2):%Y-%m-%d %H:%M} but never in staging"
    assert found[1]["explanation"].endswith(f"but reached staging only at {staging_4:%Y-%m-%d %H:%M}")
    # with the order from config (no staging stage), nothing was skipped
    assert of(run_analysis(warehouse, fleet, cfg=config(env_order=["dev", "prod"])), "promotion_skipped") == []


@pytest.mark.parametrize(("in_prod", "severity"), [(False, "info"), (True, "warning")])
def test_missing_down_is_found_from_an_empty_down_step(warehouse, tmp_path, in_prod, severity):
    fleet = Fleet(tmp_path / "logs")
    fleet.up("staging", "billing", "main", T0, [(5, "create_audit_log", 14.0), (6, "add_tax", 9.0)])
    if in_prod:
        fleet.up("prod", "billing", "main", T0 + timedelta(days=1), [(5, "create_audit_log", 14.0)])
    fleet.down("staging", "billing", "main", T0 + timedelta(days=2), [(6, "add_tax", 5.0), (5, "<empty>", 3.2)])
    [f] = of(run_analysis(warehouse, fleet), "missing_down")
    assert key(f) == ("missing_down", "staging", "billing", "main", 5)
    assert (f["severity"], f["status"]) == (severity, "open")
    assert f["explanation"] == ("billing: version 5 (create_audit_log) has no down migration: migrate stepped it as "
                                "`5/d <empty>` in staging" + ("; it is in prod" if in_prod else ""))


def test_rollback_readiness_ready_after_down_and_reapply_missing_for_empty_down(warehouse, tmp_path):
    fleet = Fleet(tmp_path / "logs")
    scripts = [(3, "add_currency", 12.0), (4, "add_totals", 40.0), (5, "create_audit_log", 14.0)]
    fleet.up("staging", "billing", "main", T0, scripts)
    down_at = T0 + timedelta(hours=2)
    fleet.down("staging", "billing", "main", down_at, [(5, "<empty>", 2.1), (4, "add_totals", 30.0)])
    fleet.up("staging", "billing", "main", T0 + timedelta(hours=3), scripts[1:])
    fleet.up("prod", "billing", "main", T0 + timedelta(days=1), scripts)
    run_analysis(warehouse, fleet)
    got = {r[0]: r[1:] for r in rows(warehouse, """
        SELECT version, down_file, in_prod, down_tried_envs, last_down_ok, reapplied_after_down, ready
        FROM rollback_readiness WHERE service = 'billing' ORDER BY version""")}
    assert got == {
        3: ("unknown", True, None, None, False, False),
        4: ("present", True, ["staging"], True, True, True),
        5: ("missing", True, ["staging"], True, True, False),
    }
    [(last_down_at,)] = rows(warehouse, "SELECT last_down_at FROM rollback_readiness WHERE version = 4")
    assert last_down_at == down_at + timedelta(milliseconds=5 + 2.1 + 30.0)


def _rerun_after_force(fleet: Fleet) -> tuple[datetime, datetime]:
    """3 times out in prod, the next `up` is refused as dirty; after a silent `force 2`, `up` runs 3 again."""
    fleet.up("staging", "billing", "main", T0, [(2, "add_totals", 31.0), (3, "create_invoices", 20.0)])
    fleet.up("prod", "billing", "main", T0 + timedelta(days=1), [(2, "add_totals", 31.0)])
    failed_at = T0 + timedelta(days=2)
    fleet.fail("prod", "billing", "main", failed_at, 3, "create_invoices", error_class="statement_timeout")
    fleet.dirty("prod", "billing", "main", failed_at + timedelta(minutes=10), 3)
    rerun_at = failed_at + timedelta(minutes=30)
    fleet.fail("prod", "billing", "main", rerun_at, 3, "create_invoices", error_class="already_exists")
    return failed_at, rerun_at


def test_non_idempotent_rerun_after_failure_and_force_fails_with_already_exists(warehouse, tmp_path):
    fleet = Fleet(tmp_path / "logs")
    failed_at, rerun_at = _rerun_after_force(fleet)
    everything = run_analysis(warehouse, fleet, as_of=rerun_at + timedelta(hours=1))
    # after the silent force, the re-run failed in 3 again (it was dirty at 3), not in a version after it
    assert [f["version"] for f in of(everything, "failed_run")] == [3, 3]
    found = of(everything, "non_idempotent")
    assert [key(f) for f in found] == [("non_idempotent", "prod", "billing", "main", 3)]
    [f] = found
    assert (f["severity"], f["status"], f["run_id"]) == ("warning", "open", run_id_of(warehouse, "prod", "main", rerun_at))
    assert f["explanation"] == (f"prod/billing/main: re-run after a dirty run at {failed_at + timedelta(minutes=10):%Y-%m-%d %H:%M} "
                                'failed with already_exists: migration failed: relation "invoices" already exists in '
                                "line 0: CREATE TABLE invoices (")


def test_version_applied_twice_without_a_down_must_be_idempotent(warehouse, tmp_path):
    fleet = Fleet(tmp_path / "logs")
    fleet.up("prod", "billing", "main", T0, [(2, "add_totals", 31.0), (3, "create_invoices", 20.0)])
    fleet.up("prod", "billing", "main", T0 + timedelta(days=1), [(3, "create_invoices", 21.0)])  # forced back to 2
    [f] = of(run_analysis(warehouse, fleet), "non_idempotent")
    assert key(f) == ("non_idempotent", "prod", "billing", None, 3)
    assert (f["severity"], f["observed"]) == ("info", 1.0)
    assert "3/u create_invoices applied again without a down 1 time on 1 database" in f["explanation"]


def test_recreated_ci_database_is_not_a_forced_rerun(warehouse, tmp_path):
    fleet = Fleet(tmp_path / "logs")
    for pipeline_run in range(4):  # each pipeline starts a fresh postgres and applies every script
        fleet.up("ci-main", "shop", "app", T0 + timedelta(hours=pipeline_run), FROM_SCRATCH[:5])
    assert of(run_analysis(warehouse, fleet), "non_idempotent") == []


# -- configuration ------------------------------------------------------------------------------------------------
def _lone_outlier(fleet: Fleet) -> datetime:
    rollout(fleet, "prod", "billing", TENANTS[:12], T0, 7, "backfill_invoice_totals",
            [412_000 if ms is None else ms for ms in LONE])
    return AS_OF


def _dirty_prod(fleet: Fleet) -> datetime:
    return _dirty_history(fleet, "prod") + timedelta(minutes=45)


@pytest.mark.parametrize(("build", "kind", "overrides", "default_severity", "overridden_severity"), [
    (_lone_outlier, "duration_outlier", {"outlier_ratio": 50.0}, "critical", None),
    (_lone_outlier, "duration_outlier", {"outlier_z": 1_000.0}, "critical", None),
    (_lone_outlier, "duration_outlier", {"min_samples": 9}, "critical", None),
    (_lone_outlier, "duration_outlier", {"outlier_min_excess_ms": 500_000.0}, "critical", None),
    (_lone_outlier, "duration_outlier", {"critical_ratio": 50.0}, "critical", "warning"),
    (_lone_outlier, "duration_outlier", {"prod_envs": ["live"]}, "critical", "warning"),
    (_dirty_prod, "dirty_open", {"dirty_critical_minutes": 60.0}, "critical", "warning"),
])
def test_thresholds_from_config_change_the_result(built, build, kind, overrides, default_severity,
                                                  overridden_severity):
    con, as_of = built(build)
    try:
        analyze(con, config=Config(), as_of=as_of)
        assert [f["severity"] for f in of(findings(con), kind)] == [default_severity]
        analyze(con, config=config(**overrides), as_of=as_of)
        changed = [f["severity"] for f in of(findings(con), kind)]
        assert changed == ([overridden_severity] if overridden_severity else [])
    finally:
        con.close()


# -- the clock ------------------------------------------------------------------------------------------------------
def incident_fleet(fleet: Fleet) -> dict[str, datetime]:
    """A healthy fleet plus incidents of several kinds; returns the times that matter."""
    healthy_fleet(fleet, weeks=2)
    fleet.up("dev", "orders", "orders", T0 + timedelta(days=21), [(7, "orders_change_7", 28.0)])
    fleet.up("staging", "orders", "orders", T0 + timedelta(days=22), [(7, "orders_change_7", 29.0)])
    t = {"failed": T0 + timedelta(days=23, hours=1)}
    fleet.fail("prod", "orders", "orders", t["failed"], 7, "orders_change_7", applied_before=[])
    fleet.dirty("prod", "orders", "orders", t["failed"] + timedelta(minutes=30), 7)
    t["clean"] = t["failed"] + timedelta(days=2)
    fleet.up("prod", "orders", "orders", t["clean"], [(7, "orders_change_7", 30.0)])
    fleet.killed("staging", "search", "search", T0 + timedelta(days=22), 5, "search_change_5")
    fleet.lock_timeout("prod", "billing", TENANTS[2], T0 + timedelta(days=22, hours=5))
    fleet.down("prod", "billing", TENANTS[1], T0 + timedelta(days=23), [(4, "billing_change_4", 5.0)])
    return t


@pytest.fixture(scope="module")
def incident_warehouse(tmp_path_factory) -> Path:
    """A warehouse file holding the incident fleet, ingested once for the module; tests analyze a copy."""
    root = tmp_path_factory.mktemp("incidents")
    fleet = Fleet(root / "logs")
    incident_fleet(fleet)
    con = connect(root / "w.duckdb")
    ingest(con, [str(fleet.root)], config=Config(), progress=False)
    con.close()
    return root / "w.duckdb"


def test_same_clock_gives_identical_findings_and_ids(incident_warehouse, tmp_path):
    copy = tmp_path / "w.duckdb"
    shutil.copyfile(incident_warehouse, copy)
    con = connect(copy)
    try:
        analyze(con, config=Config(), as_of=AS_OF)
        first = findings(con)
        baselines = rows(con, "SELECT * FROM script_baselines ORDER BY ALL")
        readiness = rows(con, "SELECT * FROM rollback_readiness ORDER BY ALL")
        assert {f["kind"] for f in first} >= {"failed_run", "dirty_open", "forced_recovery", "interrupted_run",
                                              "lock_timeout", "prod_rollback"}
        analyze(con, config=Config(), as_of=datetime(2026, 10, 20))  # another clock in between changes nothing
        analyze(con, config=Config(), as_of=AS_OF)
        assert findings(con) == first
        assert len({f["finding_id"] for f in first}) == len(first)
        assert rows(con, "SELECT * FROM script_baselines ORDER BY ALL") == baselines
        assert rows(con, "SELECT * FROM rollback_readiness ORDER BY ALL") == readiness
    finally:
        con.close()


def test_earlier_clock_ignores_later_data_and_status_flips(warehouse, tmp_path):
    fleet = Fleet(tmp_path / "logs")
    t = incident_fleet(fleet)
    between = t["failed"] + timedelta(days=1)  # dirty, not yet recovered
    # what the warehouse said at that clock when the later logs did not exist yet...
    ingest(warehouse, [str(p) for p in fleet.runs if _first_time(p) <= between], config=Config(), progress=False)
    analyze(warehouse, config=Config(), as_of=between)
    then = findings(warehouse)
    then_baselines = rows(warehouse, "SELECT * FROM script_baselines ORDER BY ALL")
    # ...is what it says for that clock once they do
    later = run_analysis(warehouse, fleet, as_of=AS_OF)
    earlier = run_analysis(warehouse, fleet, as_of=between)
    assert earlier == then
    assert rows(warehouse, "SELECT * FROM script_baselines ORDER BY ALL") == then_baselines
    [d_later] = of(later, "dirty_open", env="prod", service="orders")
    [d_earlier] = of(earlier, "dirty_open", env="prod", service="orders")
    assert (d_later["status"], d_earlier["status"]) == ("resolved", "open")
    assert d_earlier["severity"] == "critical" and d_earlier["observed"] == pytest.approx(24 * 60, abs=1)
    assert of(earlier, "forced_recovery", service="orders") == [] and of(later, "forced_recovery", service="orders")
    assert all(f["ts"] is None or f["ts"] <= between for f in earlier)


def _first_time(path: Path) -> datetime:
    first = json.loads(path.read_text(encoding="utf-8").splitlines()[0])["time"]
    return datetime.fromisoformat(first).replace(tzinfo=None)


def test_failed_version_is_inferred_only_from_logs_before_it(warehouse, tmp_path):
    fleet = Fleet(tmp_path / "logs")
    fleet.up("staging", "orders", "orders", T0, [(6, "add_status", 8.0)])
    failed_at = T0 + timedelta(days=1)  # staging is the first place 7 runs; it fails there
    fleet.fail("staging", "orders", "orders", failed_at, 7, "add_refunds")
    as_of = failed_at + timedelta(hours=1)
    before = of(run_analysis(warehouse, fleet, as_of=as_of), "failed_run")
    assert [f["version"] for f in before] == [None]  # nothing before the clock says which version: no guess
    fleet.up("dev", "orders", "orders", failed_at + timedelta(days=1), [(6, "add_status", 8.0), (7, "add_refunds", 9.0)])
    after = of(run_analysis(warehouse, fleet, as_of=as_of), "failed_run")
    assert after == before  # ids included: last month's analysis is reproducible after more logs arrive


# -- the command line -----------------------------------------------------------------------------------------------
def test_cli_analyze_prints_one_summary_line(tmp_path):
    fleet = Fleet(tmp_path / "logs")
    _dirty_history(fleet, "prod")
    db = str(tmp_path / "w.duckdb")
    runner = CliRunner()
    assert runner.invoke(main, ["--db", db, "--no-progress", "ingest", str(fleet.root)]).exit_code == 0
    result = runner.invoke(main, ["--db", db, "--no-progress", "--as-of", "2026-11-16T00:00:00Z", "analyze"])
    assert result.exit_code == 0, result.output
    assert result.stdout.count("\n") == 1
    assert result.stdout == ("analyzed as of 2026-11-16 00:00Z: 3 script baselines (3 still learning); 2 findings, "
                             "open: 2 critical\n")
    con = duckdb.connect(db, read_only=True)
    try:
        assert rows(con, "SELECT DISTINCT as_of FROM findings") == [(AS_OF,)]
    finally:
        con.close()


def test_cli_bad_as_of_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(main, ["--db", str(tmp_path / "w.duckdb"), "--as-of", "last tuesday", "analyze"])
    assert result.exit_code == 2
    assert "Usage: " in result.stderr
    assert result.stderr.rstrip().splitlines()[-1] == (
        "Error: Invalid value: 'last tuesday' is not an ISO timestamp (e.g. 2026-11-16T00:00:00Z)")


# -- the real captures --------------------------------------------------------------------------------------------
CYCLES = [r for r in capture_index() if cycle_sleeps(r["scenario"])]
APPLIED = re.compile(r"^(?:\d{4}/\d\d/\d\d \d\d:\d\d:\d\d )?(?:Finished )?(\d+)/([ud]) \S+ \((?:read \S+, ran (\S+)|\S+)\)$")


def _go_ms(text: str) -> float:
    units = {"h": 3_600_000, "m": 60_000, "s": 1000, "ms": 1, "µs": 1e-3, "us": 1e-3, "ns": 1e-6}
    return sum(float(n) * units[u] for n, u in re.findall(r"([\d.]+)(h|ms|m|µs|us|ns|s)", text))


@pytest.fixture(scope="module")
def cycle_baselines(tmp_path_factory):
    """The up/down cycle captures (pg_sleep timings known per cycle), analyzed far after their file mtimes."""
    con = connect(tmp_path_factory.mktemp("cycles") / "w.duckdb")
    ingest(con, [r["path"] for r in CYCLES], config=Config(), progress=False)
    analyze(con, config=Config(), as_of=datetime(2100, 1, 1))
    yield {(v, d): (n, med) for v, d, n, med in rows(
        con, "SELECT version, direction, n, median_ms FROM script_baselines WHERE version IN (4, 8)")}
    con.close()


def _applications(version: int) -> list[tuple[str, float, float | None]]:
    """(direction, pg_sleep ms, verbose ran ms) of every application of `version`, read from the captures."""
    found = []
    for r in CYCLES:
        sleeps = cycle_sleeps(r["scenario"])
        for line in Path(r["path"]).read_text(encoding="utf-8").splitlines():
            m = APPLIED.match(line)
            if m and int(m.group(1)) == version:
                direction = "up" if m.group(2) == "u" else "down"
                found.append((direction, sleeps[f"{direction}{version}"] * 1000, _go_ms(m.group(3)) if m.group(3) else None))
    return found


@pytest.mark.parametrize("direction", ["up", "down"])
def test_capture_baseline_of_script_8_matches_its_pg_sleeps(cycle_baselines, direction):
    apps = [a for a in _applications(8) if a[0] == direction]
    n, median = cycle_baselines[(8, direction)]
    assert n == len(apps) >= 15
    truth = statistics.median(sleep for _, sleep, _ in apps)
    assert abs(median - truth) <= 0.10 * truth + 10, (median, truth)


@pytest.mark.parametrize("direction", ["up", "down"])
def test_capture_baseline_of_script_4_matches_pg_sleep_plus_its_work(cycle_baselines, direction):
    # Script 4 also inserts (up) or deletes (down) 12,000 rows; what that takes is what verbose `ran` shows
    # beyond the sleep.
    apps = [a for a in _applications(4) if a[0] == direction]
    work = statistics.median(ran - sleep for _, sleep, ran in apps if ran is not None)
    n, median = cycle_baselines[(4, direction)]
    assert n == len(apps) >= 15
    truth = statistics.median(sleep + work for _, sleep, _ in apps)
    assert median >= statistics.median(sleep for _, sleep, _ in apps)
    assert abs(median - truth) <= 0.10 * truth + 10, (median, truth, work)

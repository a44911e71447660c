"""The warehouse's size, for tests/bench.py: bytes per raw line and per run, measured in a generated fleet's
warehouse before and after `prune` (both compacted), and a year of a fleet extrapolated from them.

A compacted file is the empty schema plus what its rows take, so removing raw lines and nothing else gives
bytes per raw line = (size before - size after) / lines removed, and what is left over, less the empty
schema and the lines still kept, is what the runs take (their events, findings, baselines, sources).
Not collected by pytest.
"""

from __future__ import annotations

import math
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.bench_ingest import table

TABLES = ("log_lines", "migrate_events", "runs", "findings", "pruned_streams")


def _rows(db: Path) -> dict[str, int]:
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        return {name: con.execute(f"SELECT count(*) FROM {name}").fetchall()[0][0]  # names from TABLES only
                for name in TABLES}
    finally:
        con.close()


def measure(db: Path, work: Path, *, as_of: str, keep_days: float, source: dict[str, Any]
            ) -> tuple[list[str], dict[str, float]]:
    """Compact a copy of `db`, prune it to `keep_days` (compacted again), and compare: the printed table and
    the per-row sizes. `source` is the corpus meta (its bytes and lines: the input's size per record)."""
    from pipeline.api import Config, Lens
    from pipeline.warehouse import connect
    from pipeline.warehouse.retention import compact

    copy = work / "storage.duckdb"
    shutil.copy(db, copy)
    compact(copy)
    full, before = copy.stat().st_size, _rows(copy)
    config = Config.model_validate({"retention": {"keep_raw_days": keep_days, "compact": True}})
    Lens(copy, config=config, as_of=datetime.fromisoformat(as_of)).prune()
    pruned, after = copy.stat().st_size, _rows(copy)
    empty = work / "empty.duckdb"
    connect(empty, create=True).close()
    compact(empty)
    schema = empty.stat().st_size
    for p in (copy, empty):
        p.unlink()

    gone = before["log_lines"] - after["log_lines"]
    per_line = (full - pruned) / gone if gone else float("nan")
    runs, events = before["runs"], before["migrate_events"]
    per_run = (full - schema - before["log_lines"] * per_line) / runs
    per_run_pruned = (pruned - schema - after["log_lines"] * per_line) / runs
    sizes = {"per_line": per_line, "per_run": per_run, "per_run_pruned": per_run_pruned, "schema": schema,
             "events_per_run": events / runs, "lines_per_run": before["log_lines"] / runs}
    rows = [
        ["the fleet's warehouse after its last weekly run, compacted",
         f"{before['log_lines']:,} raw lines, {events:,} events, {runs:,} runs, "
         f"{before['findings']:,} findings",
         f"{full / 1e6:,.1f}"],
        [f"after `prune --keep-days {keep_days:g}`, compacted",
         f"{after['log_lines']:,} raw lines kept, {after['pruned_streams']:,} streams in pruned_streams",
         f"{pruned / 1e6:,.1f}"],
        ["an empty warehouse (the schema)", "–", f"{schema / 1e6:,.1f}"],
    ]
    lines = [table(rows, ["measured", "rows", "MB"]), "",
             f"bytes per raw line: {per_line:,.0f} (the Fluent Bit input has "
             f"{source['bytes'] / source['lines']:,.0f} per record); bytes per run, its events, findings and "
             f"baselines included: {per_run:,.0f} "
             f"({per_run * runs / events:,.0f} per event at {events / runs:.1f} events per run), "
             f"{per_run_pruned:,.0f} once its raw lines are pruned (its pruned_streams row added); "
             f"{before['log_lines'] / runs:.1f} raw lines per run"]
    return lines, sizes


def year(sizes: dict[str, float], *, services: int, runs_per_week: float, lines_per_run: float | None,
         keep_days: float) -> list[str]:
    """A year of a fleet, extrapolated from measured per-row sizes: with and without the retention policy."""
    if math.isnan(sizes["per_line"]):
        return ["(no raw line was pruned: bytes per raw line unknown, no extrapolation)"]
    measured_lines = lines_per_run is None
    per_run_lines = sizes["lines_per_run"] if lines_per_run is None else lines_per_run
    runs = services * runs_per_week * 52
    lines = runs * per_run_lines
    kept = lines * min(1.0, keep_days / 364)
    everything = sizes["schema"] + lines * sizes["per_line"] + runs * sizes["per_run"]
    bounded = sizes["schema"] + kept * sizes["per_line"] + runs * sizes["per_run_pruned"]
    rows = [
        ["all raw lines kept (no `[retention]`)", f"{runs:,.0f}", f"{lines:,.0f}",
         f"{everything / 1e9:,.2f}"],
        [f"`[retention] keep_raw_days = {keep_days:g}`", f"{runs:,.0f}", f"{kept:,.0f}",
         f"{bounded / 1e9:,.2f}"],
    ]
    header = [f"a year of a {services:,}-service fleet (EXTRAPOLATED)", "runs", "raw lines kept", "GB"]
    return [table(rows, header),
            "",
            f"Extrapolated from the per-row sizes measured above, not measured: {services:,} services x "
            f"{runs_per_week:g} runs per service per week x 52 weeks, {per_run_lines:.1f} raw lines per run"
            + (" (as in the generated fleet)" if measured_lines else "")
            + f", {sizes['events_per_run']:.1f} events per run (as in the generated fleet); with the policy, "
            f"{keep_days:g} of 364 days of raw lines are in the file at any time."]

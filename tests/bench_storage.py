"""The warehouse's size, for tests/bench.py: bytes per raw line and per run, measured in a generated fleet's
warehouse, and a year of a fleet extrapolated from them, with and without the retention policy.

Every size is of a compacted file (DuckDB keeps freed pages, so an uncompacted file says little). Four files:
the warehouse as the weekly run left it; the same after `prune` (the policy as it runs); the same with every
raw line deleted; and an empty warehouse (the schema). Then

    bytes per raw line   = (all - without raw lines) / raw lines
    bytes per run        = (without raw lines - empty) / runs      (its events, findings, baselines, sources)
    bytes per pruned stream = (pruned - without raw lines - lines kept x bytes per line) / streams pruned

(prune lists each stream it empties in `pruned_streams`). Not collected by pytest.
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
        out = {name: con.execute(f"SELECT count(*) FROM {name}").fetchall()[0][0]  # names from TABLES only
               for name in TABLES}
        out["streams"] = con.execute("SELECT count(DISTINCT stream_key) FROM log_lines").fetchall()[0][0]
        return out
    finally:
        con.close()


def measure(db: Path, work: Path, *, as_of: str, keep_days: float, source: dict[str, Any]
            ) -> tuple[list[str], dict[str, float]]:
    """The printed table and the per-row sizes of `db` (left untouched). `source` is the corpus meta: the
    input's bytes and records, for its size per record."""
    import duckdb

    from pipeline.api import Config, Lens
    from pipeline.warehouse import connect
    from pipeline.warehouse.retention import compact

    full_db, bare_db, empty_db = (work / f"storage-{name}.duckdb" for name in ("full", "bare", "empty"))
    shutil.copy(db, full_db)
    compact(full_db)
    full, before = full_db.stat().st_size, _rows(full_db)
    shutil.copy(full_db, bare_db)
    con = duckdb.connect(str(bare_db))
    con.execute("DELETE FROM log_lines")
    con.close()
    compact(bare_db)
    bare = bare_db.stat().st_size
    config = Config.model_validate({"retention": {"keep_raw_days": keep_days, "compact": True}})
    Lens(full_db, config=config, as_of=datetime.fromisoformat(as_of)).prune()
    pruned, after = full_db.stat().st_size, _rows(full_db)
    connect(empty_db, create=True).close()
    compact(empty_db)
    schema = empty_db.stat().st_size
    for p in (full_db, bare_db, empty_db):
        p.unlink()

    runs, events, lines = before["runs"], before["migrate_events"], before["log_lines"]
    per_line = (full - bare) / lines if lines else float("nan")
    per_run = (bare - schema) / runs
    per_stream = (pruned - bare - after["log_lines"] * per_line) / max(1, after["pruned_streams"])
    sizes = {"per_line": per_line, "per_run": per_run, "per_pruned_stream": max(0.0, per_stream),
             "schema": schema, "events_per_run": events / runs, "lines_per_run": lines / runs,
             "streams_per_run": before["streams"] / runs}
    rows = [
        ["the fleet's warehouse after its last weekly run",
         f"{lines:,} raw lines, {events:,} events, {runs:,} runs, {before['findings']:,} findings",
         f"{full / 1e6:,.1f}"],
        [f"the same after `prune --keep-days {keep_days:g}`",
         f"{after['log_lines']:,} raw lines kept, {after['pruned_streams']:,} streams in pruned_streams",
         f"{pruned / 1e6:,.1f}"],
        ["the same with every raw line deleted", f"0 raw lines, {events:,} events, {runs:,} runs",
         f"{bare / 1e6:,.1f}"],
        ["an empty warehouse (the schema)", "–", f"{schema / 1e6:,.1f}"],
    ]
    text = [table(rows, ["measured (each file compacted)", "rows", "MB"]), "",
            f"bytes per raw line: {per_line:,.0f} (the Fluent Bit input: "
            f"{source['bytes'] / source['lines']:,.0f} per record); bytes per run (its events, "
            f"findings, baselines and sources included): {per_run:,.0f} "
            f"({per_run * runs / events:,.0f} per event at {events / runs:.1f} events per run); bytes per "
            f"pruned_streams row: {per_stream:,.0f}; {lines / runs:.1f} raw lines per run"]
    return text, sizes


def year(sizes: dict[str, float], *, services: int, runs_per_week: float, lines_per_run: float | None,
         keep_days: float) -> list[str]:
    """A year of a fleet, extrapolated from measured per-row sizes: with and without the retention policy."""
    if math.isnan(sizes["per_line"]):
        return ["(the fleet's warehouse has no raw lines: bytes per raw line unknown, no extrapolation)"]
    per_run_lines = sizes["lines_per_run"] if lines_per_run is None else lines_per_run
    runs = services * runs_per_week * 52
    lines = runs * per_run_lines
    share = min(1.0, keep_days / 364)
    kept = lines * share
    everything = sizes["schema"] + lines * sizes["per_line"] + runs * sizes["per_run"]
    bounded = (sizes["schema"] + kept * sizes["per_line"] + runs * sizes["per_run"]
               + runs * (1 - share) * sizes["streams_per_run"] * sizes["per_pruned_stream"])
    rows = [
        ["all raw lines kept (no `[retention]`)", f"{runs:,.0f}", f"{lines:,.0f}",
         f"{everything / 1e9:,.2f}"],
        [f"`[retention] keep_raw_days = {keep_days:g}`", f"{runs:,.0f}", f"{kept:,.0f}",
         f"{bounded / 1e9:,.2f}"],
    ]
    header = [f"a year of a {services:,}-service fleet (EXTRAPOLATED)", "runs", "raw lines kept", "GB"]
    return [table(rows, header), "",
            f"Extrapolated from the per-row sizes measured above, not measured: {services:,} services x "
            f"{runs_per_week:g} runs per service per week x 52 weeks, {per_run_lines:.1f} raw lines per run"
            + (" (as in the generated fleet)" if lines_per_run is None else "")
            + f", {sizes['events_per_run']:.1f} events per run (as in the generated fleet); with the policy, "
            f"{keep_days:g} of 364 days of raw lines are in the file at any time, and every older run's "
            "stream has its pruned_streams row."]

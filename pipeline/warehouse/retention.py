"""The retention policy: a bounded warehouse that keeps all of its history.

Raw `log_lines` of closed streams and `rejects` older than the cutoff are removed; events, runs, baselines,
findings, alerts and sources stay, so the weekly review and the SQL surface keep working for all history.
DuckDB does not give freed space back to the file system, so `compact` rewrites the file afterwards.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import duckdb

from pipeline.core.errors import WarehouseError
from pipeline.warehouse.execution import execute, statements, transaction


@dataclass(frozen=True)
class PruneResult:
    """What one prune removed, and the file size before and after compaction."""

    cutoff: datetime
    lines: int
    rejects: int
    streams: int
    bytes_before: int = 0
    bytes_after: int = 0

    def summary(self) -> str:
        size = (f"; compacted {self.bytes_before / 2**20:,.1f} MiB -> {self.bytes_after / 2**20:,.1f} MiB"
                if self.bytes_before else "")
        return (f"pruned raw lines before {self.cutoff:%Y-%m-%d %H:%M}: {self.lines:,} lines of {self.streams:,} "
                f"closed streams and {self.rejects:,} rejects removed; events, runs and findings kept{size}")


def prune(con: duckdb.DuckDBPyConnection, *, keep_days: float, now: datetime) -> PruneResult:
    """Remove raw lines of streams whose newest line is older than `keep_days` before `now`, and older rejects."""
    cutoff = now - timedelta(days=keep_days)
    before = con.execute("SELECT (SELECT count(*) FROM log_lines), (SELECT count(*) FROM rejects)").fetchall()[0]
    with transaction(con):
        for statement in statements("retention"):
            execute(con, statement, {"cutoff": cutoff, "now": now})
        streams = con.execute("SELECT count(*) FROM closed_streams").fetchall()[0][0]
    after = con.execute("SELECT (SELECT count(*) FROM log_lines), (SELECT count(*) FROM rejects)").fetchall()[0]
    return PruneResult(cutoff, before[0] - after[0], before[1] - after[1], streams)


def compact(path: Path | str) -> tuple[int, int]:
    """Rewrite the warehouse file without its free blocks; returns (bytes before, bytes after).

    The copy is written beside the file and moved over it only when complete, so a crash leaves the old
    file whole."""
    path = Path(path)
    fresh = path.with_name(path.name + ".compacting")
    fresh.unlink(missing_ok=True)
    before = path.stat().st_size
    try:
        con = duckdb.connect(str(path))
    except duckdb.Error as e:
        raise WarehouseError(f"{path}: cannot compact: {str(e).splitlines()[0]} (is another migrate-lens running?)") from e
    try:
        name = con.execute("SELECT current_database()").fetchall()[0][0]
        con.execute(f"ATTACH '{_literal(fresh)}' AS compacted")
        con.execute(f'COPY FROM DATABASE "{name}" TO compacted')
        con.execute("DETACH compacted")
    except BaseException:
        con.close()
        fresh.unlink(missing_ok=True)
        raise
    con.close()
    os.replace(fresh, path)
    return before, path.stat().st_size


def _literal(path: Path) -> str:
    return str(path).replace("'", "''")  # a file name is text in ATTACH, not a bindable value

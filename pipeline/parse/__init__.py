"""Stage 2, parse: the migrate grammar over `log_lines`, into `migrate_events` and `runs`.

Ingest queues every stream whose lines changed in `pending_streams`; `rebuild` re-derives the events and
runs of exactly those streams, set-based in SQL (`sql/parse/events.sql`, `sql/parse/runs.sql`), in parts
of about `REBUILD_LINES` lines so the window queries stay within memory. A part commits whole, so a failed
rebuild leaves its streams queued and the next ingest redoes them.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from pipeline.core.config import Config
from pipeline.core.errors import WarehouseError
from pipeline.parse.events import rebuild_events
from pipeline.parse.runs import rebuild_runs
from pipeline.warehouse import execute, scalar, transaction

__all__ = ["ParseResult", "rebuild"]

REBUILD_LINES = 1_000_000


@dataclass(frozen=True)
class ParseResult:
    """What one rebuild produced for the streams it touched."""

    streams: int
    events: int
    runs: int

    def summary(self) -> str:
        return f"{self.events:,} migrate events in {self.runs:,} runs rebuilt ({self.streams:,} streams)"


def rebuild(con: duckdb.DuckDBPyConnection, *, config: Config) -> ParseResult:
    """Rebuild events and runs of the streams in `pending_streams`, one transaction per part."""
    streams = scalar(con, "SELECT count(*) FROM pending_streams")
    if not streams:
        return ParseResult(0, 0, 0)
    total = scalar(con, "SELECT count(*) FROM log_lines WHERE stream_key IN (SELECT stream_key FROM pending_streams)")
    parts = max(1, -(-total // REBUILD_LINES))
    event_count = run_count = 0
    for part in range(parts):
        try:
            with transaction(con):
                execute(con, "CREATE OR REPLACE TEMP TABLE touched_streams AS SELECT DISTINCT stream_key "
                             "FROM pending_streams WHERE hash(stream_key) % $parts = $part",
                        {"parts": parts, "part": part})
                event_count += rebuild_events(con, config=config)
                run_count += rebuild_runs(con, config=config)
                con.execute("DELETE FROM pending_streams WHERE stream_key IN (SELECT stream_key FROM touched_streams)")
        except duckdb.Error as e:
            raise WarehouseError(f"rebuilding events and runs failed: {str(e).splitlines()[0]} "
                                 "(the lines are stored; re-run ingest to retry, --debug for details)") from e
    return ParseResult(streams, event_count, run_count)

"""Stage 2, parse: the migrate grammar over `log_lines`, into `migrate_events` and `runs`.

Ingest queues every stream whose lines changed in `pending_streams`; `rebuild` re-derives the events and
runs of exactly those streams (events: each line's shape in SQL, its place in its stream in polars, see
`events.py`; runs: set-based SQL, `sql/parse/runs.sql`), in parts of about `REBUILD_LINES` lines so that a
part's frames and window queries stay within memory. The streams are cut into parts in
time order, and each part reads log_lines and migrate_events only within its time range, which the zone
maps of those tables skip to: a part's cost follows its own lines, not the warehouse's history. A part
commits whole, so a failed rebuild leaves its streams queued and the next ingest redoes them.
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

REBUILD_LINES = 250_000


@dataclass(frozen=True)
class ParseResult:
    """What one rebuild produced for the streams it touched."""

    streams: int
    events: int
    runs: int

    def summary(self) -> str:
        return f"{self.events:,} migrate events in {self.runs:,} runs rebuilt ({self.streams:,} streams)"


_PLAN = """
CREATE OR REPLACE TEMP TABLE rebuild_plan AS
WITH lines AS (
    SELECT stream_key, count(*) AS n, min(ts) AS lo, max(ts) AS hi FROM log_lines
    WHERE stream_key IN (SELECT stream_key FROM pending_streams) GROUP BY stream_key
), events AS (   -- where a stream's old events are: they go too
    SELECT stream_key, min(ts) AS lo, max(ts) AS hi FROM migrate_events
    WHERE stream_key IN (SELECT stream_key FROM pending_streams) GROUP BY stream_key
), streams AS (
    SELECT p.stream_key, coalesce(l.n, 0) AS n, least(l.lo, e.lo) AS lo, greatest(l.hi, e.hi) AS hi
    FROM (SELECT DISTINCT stream_key FROM pending_streams) p
    LEFT JOIN lines l USING (stream_key) LEFT JOIN events e USING (stream_key)
)
SELECT stream_key, n, lo, hi,
    (sum(n) OVER (ORDER BY lo, stream_key ROWS UNBOUNDED PRECEDING) - n) // $lines AS part
FROM streams
"""


def rebuild(con: duckdb.DuckDBPyConnection, *, config: Config) -> ParseResult:
    """Rebuild events and runs of the streams in `pending_streams`, one transaction per part."""
    streams = scalar(con, "SELECT count(*) FROM pending_streams")
    if not streams:
        return ParseResult(0, 0, 0)
    execute(con, _PLAN, {"lines": REBUILD_LINES})
    parts = con.execute("SELECT part, min(lo), max(hi) FROM rebuild_plan GROUP BY part ORDER BY part").fetchall()
    event_count = run_count = 0
    for part, lo, hi in parts:
        try:
            with transaction(con):
                execute(con, "CREATE OR REPLACE TEMP TABLE touched_streams AS SELECT stream_key, n FROM rebuild_plan "
                             "WHERE part = $part", {"part": part})
                event_count += rebuild_events(con, config=config, lo=lo, hi=hi)
                run_count += rebuild_runs(con, config=config, lo=lo, hi=hi)
                con.execute("DELETE FROM pending_streams WHERE stream_key IN (SELECT stream_key FROM touched_streams)")
        except duckdb.Error as e:
            raise WarehouseError(f"rebuilding events and runs failed: {str(e).splitlines()[0]} "
                                 "(the lines are stored; re-run ingest to retry, --debug for details)") from e
    return ParseResult(streams, event_count, run_count)

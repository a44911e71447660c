"""The runs half of parse: one row per migrate process, with its command, versions and outcome."""

from __future__ import annotations

from datetime import datetime

import duckdb

from pipeline.core.config import Config
from pipeline.warehouse import execute, scalar, statements


def rebuild_runs(con: duckdb.DuckDBPyConnection, *, config: Config, lo: datetime | None = None,
                 hi: datetime | None = None) -> int:
    """Rebuild the runs of the streams in `touched_streams`, whose lines and events all lie between `lo` and
    `hi` (none: anywhere); returns how many exist for them now."""
    del config  # no knobs yet; kept so every stage has the same signature
    for statement in statements("parse/runs"):
        execute(con, statement, {"lo": lo or datetime.min, "hi": hi or datetime.max})
    return scalar(con, "SELECT count(*) FROM runs WHERE stream_key IN (SELECT stream_key FROM touched_streams)")

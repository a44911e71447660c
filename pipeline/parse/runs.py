"""The runs half of parse: one row per migrate process, with its command, versions and outcome."""

from __future__ import annotations

import duckdb

from pipeline.core.config import Config
from pipeline.warehouse import scalar, statements


def rebuild_runs(con: duckdb.DuckDBPyConnection, *, config: Config) -> int:
    """Rebuild the runs of the streams in `touched_streams`; returns how many exist for them now."""
    del config  # no knobs yet; kept so every stage has the same signature
    for statement in statements("parse/runs"):
        con.execute(statement)
    return scalar(con, "SELECT count(*) FROM runs WHERE stream_key IN (SELECT stream_key FROM touched_streams)")

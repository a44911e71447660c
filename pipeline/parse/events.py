"""The events half of parse: the migrate grammar over `log_lines`, into `migrate_events` (runs assigned).

The work is set-based SQL (`sql/events.sql`): classify every line by golang-migrate's line shapes, join
multi-line errors with their SQL body, split the doubled non-fatal error, cut each stream into runs and
derive every script's own duration.
"""

from __future__ import annotations

from datetime import datetime

import duckdb

from pipeline.core.config import Config
from pipeline.warehouse import execute, scalar, statements


def rebuild_events(con: duckdb.DuckDBPyConnection, *, config: Config, lo: datetime | None = None,
                   hi: datetime | None = None) -> int:
    """Rebuild the events of the streams in `touched_streams`, whose lines and old events all lie between `lo`
    and `hi` (none: anywhere); returns how many exist for them now."""
    params = {
        "cont_ms": int(config.ingest.error_continuation_seconds * 1000),
        "run_gap_ms": int(config.ingest.run_gap_minutes * 60_000),
        "lo": lo or datetime.min, "hi": hi or datetime.max,
    }
    for statement in statements("parse/events"):
        execute(con, statement, params)
    return scalar(con, "SELECT count(*) FROM migrate_events WHERE (ts BETWEEN $lo AND $hi OR ts IS NULL) "
                       "AND stream_key IN (SELECT stream_key FROM touched_streams)", params)

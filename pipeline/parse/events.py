"""The events half of parse: the migrate grammar over `log_lines`, into `migrate_events` (runs assigned).

SQL decides what each line is by itself (`sql/parse/line_shapes.sql`: golang-migrate's line shapes, versions,
durations) while it reads the lines; polars puts them in stream order once and does what depends on the
lines around each one (`parse/sequence.py`: pieces, error blocks, doubled errors, runs, own time); SQL says
what each error block means (`sql/parse/error_heads.sql`) and stores the events.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import duckdb
import polars as pl
import pyarrow as pa

from pipeline.core.assets import sql_text
from pipeline.core.config import Config
from pipeline.parse import sequence
from pipeline.warehouse import execute, frame, scalar, statements
from pipeline.warehouse.execution import ARROW_CHUNK, split

CHUNK_LINES = 100_000  # lines sequenced at once: polars' frames beside DuckDB's memory stay small
# A chunk this long holds one stream that long (chunks never split a stream): sequenced by window queries,
# which DuckDB spills to disk, rather than in memory.
WINDOWED_LINES = 1_000_000


def _filled(name: str, **parts: str) -> str:
    """`sql/<name>.sql` as one statement, each `{part}` replaced (the parser's own split drops the comments)."""
    text = sql_text(name)
    for part, sql in parts.items():
        text = text.replace(f"{{{part}}}", sql)
    return split(text)[0]


def _shaped(lines_sql: str) -> str:
    """line_shapes.sql over a query's rows."""
    return _filled("parse/line_shapes", lines=f"({split(lines_sql)[0]})")


def _windowed() -> str:
    """events_windowed.sql with the shapes and the error blocks' meaning filled in."""
    return _filled("parse/events_windowed", line_shapes=_filled("parse/line_shapes", lines="logical"),
                   error_heads=_filled("parse/error_heads", heads="error_blocks"))


@contextmanager
def _visible(con: duckdb.DuckDBPyConnection, name: str, rows: pl.DataFrame) -> Iterator[None]:
    """`rows` as the relation `name` for the statements inside, in chunks DuckDB scans in parallel."""
    table = rows.to_arrow()
    con.register(name, pa.Table.from_batches(table.to_batches(max_chunksize=ARROW_CHUNK), schema=table.schema))
    try:
        yield
    finally:
        con.unregister(name)


def _sequence_chunk(con: duckdb.DuckDBPyConnection, streams: pl.DataFrame, params: dict[str, object]) -> None:
    """Shape, sequence and store the events of one chunk of the streams (each frame let go as soon as the
    next holds what it had: a chunk's memory, not the rebuild's)."""
    physical = frame(con, _shaped(sql_text("parse/physical_lines")), params)
    if not physical.height:
        return
    lines, joined = sequence.logical_lines(physical)
    del physical
    if joined.height:  # the joined pieces of long lines: shaped as the lines they are
        with _visible(con, "joined_pieces", joined):
            joined = frame(con, _shaped("SELECT * FROM joined_pieces"))
        lines = pl.concat([lines, joined.select(lines.columns)]).sort("sid", "lseq")
    lines, heads = sequence.error_blocks(lines, params["cont_ms"])
    with _visible(con, "error_heads", heads):
        said = frame(con, _filled("parse/error_heads", heads="error_heads"))
    said = said.join(heads.select("sid", "lseq", "block_lines"), on=["sid", "lseq"])
    events = sequence.events(lines, said, streams, params["run_gap_ms"])
    del lines
    with _visible(con, "sequenced", events):
        execute(con, sql_text("parse/events_insert"))


def rebuild_events(con: duckdb.DuckDBPyConnection, *, config: Config, lo: datetime | None = None,
                   hi: datetime | None = None) -> int:
    """Rebuild the events of the streams in `touched_streams`, whose lines and old events all lie between `lo`
    and `hi` (none: anywhere); returns how many exist for them now."""
    params = {"lo": lo or datetime.min, "hi": hi or datetime.max, "chunk_lines": CHUNK_LINES,
              "cont_ms": int(config.ingest.error_continuation_seconds * 1000),
              "run_gap_ms": int(config.ingest.run_gap_minutes * 60_000)}
    for statement in statements("parse/events"):
        execute(con, statement, params)
    streams = frame(con, "SELECT sid, stream_key FROM event_streams")
    for chunk, lines in con.execute("SELECT chunk, sum(n) FROM event_streams GROUP BY chunk ORDER BY chunk").fetchall():
        if lines > WINDOWED_LINES:
            execute(con, _windowed(), {**params, "chunk": chunk})
        else:
            _sequence_chunk(con, streams, {**params, "chunk": chunk})
    return scalar(con, "SELECT count(*) FROM migrate_events WHERE (ts BETWEEN $lo AND $hi OR ts IS NULL) "
                       "AND stream_key IN (SELECT stream_key FROM touched_streams)", params)

"""The warehouse layer: opening the DuckDB file (migrating its schema), transactions, and running named SQL.

Stages get a connection from here and never open DuckDB themselves; SQL lives in `pipeline/sql/` and
`queries/`, values are always bound.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from pipeline.core.config import WarehouseConfig
from pipeline.core.errors import WarehouseError
from pipeline.warehouse import migrations
from pipeline.warehouse.execution import execute, frame, one, scalar, statements, transaction

__all__ = ["connect", "execute", "frame", "one", "scalar", "stale_analysis", "statements", "transaction", "upgrade"]


def connect(
    path: Path | str, *, read_only: bool = False, settings: WarehouseConfig | None = None, create: bool = True
) -> duckdb.DuckDBPyConnection:
    """Open the warehouse at `path`. Writers bring its schema up to this build's version, and create the file
    when `create` (only the commands that load something do: a mistyped --db must not report all clear);
    readers refuse a warehouse whose schema is older or newer than this build's (see `migrations`)."""
    if not create and str(path) != ":memory:" and not Path(path).is_file():
        raise WarehouseError(f"{path}: no migrate-lens warehouse here (check --db, or run `migrate-lens ingest` first)")
    con = _open(str(path), read_only, settings or WarehouseConfig())
    try:
        if read_only:
            migrations.check_readable(con, str(path))
        else:
            migrations.migrate(con, str(path))
    except BaseException:
        con.close()
        raise
    return con


def stale_analysis(con: duckdb.DuckDBPyConnection) -> str | None:
    """Why the findings do not describe what is ingested (None when they do): never analyzed, or sources
    were ingested (or streams await their rebuild) after the last analysis."""
    last = con.execute("SELECT analyzed_at, as_of FROM analyses ORDER BY analyzed_at DESC LIMIT 1").fetchall()
    newest = con.execute("SELECT max(ingested_at) FROM ingested_sources").fetchall()[0][0]
    if not last:
        return "nothing was analyzed yet" if newest is not None else None
    if newest is not None and newest > last[0][0]:
        return f"sources were ingested at {newest:%Y-%m-%d %H:%M:%S} UTC, after the last analysis ({last[0][0]:%Y-%m-%d %H:%M:%S})"
    if con.execute("SELECT count(*) FROM pending_streams").fetchall()[0][0]:
        return "some ingested lines still wait for their events and runs to be rebuilt"
    return None


def upgrade(path: Path | str, *, settings: WarehouseConfig | None = None) -> tuple[int, int]:
    """Migrate an existing warehouse to this build's schema; returns (version before, version after)."""
    if not Path(path).is_file():
        raise WarehouseError(f"{path}: no warehouse there to upgrade (check --db)")
    con = _open(str(path), False, settings or WarehouseConfig())
    try:
        return migrations.migrate(con, str(path))
    finally:
        con.close()


def _open(path: str, read_only: bool, settings: WarehouseConfig) -> duckdb.DuckDBPyConnection:
    try:
        con = duckdb.connect(path, read_only=read_only)
    except duckdb.IOException as e:
        text = str(e)
        if "lock" in text.lower():
            raise WarehouseError(
                f"{path}: the warehouse is in use by another migrate-lens process "
                "(wait for it to finish, or use another --db)"
            ) from e
        raise WarehouseError(f"{path}: cannot open the warehouse: {text.splitlines()[0]}") from e
    except duckdb.Error as e:
        raise WarehouseError(
            f"{path}: not a DuckDB warehouse or unreadable: {str(e).splitlines()[0]} (check --db)"
        ) from e
    try:
        con.execute("SET memory_limit = ?", [settings.memory_limit])
        if settings.threads:
            con.execute("SET threads = ?", [settings.threads])
        con.execute("SET TimeZone = 'UTC'")
    except duckdb.Error as e:
        con.close()
        raise WarehouseError(f"warehouse.memory_limit/threads: {str(e).splitlines()[0]} (fix the config file)") from e
    return con

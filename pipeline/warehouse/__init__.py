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
from pipeline.warehouse.execution import execute, one, scalar, statements, transaction

__all__ = ["connect", "execute", "one", "scalar", "statements", "transaction", "upgrade"]


def connect(
    path: Path | str, *, read_only: bool = False, settings: WarehouseConfig | None = None
) -> duckdb.DuckDBPyConnection:
    """Open the warehouse at `path`. Writers create it and bring its schema up to this build's version;
    readers refuse a warehouse whose schema is older or newer than this build's (see `migrations`)."""
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

"""Opening the DuckDB warehouse and applying its schema."""

from __future__ import annotations

import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

import duckdb

from . import redact
from .config import WarehouseConfig
from .errors import WarehouseError


def sql_text(name: str) -> str:
    """The text of `pipeline/sql/<name>.sql`."""
    return resources.files("pipeline").joinpath("sql", f"{name}.sql").read_text(encoding="utf-8")


def apply_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create every table and macro the pipeline needs; safe to run on an existing warehouse."""
    con.execute(sql_text("schema"))
    con.execute(sql_text("lint"))
    con.execute(redact.macro_sql())


def connect(
    path: Path | str, *, read_only: bool = False, settings: WarehouseConfig | None = None
) -> duckdb.DuckDBPyConnection:
    """Open (and for writers, create and migrate) the warehouse at `path`."""
    path = str(path)
    settings = settings or WarehouseConfig()
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
    except duckdb.Error as e:
        con.close()
        raise WarehouseError(f"warehouse.memory_limit/threads: {str(e).splitlines()[0]} (fix the config file)") from e
    con.execute("SET TimeZone = 'UTC'")
    if not read_only:
        apply_schema(con)
    return con


_PARAM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


def execute(con: duckdb.DuckDBPyConnection, sql: str, params: Mapping[str, object] | None = None):
    """Run `sql` binding only the named parameters it mentions (DuckDB refuses unused ones)."""
    wanted = set(_PARAM.findall(re.sub(r"--[^\n]*", "", sql)))
    bound = {k: v for k, v in (params or {}).items() if k in wanted}
    missing = wanted - bound.keys()
    if missing:
        raise KeyError(f"unbound SQL parameters: {sorted(missing)}")
    return con.execute(sql, bound) if bound else con.execute(sql)


def statements(name: str) -> list[str]:
    """The statements of `pipeline/sql/<name>.sql`, split on `;` at line ends."""
    parts = re.split(r";\s*\n", sql_text(name))
    out = []
    for part in parts:
        code = "\n".join(ln for ln in part.splitlines() if not ln.strip().startswith("--")).strip()
        if code:
            out.append(part.strip().rstrip(";"))
    return out


def one(con: duckdb.DuckDBPyConnection, sql: str, params: Mapping[str, object] | list[object] | None = None):
    """The first row of a query, or None. Fetches the whole result so the connection is free again."""
    if isinstance(params, Mapping):
        rows = execute(con, sql, params).fetchall()
    else:
        rows = con.execute(sql, params or []).fetchall()
    return rows[0] if rows else None


def scalar(con: duckdb.DuckDBPyConnection, sql: str, params: Mapping[str, object] | list[object] | None = None):
    """The single value of a one-row, one-column query."""
    row = one(con, sql, params)
    return None if row is None else row[0]

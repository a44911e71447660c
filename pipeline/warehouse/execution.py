"""Running SQL on a warehouse connection: transactions, named statements, bound parameters."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import cache
from typing import TYPE_CHECKING

import duckdb

from pipeline.core.assets import sql_text

if TYPE_CHECKING:  # polars is loaded by DuckDB's .pl() when a frame is asked for, not by the warehouse
    import polars as pl


ARROW_CHUNK = 16_384  # rows per Arrow chunk handed to DuckDB: its scan of a registered table is parallel over chunks


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection, *, commit: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
    """BEGIN … COMMIT, or ROLLBACK when the block raises (anything, KeyboardInterrupt included). With
    `commit=False` the block's changes are always rolled back (a preview)."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        try:
            con.execute("ROLLBACK")
        except duckdb.Error:
            pass  # DuckDB already ended the transaction with the error
        raise
    con.execute("COMMIT" if commit else "ROLLBACK")


def _statement_params(sql: str) -> set[str]:
    return set().union(*(s.named_parameters for s in duckdb.extract_statements(sql))) if sql.strip() else set()


_params_of = cache(_statement_params)


def _bound(sql: str, params: Mapping[str, object] | None) -> dict[str, object]:
    """The parameters `sql` names, and only those (DuckDB refuses unused ones); one it names but is not given
    is a KeyError here rather than DuckDB's less specific binder error."""
    wanted = _params_of(sql)
    bound = {k: v for k, v in (params or {}).items() if k in wanted}
    missing = wanted - bound.keys()
    if missing:
        raise KeyError(f"unbound SQL parameters: {sorted(missing)}")
    return bound


def execute(con: duckdb.DuckDBPyConnection, sql: str, params: Mapping[str, object] | None = None):
    """Run `sql` binding only the named parameters it mentions."""
    bound = _bound(sql, params)
    return con.execute(sql, bound) if bound else con.execute(sql)


def frame(con: duckdb.DuckDBPyConnection, sql: str, params: Mapping[str, object] | None = None) -> pl.DataFrame:
    """The rows of one query as a polars frame, binding only the named parameters it mentions."""
    return con.sql(sql, params=_bound(sql, params) or None).pl()


def split(sql: str) -> tuple[str, ...]:
    """The statements of a SQL text, split by DuckDB's own parser (a `;` inside a literal stays put)."""
    return tuple(s.query.strip().rstrip(";") for s in duckdb.extract_statements(sql))


@cache
def statements(name: str) -> tuple[str, ...]:
    """The statements of `pipeline/sql/<name>.sql`."""
    return split(sql_text(name))


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

"""Stage 7, query: named queries from `queries/` or ad-hoc SQL, read-only, parameters always bound; and the
Parquet export of the SQL surface for engines past one machine."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from pipeline.core.errors import QueryError
from pipeline.warehouse.named import bind, named_queries

def run_query(con: duckdb.DuckDBPyConnection, name_or_sql: str, params: dict[str, str]) -> pl.DataFrame:
    """Run a named query (by name) or ad-hoc SQL with bound parameters; the connection should be read-only."""
    queries = named_queries()
    if name_or_sql in queries:
        q = queries[name_or_sql]
        sql, defaults = q.sql, {p.name: p.default for p in q.params}
    elif re.match(r"^\s*[A-Za-z_][\w-]*\s*$", name_or_sql):
        raise QueryError(f"{name_or_sql}: no such named query (see `migrate-lens query --list`)")
    else:
        sql, defaults = name_or_sql, {}
    bound = bind(sql, defaults, params)
    try:
        return con.sql(sql.strip().rstrip(";"), params=bound or None).pl()
    except duckdb.Error as e:
        first = str(e).splitlines()[0]
        if "read-only" in first.lower():
            raise QueryError("the query command is read-only: it cannot change the warehouse "
                             "(use the stage commands, or open the file with the DuckDB CLI)") from e
        raise QueryError(f"{name_or_sql if name_or_sql in queries else 'SQL'}: {first}") from e
    except AttributeError as e:  # a statement with no result (e.g. SET)
        raise QueryError("the statement returns no rows (the query command runs SELECT-like statements)") from e


# The relations of the SQL surface, and how each is partitioned in the Parquet export.
EXPORT = {
    "log_lines": ("env", "strftime(ts, '%Y-%m')"),
    "migrate_events": ("env", "strftime(ts, '%Y-%m')"),
    "runs": ("env", "strftime(started_at, '%Y-%m')"),
    "findings": ("env", "strftime(ts, '%Y-%m')"),
    "script_baselines": ("env", None),
    "rejects": (None, None),
    "ingested_sources": (None, None),
    "rollback_readiness": (None, None),
    "alerts": (None, None),
}


@dataclass(frozen=True)
class ExportResult:
    folder: Path
    tables: tuple[tuple[str, int], ...]

    def summary(self) -> str:
        rows = sum(n for _, n in self.tables)
        return f"exported {len(self.tables)} relations ({rows:,} rows) as Hive-partitioned Parquet to {self.folder}"


def export_parquet(con: duckdb.DuckDBPyConnection, folder: Path) -> ExportResult:
    """Each relation to `folder/<relation>/`, Hive-partitioned by env and month where it has them."""
    folder.mkdir(parents=True, exist_ok=True)
    done = []
    for table, (env, month) in EXPORT.items():
        target = (folder / table).as_posix().replace("'", "''")  # a path is text in COPY, not a bindable value
        columns = ["env"] if env else []
        select = f"SELECT * FROM {table}"
        if month:
            select = f"SELECT *, coalesce({month}, 'unknown') AS month FROM {table}"
            columns.append("month")
        options = "FORMAT parquet, OVERWRITE_OR_IGNORE"
        if columns:
            options += f", PARTITION_BY ({', '.join(columns)})"
            con.execute(f"COPY ({select}) TO '{target}' ({options})")
        else:
            (folder / table).mkdir(exist_ok=True)
            con.execute(f"COPY ({select}) TO '{target}/data.parquet' ({options})")
        done.append((table, con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]))
    return ExportResult(folder, tuple(done))

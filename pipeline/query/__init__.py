"""Stage 7, query: named queries from `queries/` or ad-hoc SQL, read-only, parameters always bound; and the
Parquet export of the SQL surface for engines past one machine."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import polars as pl

from pipeline.core.errors import QueryError
from pipeline.warehouse.named import bind, named_queries

# DuckDB's own switches, set before any user SQL and then locked: a read-only connection alone still lets
# COPY ... TO, EXPORT DATABASE, read_text('/etc/passwd'), glob() and INSTALL reach the host and the network.
_SANDBOX = (
    "SET autoinstall_known_extensions = false",
    "SET autoload_known_extensions = false",
    "SET allow_community_extensions = false",
    "SET enable_external_access = false",
    "SET lock_configuration = true",
)


def sandbox(con: duckdb.DuckDBPyConnection) -> None:
    """Shut the connection off from files, the network, extensions and configuration changes, for good."""
    for statement in _SANDBOX:
        con.execute(statement)


def _refusal(first: str) -> str | None:
    low = first.lower()
    if "read-only" in low:
        return ("the query command is read-only: it cannot change the warehouse "
                "(use the stage commands, or open the file with the DuckDB CLI)")
    if "file system operations are disabled" in low or "external extensions is disabled" in low:
        return ("the query command reads the warehouse only: no files, network or extensions "
                "(export with --format csv/json/parquet --output FILE instead)")
    if "configuration has been locked" in low:
        return "the query command cannot change settings (they are locked for the sandbox)"
    return None


def run_query(con: duckdb.DuckDBPyConnection, name_or_sql: str, params: dict[str, str],
              clock: datetime | None = None) -> pl.DataFrame:
    """Run a named query (by name) or ad-hoc SQL with bound parameters: one statement, on a read-only
    connection (the CLI's is also `sandbox`ed)."""
    queries = named_queries()
    if name_or_sql in queries:
        q = queries[name_or_sql]
        sql, defaults = q.sql, {p.name: p.default for p in q.params}
    elif re.match(r"^\s*[A-Za-z_][\w-]*\s*$", name_or_sql):
        raise QueryError(f"{name_or_sql}: no such named query (see `migrate-lens query --list`)")
    else:
        sql, defaults = name_or_sql, {}
    label = name_or_sql if name_or_sql in queries else "SQL"
    try:
        parsed = duckdb.extract_statements(sql)
    except duckdb.Error as e:
        raise QueryError(f"{label}: {str(e).splitlines()[0]}") from e
    if len(parsed) != 1:
        raise QueryError(f"{label}: give exactly one statement (this has {len(parsed)})")
    bound = bind(sql, defaults, params, clock)
    try:
        return con.sql(parsed[0].query.strip().rstrip(";"), params=bound or None).pl()
    except duckdb.Error as e:
        first = str(e).splitlines()[0]
        raise QueryError(_refusal(first) or f"{label}: {first}") from e
    except AttributeError as e:  # a statement with no result (e.g. SET)
        raise QueryError("the statement returns no rows (the query command runs SELECT-like statements)") from e


# Every relation of the SQL surface (README § The SQL surface, drift-tested), and how each is partitioned in
# the Parquet export: (Hive column from `env`, month expression) where it has them.
EXPORT = {
    "ingested_sources": (None, None),
    "rejects": (None, None),
    "log_lines": ("env", "strftime(ts, '%Y-%m')"),
    "migrate_events": ("env", "strftime(ts, '%Y-%m')"),
    "runs": ("env", "strftime(started_at, '%Y-%m')"),
    "script_baselines": ("env", None),
    "findings": ("env", "strftime(ts, '%Y-%m')"),
    "rollback_readiness": (None, None),
    "alerts": (None, None),
    "silences": (None, None),
    "lint_issues": (None, None),
    "verify_results": (None, None),
    "analyses": (None, None),
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

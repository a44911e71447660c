"""Stage 7, query: named queries from `queries/` or ad-hoc SQL, read-only, parameters always bound; and the
Parquet export of the SQL surface for engines past one machine."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from .errors import QueryError

QUERIES = Path(__file__).resolve().parent.parent / "queries"
_HEADER = re.compile(r"^--\s*(name|answers|param):\s*(.*)$")
_PARAM = re.compile(r"^(\w+)\s*=\s*(\S*)\s*(?:\((.*)\))?\s*$")
_USED = re.compile(r"\$([A-Za-z_]\w*)")


@dataclass(frozen=True)
class Param:
    name: str
    default: str
    description: str


@dataclass(frozen=True)
class NamedQuery:
    """One `queries/NAME.sql`: its header (what it answers, its parameters) and its statement."""

    name: str
    answers: str
    params: tuple[Param, ...]
    sql: str
    path: Path

    @classmethod
    def load(cls, path: Path) -> NamedQuery:
        name, answers, params = path.stem, "", []
        for line in path.read_text(encoding="utf-8").splitlines():
            m = _HEADER.match(line.strip())
            if not m:
                if line.strip() and not line.strip().startswith("--"):
                    break
                continue
            key, value = m.groups()
            if key == "name":
                name = value.strip()
            elif key == "answers":
                answers = value.strip()
            else:
                p = _PARAM.match(value.strip())
                if p:
                    params.append(Param(p.group(1), p.group(2), (p.group(3) or "").strip()))
        return cls(name, answers, tuple(params), path.read_text(encoding="utf-8"), path)


def named_queries(folder: Path = QUERIES) -> dict[str, NamedQuery]:
    """Every named query, by name."""
    return {q.name: q for q in (NamedQuery.load(p) for p in sorted(folder.glob("*.sql")))}


def _bind(sql: str, defaults: dict[str, str], given: dict[str, str]) -> dict[str, object]:
    used = set(_USED.findall(re.sub(r"--[^\n]*", "", sql)))
    unknown = sorted(set(given) - used)
    if unknown:
        raise QueryError(f"--param {unknown[0]}: the query has no such parameter "
                         f"(it takes: {', '.join(sorted(used)) or 'none'})")
    values = {**{k: v for k, v in defaults.items() if k in used}, **given}
    missing = sorted(used - values.keys())
    if missing:
        raise QueryError(f"${missing[0]}: the query needs it (add --param {missing[0]}=VALUE)")
    return dict(values)


def run_query(con: duckdb.DuckDBPyConnection, name_or_sql: str, params: dict[str, str],
              folder: Path = QUERIES) -> pl.DataFrame:
    """Run a named query (by name) or ad-hoc SQL with bound parameters; the connection should be read-only."""
    queries = named_queries(folder)
    if name_or_sql in queries:
        q = queries[name_or_sql]
        sql, defaults = q.sql, {p.name: p.default for p in q.params}
    elif re.match(r"^\s*[A-Za-z_][\w-]*\s*$", name_or_sql):
        raise QueryError(f"{name_or_sql}: no such named query (see `migrate-lens query --list`)")
    else:
        sql, defaults = name_or_sql, {}
    bound = _bind(sql, defaults, params)
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

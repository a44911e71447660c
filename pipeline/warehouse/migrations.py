"""The warehouse migrates itself: numbered, forward-only schema steps and a `schema_version` table.

`pipeline/sql/schema/NNNN_name.sql` are the steps, applied in order, each once, in one transaction on any
writing open. A warehouse written before versions existed (it has `log_lines` but no `schema_version`) is
at version 0: step 1 is written to be idempotent over it. A warehouse from a newer build is refused before
anything is written. Macros (`sql/macros.sql`, the vocabulary, `redact`) are re-created on every writing
open, so a reader always sees the definitions of the last build that wrote.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache

import duckdb

from pipeline.core import redact
from pipeline.core.assets import sql_folder, sql_text
from pipeline.core.errors import WarehouseError
from pipeline.core.vocabulary import vocabulary_macros
from pipeline.warehouse.execution import transaction

_STEP = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Step:
    version: int
    name: str
    sql: str


@cache
def steps() -> tuple[Step, ...]:
    """Every schema step this build knows, in order."""
    found = []
    for entry in sql_folder("schema").iterdir():
        m = _STEP.match(entry.name)
        if m:
            found.append(Step(int(m.group(1)), m.group(2), entry.read_text(encoding="utf-8")))
    found.sort(key=lambda s: s.version)
    # Numbers are reserved per branch of work, so a build may lack a step that a later merge brings: a gap is
    # allowed, a duplicate never, and `migrate` applies every step not yet recorded, not only those above the top.
    versions = [s.version for s in found]
    if len(set(versions)) != len(versions) or versions[:1] != [1]:
        raise AssertionError(f"schema steps must be numbered from 1, each number once: {versions}")
    return tuple(found)


def current_version() -> int:
    """The schema version this build writes."""
    return steps()[-1].version


def stored_version(con: duckdb.DuckDBPyConnection) -> int | None:
    """The warehouse's schema version: None for an empty file, 0 for one written before versions existed."""
    tables = {name for (name,) in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() AND schema_name = 'main'"
    ).fetchall()}
    if "schema_version" in tables:
        return con.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchall()[0][0]
    return 0 if "log_lines" in tables else None


def _refuse_newer(path: str, version: int) -> None:
    if version > current_version():
        raise WarehouseError(
            f"{path}: written by a newer migrate-lens (schema version {version}; this build knows up to "
            f"{current_version()}); upgrade migrate-lens, or use another --db. The file was not changed")


def macros_sql() -> str:
    return vocabulary_macros() + sql_text("macros") + "\n" + redact.macro_sql()


def migrate(con: duckdb.DuckDBPyConnection, path: str) -> tuple[int, int]:
    """Bring the schema to this build's version; returns (version before, version after)."""
    before = stored_version(con)
    start = before or 0
    _refuse_newer(path, start)
    done = {v for (v,) in con.execute("SELECT version FROM schema_version").fetchall()} if before else set()
    pending = [s for s in steps() if s.version not in done]
    with transaction(con):
        con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, name VARCHAR NOT NULL, "
                    "applied_at TIMESTAMP NOT NULL)")
        for step in pending:
            con.execute(step.sql)
            con.execute("INSERT INTO schema_version VALUES (?, ?, ?)",
                        [step.version, step.name, datetime.now(UTC).replace(tzinfo=None)])
        con.execute(macros_sql())
    return start, current_version()


def check_readable(con: duckdb.DuckDBPyConnection, path: str) -> None:
    """A read-only open needs exactly this build's schema: an older one is upgraded by a writer first."""
    version = stored_version(con)
    if version is None:
        raise WarehouseError(f"{path}: no migrate-lens warehouse here (check --db, or run `migrate-lens ingest` first)")
    _refuse_newer(path, version)
    done = {v for (v,) in con.execute("SELECT version FROM schema_version").fetchall()} if version else set()
    if version < current_version() or any(s.version not in done for s in steps()):
        raise WarehouseError(
            f"{path}: the warehouse has schema version {version} and this build reads {current_version()}; "
            f"run `migrate-lens upgrade --db {path}` (it keeps every row)")

"""The PostgreSQL side of `verify`: scratch databases, applying files the way migrate's postgres driver does,
migrate's schema_migrations bookkeeping, and the schema and data snapshots the checks compare.

Only databases created here (named `migrate_lens_verify_<random>_…`) are ever connected to for work or
dropped; the database of the URL is used for CREATE/DROP DATABASE and nothing else.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from functools import cache

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from pipeline.core.assets import sql_text
from pipeline.core.errors import ServerError
from pipeline.core.redact import redact

# What golang-migrate's postgres driver creates (ensureVersionTable) and keeps one row in.
MIGRATIONS_TABLE = ("CREATE TABLE IF NOT EXISTS schema_migrations "
                    "(version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL)")
SchemaSnapshot = dict[tuple[str, str], str]  # (kind, object) -> definition
DataSnapshot = dict[str, tuple[int, str]]  # table -> (rows, checksum of the rows' contents)


class Server:
    """A PostgreSQL server reached through `conninfo`; creates and drops its scratch databases."""

    def __init__(self, conninfo: str, *, shown_as: str, throwaway: bool = False) -> None:
        try:
            conninfo_to_dict(conninfo)
        except psycopg.Error as e:
            raise ServerError(f"--database {redact(conninfo)}: not a PostgreSQL URL or conninfo "
                              f"({_first_line(e)}); e.g. postgres://user@host:5432/postgres") from e
        self.conninfo = conninfo
        self.shown_as = shown_as  # redacted: never the password
        self.prefix = f"migrate_lens_verify_{secrets.token_hex(4)}"
        self._created: list[str] = []
        self._admin = self._connect(conninfo)
        self.version = str(self._admin.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
        # FILE_COPY (PostgreSQL 15+) copies a database's files instead of WAL-logging every page: faster on the
        # throwaway cluster, but it checkpoints, which a shared server given with --database should not pay for.
        self.copy_strategy = "FILE_COPY" if throwaway and self._admin.info.server_version >= 150000 else None

    def _connect(self, conninfo: str) -> psycopg.Connection:
        # autocommit: each file is sent as migrate sends it, with no BEGIN of ours around it; no prepared
        # statements, so a file run many times is still one simple query each time.
        try:
            return psycopg.connect(conninfo, autocommit=True, prepare_threshold=None, connect_timeout=15)
        except psycopg.Error as e:
            raise ServerError(f"verify: cannot connect to {self.shown_as}: {redact(_first_line(e))} "
                              "(check --database: host, port, user, password, and that the server runs)") from e

    def create(self, suffix: str, *, template: str | None = None) -> str:
        """A new scratch database, empty (from template0) or a copy of `template` (which no one may be using)."""
        name = f"{self.prefix}_{suffix}"
        strategy = sql.SQL(" STRATEGY {}").format(sql.SQL(self.copy_strategy)) if template and self.copy_strategy \
            else sql.SQL("")
        try:
            self._admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}{}").format(
                sql.Identifier(name), sql.Identifier(template or "template0"), strategy))
        except psycopg.Error as e:
            raise ServerError(f"verify: cannot create the scratch database {name} on {self.shown_as}: "
                              f"{_first_line(e)} (the role needs CREATEDB)") from e
        self._created.append(name)
        return name

    def drop(self, name: str) -> None:
        if name in self._created:
            self._admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            self._created.remove(name)

    @contextmanager
    def connect(self, name: str) -> Iterator[psycopg.Connection]:
        if name not in self._created:
            raise AssertionError(f"{name} is not a scratch database of this run")
        con = self._connect(make_conninfo(self.conninfo, dbname=name))
        try:
            yield con
        finally:
            con.close()

    def close(self) -> None:
        """Drop every scratch database still there, then disconnect. A drop that fails here (the server went
        away) must not hide the error that ended the run."""
        try:
            for name in list(self._created):
                with suppress(psycopg.Error):
                    self.drop(name)
        finally:
            self._admin.close()


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


def migrate_split(text: str) -> list[tuple[int, str]]:
    """The statements migrate sends with x-multi-statement=true, with their offsets: it cuts the file after
    every `;`, knowing nothing of quotes, comments or $$ bodies (database/multistmt), and skips blank pieces."""
    pieces, start = [], 0
    for m in re.finditer(";", text):
        pieces.append((start, text[start:m.end()]))
        start = m.end()
    pieces.append((start, text[start:]))
    return [(offset, piece) for offset, piece in pieces if piece.strip()]


def run_file(con: psycopg.Connection, text: str, *, multi_statement: bool) -> str | None:
    """Apply a migration file as migrate's postgres driver does; None when it applied, else the error.

    Without x-multi-statement the whole file is one simple query (psycopg sends a query without parameters
    with PQsendQuery), which PostgreSQL runs as one implicit transaction: CREATE INDEX CONCURRENTLY among other
    statements fails there exactly as under migrate.
    """
    pieces = migrate_split(text) if multi_statement else ([(0, text)] if text.strip() else [])
    for offset, piece in pieces:
        try:
            con.execute(piece)
        except psycopg.Error as e:
            if e.diag.sqlstate is None and isinstance(e, psycopg.ProgrammingError):
                continue  # comments only: PostgreSQL answers EmptyQueryResponse, which migrate takes as done
            if e.diag.sqlstate is None:  # the connection itself broke: not something a check can report
                raise ServerError(f"verify: lost the connection to the server: {_first_line(e)}") from e
            _roll_back_open_transaction(con)
            return _describe(e, text, offset)
    _roll_back_open_transaction(con)  # a file that BEGINs and never COMMITs: migrate's session would hold it open
    return None


def _roll_back_open_transaction(con: psycopg.Connection) -> None:
    if con.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        con.execute("ROLLBACK")


def _describe(e: psycopg.Error, text: str, offset: int) -> str:
    """`line L: <message> (SQLSTATE …)` plus detail and hint, as a person reads it under migrate's error."""
    d = e.diag
    where = ""
    if d.statement_position:
        position = offset + int(d.statement_position) - 1
        where = f"line {text.count(chr(10), 0, position) + 1}: "
    parts = [f"{where}{d.message_primary or _first_line(e)} (SQLSTATE {d.sqlstate})"]
    parts += [f"{label}: {value}" for label, value in (("detail", d.message_detail), ("hint", d.message_hint)) if value]
    return redact("; ".join(parts))


def set_version(con: psycopg.Connection, version: int | None, dirty: bool) -> None:
    """migrate's SetVersion: one row in schema_migrations (none for no version unless dirty: then -1).

    migrate empties the table with TRUNCATE; DELETE leaves the same row and costs no new files, twice per step.
    Both statements go as one query, one implicit transaction, as migrate's own transaction keeps them."""
    row = sql.SQL("INSERT INTO schema_migrations (version, dirty) VALUES ({}, {});").format(
        sql.Literal(-1 if version is None else version), sql.Literal(dirty))
    keep = version is not None or dirty
    con.execute(sql.SQL("DELETE FROM schema_migrations;{}").format(row if keep else sql.SQL("")))


def migrate_step(con: psycopg.Connection, text: str, *, to_version: int | None, multi_statement: bool) -> str | None:
    """One step as migrate runs it: mark `to_version` dirty, run the file, mark it clean if it applied."""
    set_version(con, to_version, True)
    error = run_file(con, text, multi_statement=multi_statement)
    if error is None:
        set_version(con, to_version, False)
    return error


def schema_snapshot(con: psycopg.Connection) -> SchemaSnapshot:
    return {(kind, obj): definition for kind, obj, definition in con.execute(_snapshot_sql()).fetchall()}


def data_snapshot(con: psycopg.Connection) -> DataSnapshot:
    """Rows and a content checksum per table, in one query. A row's content is its jsonb, whose keys are the
    column names, so the checksum does not depend on column order; row order does not count either."""
    tables = con.execute(_tables_sql()).fetchall()
    if not tables:
        return {}
    parts = [sql.SQL("SELECT {label}, count(*), coalesce(md5(string_agg(h, '' ORDER BY h)), '') FROM "
                     "(SELECT md5(to_jsonb(t)::text) AS h FROM ONLY {table} t) rows").format(
        label=sql.Literal(f"{schema}.{table}"), table=sql.Identifier(schema, table)) for schema, table in tables]
    query = sql.SQL(" UNION ALL ").join(parts)
    return {name: (int(n), checksum) for name, n, checksum in con.execute(query).fetchall()}


@cache
def _snapshot_sql() -> str:
    return sql_text("verify/schema_snapshot")


@cache
def _tables_sql() -> str:
    return sql_text("verify/data_tables")

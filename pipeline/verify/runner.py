"""The checks of each version, in order, on scratch copies.

A `base` database holds every earlier up applied once (and the earlier seeds). Version N's up runs on base,
so the next version starts from exactly what migrate would have left; the down and what follows it run on a
copy of base made right after that up (CREATE DATABASE … TEMPLATE), so no version is ever tested on the state
a failed check left behind. Seed N is applied to base after the copy: its rows are data the next versions'
downs must keep, not rows version N's own down should remove.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg

from pipeline.core.errors import SourceError
from pipeline.core.vocabulary import VerifyCheck, VerifyStatus
from pipeline.verify.compare import data_difference, schema_difference
from pipeline.verify.folder import Folder, Migration, read_sql
from pipeline.verify.model import CheckResult, VersionResult, checks_in_order
from pipeline.verify.postgres import (
    MIGRATIONS_TABLE,
    SchemaSnapshot,
    Server,
    data_snapshot,
    migrate_step,
    run_file,
    schema_snapshot,
)


@dataclass(frozen=True)
class _Before:
    """The base database before version N's up, and right after it."""

    schema: SchemaSnapshot
    data: dict[str, tuple[int, str]]
    after_up: SchemaSnapshot
    previous: int | None  # the version migrate's down sets (None: no version)


class _Checks:
    """The results of one version as they are found, with the time each took."""

    def __init__(self) -> None:
        self.found: dict[VerifyCheck, CheckResult] = {}
        self._clock = time.monotonic()

    def record(self, check: VerifyCheck, status: VerifyStatus, detail: str = "") -> bool:
        now = time.monotonic()
        self.found[check] = CheckResult(check, status, detail, round(now - self._clock, 3))
        self._clock = now
        return status == "pass"

    def skip(self, reason: str, *checks: VerifyCheck) -> None:
        for check in checks:
            self.found.setdefault(check, CheckResult(check, "skip", reason))


def run_versions(server: Server, folder: Folder, *, multi_statement: bool,
                 progress: Callable[[int, int], None] | None = None) -> tuple[list[VersionResult], list[int]]:
    """Every version's checks, in order, stopping after the first up that fails; (results, not reached)."""
    base = server.create("base")
    with server.connect(base) as con:
        con.execute(MIGRATIONS_TABLE)
    results: list[VersionResult] = []
    previous: int | None = None
    schema_before: SchemaSnapshot | None = None
    for i, migration in enumerate(folder.migrations):
        checks = _Checks()
        with server.connect(base) as con:
            before_schema = schema_before if schema_before is not None else schema_snapshot(con)
            before_data = data_snapshot(con)
            up_error = _step(con, migration.up, to_version=migration.version, multi_statement=multi_statement)
            after_up = schema_snapshot(con) if up_error is None else {}
        if not checks.record("up", "fail" if up_error else "pass", up_error or ""):
            checks.skip(f"up failed; {migration.version} is where migrate would leave the database dirty",
                        "down", "schema_restored", "data_restored", "reapply", "idempotent_up")
            results.append(VersionResult(migration.version, migration.name, checks_in_order(checks.found)))
            return results, [m.version for m in folder.migrations[i + 1:]]
        _after_up(server, base, migration, _Before(before_schema, before_data, after_up, previous), checks,
                  multi_statement)
        results.append(VersionResult(migration.version, migration.name, checks_in_order(checks.found)))
        schema_before = after_up
        if migration.version in folder.seeds:
            _seed(server, base, folder.seeds[migration.version].read_bytes(), migration.version)
            schema_before = None  # a seed may create objects too: take the next snapshot afresh
        previous = migration.version
        if progress:
            progress(i + 1, len(folder.migrations))
    server.drop(base)
    return results, []


def _after_up(server: Server, base: str, m: Migration, before: _Before, checks: _Checks,
              multi_statement: bool) -> None:
    """down, schema_restored, data_restored, reapply and idempotent_up of one version, on copies of base."""
    copy = server.create(f"v{m.version}", template=base)
    try:
        with server.connect(copy) as con:
            ready_for_idempotent = _down_and_back(con, m, before, checks, multi_statement)
            if ready_for_idempotent:  # the schema equals the first up's: the same as running up twice
                _idempotent(con, m, before.after_up, checks, multi_statement)
    finally:
        server.drop(copy)
    if not ready_for_idempotent:  # the copy holds what a failed check left: start again from base
        fresh = server.create(f"v{m.version}_again", template=base)
        try:
            with server.connect(fresh) as con:
                _idempotent(con, m, before.after_up, checks, multi_statement)
        finally:
            server.drop(fresh)


def _down_and_back(con: psycopg.Connection, m: Migration, before: _Before, checks: _Checks,
                   multi_statement: bool) -> bool:
    """down, then the schema and data compared with before the up, then up again; True when the copy then
    holds exactly the first up's schema."""
    if m.down is None:
        checks.record("down", "missing", f"no down file for version {m.version}: `migrate down` steps past it "
                                         "and undoes nothing")
        checks.skip("no down to run", "schema_restored", "data_restored", "reapply")
        return True  # the copy is still right after the up
    down_error = _step(con, m.down, to_version=before.previous, multi_statement=multi_statement)
    if not checks.record("down", "fail" if down_error else "pass", down_error or ""):
        checks.skip("down failed", "schema_restored", "data_restored", "reapply")
        return False
    schema_diff = schema_difference(before.schema, schema_snapshot(con))
    checks.record("schema_restored", "fail" if schema_diff else "pass", schema_diff)
    data_diff = data_difference(before.data, data_snapshot(con))
    checks.record("data_restored", "fail" if data_diff else "pass", data_diff)
    reapply_error = _step(con, m.up, to_version=m.version, multi_statement=multi_statement)
    if reapply_error is None:
        reapply_error = schema_difference(before.after_up, schema_snapshot(con), extra="not in the first up",
                                          gone="missing since the first up")
    return checks.record("reapply", "fail" if reapply_error else "pass", reapply_error or "")


def _idempotent(con: psycopg.Connection, m: Migration, after_up: SchemaSnapshot, checks: _Checks,
                multi_statement: bool) -> None:
    """up once more on top of itself, as after `migrate force N-1` and `up`."""
    error = _step(con, m.up, to_version=m.version, multi_statement=multi_statement)
    if error is None:
        error = schema_difference(after_up, schema_snapshot(con), extra="added by the second up",
                                  gone="removed by the second up")
    checks.record("idempotent_up", "fail" if error else "pass", error or "")


def _step(con: psycopg.Connection, path: Path, *, to_version: int | None, multi_statement: bool) -> str | None:
    """Read and apply one file as a migrate step; the error text (a decode error too) or None."""
    try:
        text = read_sql(path)
    except UnicodeDecodeError as e:
        return (f"{path}: not UTF-8 ({e.reason} at byte offset {e.start}); PostgreSQL would refuse it "
                "(invalid byte sequence for encoding UTF8): save the file as UTF-8")
    except OSError as e:
        return f"{path}: cannot read the file ({e.strerror})"
    return migrate_step(con, text, to_version=to_version, multi_statement=multi_statement)


def _seed(server: Server, base: str, raw: bytes, version: int) -> None:
    with server.connect(base) as con:
        try:
            error = run_file(con, raw.decode("utf-8"), multi_statement=False)
        except UnicodeDecodeError as e:
            error = f"not UTF-8 ({e.reason} at byte {e.start})"
    if error:
        raise SourceError(f"seed {version}.sql failed after version {version}'s up: {error}; fix the seed file")

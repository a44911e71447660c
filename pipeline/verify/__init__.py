"""Verify a golang-migrate folder against a real PostgreSQL: for each version, does the up apply, does the down
apply and restore the schema and the data, does the up apply again after it, and on top of itself.

`verify()` runs the checks (on a throwaway cluster from the local server binaries, or in scratch databases of
--database) and returns a `VerifyResult`; `render()` prints it as text, JSON or JUnit XML; `store()` keeps it
in the warehouse's `verify_results`, which analyze joins into the rollback-readiness ledger.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import psycopg
import pyarrow as pa

from pipeline.core.errors import ServerError, WarehouseError
from pipeline.core.redact import redact
from pipeline.verify.cluster import embedded_cluster, find_bindir
from pipeline.verify.folder import read_folder
from pipeline.verify.model import CheckResult, VerifyResult, VersionResult
from pipeline.verify.output import render, to_json, to_junit, to_text
from pipeline.verify.postgres import Server
from pipeline.verify.runner import run_versions
from pipeline.warehouse import execute, statements, transaction

__all__ = ["CheckResult", "VerifyResult", "VersionResult", "find_bindir", "render", "store", "to_json", "to_junit",
           "to_text", "verify"]


def verify(folder: Path, *, database: str | None = None, multi_statement: bool = False, seed_dir: Path | None = None,
           strict: bool = False, allow_missing_down: bool = False,
           progress: Callable[[int, int], None] | None = None) -> VerifyResult:
    """Run every version's checks in order, stopping at the first up that fails.

    `database`: a URL or conninfo of a role that may create databases; only scratch databases this call
    creates are used, and dropped. None: a throwaway cluster from the local PostgreSQL server binaries.
    """
    started, clock = datetime.now(UTC).replace(tzinfo=None), time.monotonic()
    migrations = read_folder(Path(folder), Path(seed_dir) if seed_dir else None)  # bad input before any server
    with _server(database) as server:
        try:
            versions, not_reached = run_versions(server, migrations, multi_statement=multi_statement,
                                                 progress=progress)
        except psycopg.Error as e:  # one of verify's own queries (a migration's error is a check's detail)
            raise ServerError(f"verify: PostgreSQL refused a query of verify's own on {server.shown_as}: "
                              f"{redact(str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__)} "
                              "(check the role's privileges)") from e
        finally:
            server.close()
    return VerifyResult(Path(folder), server.shown_as, tuple(versions), tuple(not_reached), migrations.skipped,
                        strict, allow_missing_down, multi_statement, started, time.monotonic() - clock)


@contextmanager
def _server(database: str | None) -> Iterator[Server]:
    if database:
        server = Server(database, shown_as=redact(database))
        server.shown_as = f"PostgreSQL {server.version} at {redact(database)}"
        yield server
        return
    with embedded_cluster() as cluster:
        server = Server(cluster.conninfo, shown_as=cluster.describe(), throwaway=True)
        server.shown_as = f"PostgreSQL {server.version}, {cluster.describe()}"
        yield server


def store(con: duckdb.DuckDBPyConnection, result: VerifyResult, service: str) -> int:
    """Replace `service`'s rows in verify_results with `result`'s checks; the number of rows stored."""
    checks = [(v.version, i, c) for v in result.versions for i, c in enumerate(v.checks)]
    frame = pa.table({"version": pa.array([v for v, _, _ in checks], pa.int64()),
                      "ordinal": pa.array([i for _, i, _ in checks], pa.int32()),  # the order checks ran in
                      "check": pa.array([c.check for _, _, c in checks], pa.string()),
                      "status": pa.array([c.status for _, _, c in checks], pa.string()),
                      "detail": pa.array([c.detail for _, _, c in checks], pa.string())})
    params = {"service": service, "folder": str(result.folder), "git_commit": git_commit(result.folder),
              "verified_at": result.verified_at}
    con.register("verify_rows", frame)
    try:
        with transaction(con):
            for statement in statements("verify/store_results"):
                execute(con, statement, params)
    except duckdb.Error as e:
        raise WarehouseError(f"verify_results: storing the verify of {service} failed: "
                             f"{str(e).splitlines()[0]} (check --db)") from e
    finally:
        con.unregister("verify_rows")
    return len(checks)


def git_commit(folder: Path) -> str | None:
    """The commit checked out where the migrations are, else what the CI says it built, else None."""
    try:
        out = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10, check=False)
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return os.environ.get("GITHUB_SHA") or os.environ.get("CI_COMMIT_SHA") or None

"""Shared fixtures: a real DuckDB warehouse in tmp_path, the real captures and their index, and the demo fleet
(sample_logs/) ingested and analyzed once per pytest worker, copied for each test that needs it."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
import pytest

from pipeline.analyze import analyze
from pipeline.api import IngestResult, ingest
from pipeline.core.config import Config
from pipeline.warehouse import connect
from tests.kit.captures import CAPTURES, REAL, capture_index, cycle_sleeps

__all__ = ["CAPTURES", "REAL", "ROOT", "SAMPLE_LOGS", "capture_index", "cycle_sleeps", "rows", "sample_truth"]

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SAMPLE_LOGS = ROOT / "sample_logs"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@cache
def sample_truth() -> dict[str, Any]:
    """The demo fleet's ground truth, written by sample_logs/generate.py next to the logs."""
    return json.loads((SAMPLE_LOGS / "expected.jsonc").read_text(encoding="utf-8"))


def restore_sample_mtimes() -> None:
    """Give sample_logs/ files the mtimes the generator wrote (git keeps none; bare text takes its time from it)."""
    for name, source in sample_truth()["sources"].items():
        os.utime(SAMPLE_LOGS / name, ns=(source["mtime_ns"], source["mtime_ns"]))


def sample_as_of() -> datetime:
    """The demo's clock (naive UTC, as the warehouse stores times): the Monday after the data."""
    return datetime.fromisoformat(sample_truth()["as_of"].replace("Z", "+00:00")).replace(tzinfo=None)


@dataclass(frozen=True)
class SampleTemplate:
    """The demo fleet ingested and analyzed into a closed warehouse file: copy it, never open it for writing."""

    path: Path
    ingest: IngestResult

    def copy(self, dest: Path) -> Path:
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.path, dest)
        return dest


@pytest.fixture(scope="session", autouse=True)
def _sample_mtimes() -> None:
    restore_sample_mtimes()


@pytest.fixture(scope="session")
def sample_template(tmp_path_factory: pytest.TempPathFactory) -> SampleTemplate:
    """Ingest + analyze of sample_logs/ takes ~20 s: done once per worker, as of the demo's clock."""
    path = tmp_path_factory.mktemp("sample-template") / "sample.duckdb"
    con = connect(path)
    result = ingest(con, [str(SAMPLE_LOGS)], config=Config(), progress=False)
    analyze(con, config=Config(), as_of=sample_as_of())
    con.close()
    return SampleTemplate(path, result)


@pytest.fixture
def sample_warehouse(sample_template: SampleTemplate, tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A writable copy of the demo fleet's warehouse, for one test."""
    con = connect(sample_template.copy(tmp_path / "sample.duckdb"))
    yield con
    con.close()


@pytest.fixture
def warehouse(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A fresh warehouse file, schema applied."""
    con = connect(tmp_path / "warehouse.duckdb")
    yield con
    con.close()


@pytest.fixture
def load(warehouse: duckdb.DuckDBPyConnection) -> Callable[..., IngestResult]:
    """Ingest paths (str or Path) into the test warehouse with default config."""

    def _load(*paths: str | Path, envelope: str | None = None, config: Config | None = None) -> IngestResult:
        return ingest(warehouse, [str(p) for p in paths], config=config or Config(), envelope=envelope,
                      progress=False)

    return _load


def rows(con: duckdb.DuckDBPyConnection, sql: str, params: list | dict | None = None) -> list[tuple]:
    """All rows of a query."""
    return con.execute(sql, params or []).fetchall()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """In CI a skipped test is a missing check: report it as a failure."""
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where nothing may skip: {report.longrepr}"


@dataclass(frozen=True)
class PostgresForTests:
    """The throwaway cluster verify itself starts, shared by the verify tests of one worker."""

    conninfo: str  # the superuser over the unix socket
    password_url: str  # a CREATEDB role with a password, over TCP: what a CI job passes as --database
    password: str


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresForTests]:
    """A real PostgreSQL from the local server binaries (as an unprivileged user when the tests run as root).
    Without binaries the tests skip with the reason, which CI (CI=true) reports as a failure."""
    import psycopg

    from pipeline.core.errors import ServerError
    from pipeline.verify.cluster import embedded_cluster, find_bindir

    try:
        bindir = find_bindir()
    except ServerError as e:
        pytest.skip(str(e))
    with embedded_cluster(bindir) as cluster:
        password = "s3cret-Verify-pw"
        with psycopg.connect(cluster.conninfo, autocommit=True) as con:
            con.execute(f"CREATE ROLE ci_verifier LOGIN CREATEDB PASSWORD '{password}'")
        yield PostgresForTests(cluster.conninfo, f"postgresql://ci_verifier:{password}@127.0.0.1:{cluster.port}/postgres",
                               password)

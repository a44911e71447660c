"""Shared fixtures: a real DuckDB warehouse in tmp_path, the real captures and their index."""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from pipeline.core.config import Config
from pipeline.api import IngestResult, ingest
from pipeline.warehouse import connect

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
REAL = FIXTURES / "real-migrate-logs"
CAPTURES = REAL / "captures"
SAMPLE_LOGS = ROOT / "sample_logs"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def capture_index() -> list[dict[str, str]]:
    """Rows of index.tsv for the captures that are present, with `path` and `exit_code` as int."""
    rows = []
    with (REAL / "index.tsv").open(encoding="utf-8") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            path = REAL / row["file"]
            if path.exists():
                row["path"] = str(path)
                rows.append(row)
    return rows


def cycle_sleeps(scenario: str) -> dict[str, float] | None:
    """pg_sleep seconds of an `updown-cycle-NN sleeps(up4=…,down4=…,up8=…,down8=…)` scenario."""
    m = re.search(r"sleeps\((.*)\)", scenario)
    if not m:
        return None
    return {k: float(v) for k, v in (kv.split("=") for kv in m.group(1).split(","))}


@pytest.fixture
def warehouse(tmp_path: Path) -> duckdb.DuckDBPyConnection:
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

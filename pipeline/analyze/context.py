"""What a detector sees: the warehouse, cut at the analysis clock, and the scratch tables of one analysis.

Detectors ask the warehouse (`pipeline/sql/analyze/*.sql`) for the few rows they report on: runs, events and
scores stay in DuckDB, which reads only the columns a question needs and spills to disk past its
`warehouse.memory_limit`, so the memory of an analysis does not grow with the history it reads.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import cache

import duckdb
import polars as pl

from pipeline.core.assets import sql_text
from pipeline.core.config import AnalyzeConfig
from pipeline.warehouse import execute, frame, statements

# Temporary objects of one analysis (pipeline/sql/analyze/setup.sql and the steps after it).
_SCRATCH_TABLES = ("analyze_pool", "analyze_scopes", "analyze_apps", "analyze_active", "analyze_step",
                   "analyze_readiness")
_SCRATCH_MACROS = ("analyze_quantile",)


@dataclass(frozen=True)
class Analysis:
    """One analysis: the connection, its clock and the analyze config."""

    con: duckdb.DuckDBPyConnection
    as_of: datetime
    cfg: AnalyzeConfig

    def frame(self, name: str, **params: object) -> pl.DataFrame:
        """The result of `pipeline/sql/analyze/<name>.sql` (one query), `$as_of` and `params` bound."""
        sql = _query(name)
        return frame(self.con, sql, {"as_of": self.as_of, **params})

    def run(self, name: str, **params: object) -> list[tuple]:
        """Run the statements of `pipeline/sql/analyze/<name>.sql`; the rows of the last one."""
        rows: list[tuple] = []
        for statement in statements(f"analyze/{name}"):
            rows = execute(self.con, statement, {"as_of": self.as_of, **params}).fetchall()
        return rows


@contextmanager
def analysis(con: duckdb.DuckDBPyConnection, cfg: AnalyzeConfig, as_of: datetime) -> Iterator[Analysis]:
    """An `Analysis` with its scratch objects created (the pooled envs mapped), dropped again when it ends."""
    envs = [row[0] for row in con.execute("SELECT DISTINCT env FROM migrate_events").fetchall()]
    pooled = {env: cfg.pool(env) for env in envs if cfg.pool(env) != env}
    a = Analysis(con, as_of, cfg)
    try:
        a.run("setup", envs=list(pooled), pools=list(pooled.values()))
        yield a
    finally:
        try:
            for table in _SCRATCH_TABLES:
                con.execute(f"DROP TABLE IF EXISTS temp.main.{table}")
            for macro in _SCRATCH_MACROS:
                con.execute(f"DROP MACRO IF EXISTS temp.main.{macro}")
        except duckdb.Error:
            pass  # the error that ended the analysis is the one to report; temp objects go with the connection


def _is_prod(env: str, cfg: AnalyzeConfig) -> bool:
    return env in cfg.prod_envs


@cache
def _query(name: str) -> str:
    return sql_text(f"analyze/{name}").strip().rstrip(";")

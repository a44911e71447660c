"""Stage 4, analyze: baselines, findings and rollback readiness, rebuilt for one clock.

Only what happened at or before `as_of` is used, so last month's analysis can be reproduced exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb
import polars as pl

from pipeline.analyze import baselines, findings
from pipeline.analyze.context import analysis
from pipeline.core.config import Config
from pipeline.core.errors import WarehouseError
from pipeline.core.vocabulary import severity_rank
from pipeline.warehouse import transaction


@dataclass(frozen=True)
class AnalyzeResult:
    """What one analysis produced."""

    as_of: datetime
    baselines: int
    learning: int
    findings: int
    open_by_severity: tuple[tuple[str, int], ...]

    def summary(self) -> str:
        open_counts = ", ".join(f"{n} {sev}" for sev, n in self.open_by_severity) or "none"
        return (f"analyzed as of {self.as_of:%Y-%m-%d %H:%M}Z: {self.baselines:,} script baselines "
                f"({self.learning:,} still learning); {self.findings:,} findings, open: {open_counts}")


def _replace(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame) -> None:
    con.execute(f"DELETE FROM {table}")
    if frame.height:
        arrow = frame.to_arrow()
        con.register("analysis_frame", arrow)
        try:
            con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM analysis_frame")
        finally:
            con.unregister("analysis_frame")


def analyze(con: duckdb.DuckDBPyConnection, *, config: Config, as_of: datetime) -> AnalyzeResult:
    """Rebuild script_baselines, findings and rollback_readiness from runs and events up to `as_of`.

    The work runs in the warehouse (pipeline/sql/analyze/), within its `warehouse.memory_limit`: only the
    findings, a few thousand rows, come to Python.
    """
    try:
        with analysis(con, config.analyze, as_of) as a:
            baselines.score_applications(a)
            found = findings.detect(a)
            with transaction(con):
                n_baselines, learning = baselines.write_script_baselines(a)
                _replace(con, "findings", found)
                con.execute("DELETE FROM rollback_readiness")
                con.execute("INSERT INTO rollback_readiness BY NAME SELECT * FROM analyze_readiness")
                con.execute("INSERT INTO analyses SELECT now()::TIMESTAMP, $as_of, (SELECT max(ingested_at) FROM "
                            "ingested_sources), $findings, $open",
                            {"as_of": as_of, "findings": found.height,
                             "open": found.filter(pl.col("status") == "open").height})
    except duckdb.Error as e:
        raise WarehouseError(f"analyzing runs and events failed: {str(e).splitlines()[0]} (run ingest first)") from e
    open_by = (found.filter(pl.col("status") == "open").group_by("severity").len()
               .sort("severity").iter_rows())
    return AnalyzeResult(
        as_of=as_of,
        baselines=n_baselines,
        learning=learning,
        findings=found.height,
        open_by_severity=tuple(sorted(((s, n) for s, n in open_by), key=lambda x: severity_rank(x[0]))),
    )

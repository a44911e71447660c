"""Stage 4, analyze: baselines, findings and rollback readiness, rebuilt for one clock.

Only what happened at or before `as_of` is used, so last month's analysis can be reproduced exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb
import polars as pl

from pipeline.analyze import baselines, findings
from pipeline.core.config import Config
from pipeline.core.errors import WarehouseError
from pipeline.core.vocabulary import severity_rank
from pipeline.warehouse import transaction

# `clean` and the episodes come from the SQL macros (pipeline/sql/macros.sql) the named queries use, so the
# findings and `dirty_now` / `dirty_mttr` / `forced_recoveries` apply one dirty rule. A default-mode failure's
# version is named by the dirty line migrate prints next: only once that is printed (at or before the clock).
_RUNS = """
SELECT run_id, stream_key, env, service, database, started_at, ended_at, command, command_known, applied,
       from_version, to_version, outcome, error_class, error_text, exit_code, left_dirty,
       CASE WHEN next_dirty_at <= $as_of THEN next_dirty_version ELSE runs.dirty_version END AS dirty_version,
       is_clean_run(left_dirty, outcome, runs.dirty_version) AS clean
FROM runs WHERE started_at <= $as_of
"""
_EPISODES = """
SELECT env, service, database, dirty_since, cause_run_id, cause_outcome, dirty_version, recovered_at,
       recovered_run_id, coalesce(force_recorded, false) AS force_recorded
FROM dirty_episodes($as_of)
"""
_EVENTS = """
SELECT event_id, ts, run_id, env, service, database, seq, kind, version, direction, name, own_ms, error_class
FROM migrate_events WHERE ts <= $as_of AND (kind IN ('applied', 'migration_failed') OR direction = 'down')
"""


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


def _frame(con: duckdb.DuckDBPyConnection, sql: str, as_of: datetime) -> pl.DataFrame:
    return con.sql(sql, params={"as_of": as_of}).pl()


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
    """Rebuild script_baselines, findings and rollback_readiness from runs and events up to `as_of`."""
    cfg = config.analyze
    try:
        runs = _frame(con, _RUNS, as_of)
        events = _frame(con, _EVENTS, as_of)
        episodes = _frame(con, _EPISODES, as_of)
    except duckdb.Error as e:
        raise WarehouseError(f"reading runs and events failed: {str(e).splitlines()[0]} (run ingest first)") from e
    applied = baselines.with_scope(events.filter(pl.col("kind") == "applied"), cfg)
    scored = baselines.score_applications(applied, cfg)
    table = baselines.script_baselines(scored, cfg, as_of)
    frames = findings.Frames(runs=runs, events=events, episodes=episodes, scored=scored, as_of=as_of, cfg=cfg)
    found, readiness = findings.detect(frames)
    with transaction(con):
        _replace(con, "script_baselines", table)
        _replace(con, "findings", found)
        _replace(con, "rollback_readiness", readiness)
        con.execute("INSERT INTO analyses SELECT now()::TIMESTAMP, $as_of, (SELECT max(ingested_at) FROM "
                    "ingested_sources), $findings, $open", {"as_of": as_of, "findings": found.height,
                                                            "open": found.filter(pl.col("status") == "open").height})
    open_by = (found.filter(pl.col("status") == "open").group_by("severity").len()
               .sort("severity").iter_rows())
    return AnalyzeResult(
        as_of=as_of,
        baselines=table.height,
        learning=table.filter(pl.col("state") == "learning").height,
        findings=found.height,
        open_by_severity=tuple(sorted(((s, n) for s, n in open_by), key=lambda x: severity_rank(x[0]))),
    )


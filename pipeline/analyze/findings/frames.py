"""What a detector sees: the runs, events, dirty episodes and scored applications of one analysis, cut at
its clock, and the per-database views several detectors share."""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property

import polars as pl

from pipeline.core.config import AnalyzeConfig


@dataclass
class Frames:
    """Everything one analysis sees, cut at the clock.

    `runs.clean` and `episodes` (one row per dirty episode) come from the warehouse's `is_clean_run` and
    `dirty_episodes(as_of)` macros, the one home of the dirty rule (pipeline/sql/macros.sql).
    """

    runs: pl.DataFrame
    events: pl.DataFrame
    episodes: pl.DataFrame
    scored: pl.DataFrame
    as_of: datetime
    cfg: AnalyzeConfig

    @cached_property
    def by_db(self) -> dict[tuple, list[dict]]:
        """Runs per (env, service, database), in time order (built once, shared by the detectors), for the
        databases that ever had trouble (a run that was not clean): every detector that walks a database's
        history starts from such a run, and a healthy fleet's other databases need no Python pass."""
        keys = ["env", "service", "database"]
        trouble = self.runs.filter(~pl.col("clean")).select(keys).unique()
        return _by_db(self.runs.join(trouble, on=keys, how="semi"))

    @cached_property
    def clean_runs(self) -> dict[tuple, tuple[list[datetime], list[dict]]]:
        """Per database, its clean runs (success / no change without dirty evidence) and their start times."""
        out: dict[tuple, tuple[list[datetime], list[dict]]] = {}
        for key, runs in self.by_db.items():
            clean = [r for r in runs if r["clean"]]
            out[key] = ([r["started_at"] for r in clean], clean)
        return out

    def later_clean(self, row: dict) -> dict | None:
        """The first clean run on the same database after `row`."""
        times, clean = self.clean_runs.get(_db_key(row), ([], []))
        i = bisect.bisect_right(times, row["started_at"])
        return clean[i] if i < len(clean) else None


def _is_prod(env: str, cfg: AnalyzeConfig) -> bool:
    return env in cfg.prod_envs


def _db_key(row: dict) -> tuple:
    return (row["env"], row["service"], row["database"])


def _by_db(runs: pl.DataFrame) -> dict[tuple, list[dict]]:
    grouped: dict[tuple, list[dict]] = {}
    for row in runs.sort(["started_at", "run_id"]).iter_rows(named=True):
        grouped.setdefault(_db_key(row), []).append(row)
    return grouped

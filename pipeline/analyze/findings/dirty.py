"""Findings about dirty databases: dirty_open and forced_recovery, one of each per dirty episode."""

from __future__ import annotations

from datetime import datetime

import polars as pl

from pipeline.analyze.findings.frames import Frames, _dirty_evidence, _is_prod
from pipeline.analyze.findings.rows import _rows
from pipeline.core.render import human_minutes
from pipeline.core.vocabulary import CLEAN_OUTCOMES


def dirty_findings(f: Frames) -> list[pl.DataFrame]:
    """dirty_open per dirty episode of a database, and forced_recovery for each episode that ended.

    migrate refuses every command but `force` while a database is dirty, and `force` prints nothing; so a
    clean run after dirty evidence means someone forced the version in between.
    """
    dirty_rows, forced_rows = [], []
    for key, runs in f.by_db.items():
        since: dict | None = None
        version = None
        for run in runs:
            if _dirty_evidence(run):
                if since is None:
                    since = run
                if run["dirty_version"] is not None:
                    version = run["dirty_version"]
                continue
            if since is not None and run["outcome"] in CLEAN_OUTCOMES:
                minutes = (run["started_at"] - since["ended_at"]).total_seconds() / 60
                dirty_rows.append(_dirty_row(f, key, since, version, minutes, resolved_at=run["started_at"]))
                recorded = run["command"] == "force" and run["command_known"]
                forced_rows.append({
                    "severity": "warning" if _is_prod(key[0], f.cfg) else "info",
                    "env": key[0], "service": key[1], "database": key[2], "version": version,
                    "run_id": run["run_id"], "ts": run["started_at"], "observed": minutes, "expected": 0.0,
                    "unit": "minutes",
                    "explanation": (
                        f"{'/'.join(key)}: dirty at {version if version is not None else '?'} from "
                        f"{since['ended_at']:%Y-%m-%d %H:%M} for {human_minutes(minutes)}; "
                        + ("the wrapper recorded `migrate force`" if recorded else
                           f"the run at {run['started_at']:%Y-%m-%d %H:%M} was clean, so the version was forced "
                           "in between (`force` prints nothing; inferred)")),
                    "status": "resolved", "resolved_at": run["started_at"],
                })
                since, version = None, None
        if since is not None:
            minutes = (f.as_of - since["ended_at"]).total_seconds() / 60
            dirty_rows.append(_dirty_row(f, key, since, version, minutes, resolved_at=None))
    return [_rows("dirty_open", dirty_rows), _rows("forced_recovery", forced_rows)]


def _dirty_row(f: Frames, key: tuple, since: dict, version: int | None, minutes: float,
               resolved_at: datetime | None) -> dict:
    prod = _is_prod(key[0], f.cfg)
    severity = "critical" if prod and minutes >= f.cfg.dirty_critical_minutes else "warning"
    state = "was dirty" if resolved_at else "is dirty"
    return {
        "severity": severity if resolved_at is None else "info",
        "env": key[0], "service": key[1], "database": key[2], "version": version, "run_id": since["run_id"],
        "ts": since["ended_at"], "observed": minutes, "expected": 0.0, "unit": "minutes",
        "explanation": f"{'/'.join(key)} {state} at version {version if version is not None else '?'} "
                       f"for {human_minutes(minutes)} (since {since['ended_at']:%Y-%m-%d %H:%M}, run {since['outcome']})",
        "status": "open" if resolved_at is None else "resolved", "resolved_at": resolved_at,
    }

"""Findings about dirty databases: dirty_open and forced_recovery, one of each per dirty episode.

The episodes are not found here: they are the rows of the warehouse's `dirty_episodes(as_of)`
macro (pipeline/sql/macros.sql), which the named queries dirty_now, dirty_mttr and forced_recoveries read
too, so a finding and a query cannot disagree on when a database was dirty.
"""

from __future__ import annotations

import polars as pl

from pipeline.analyze.context import Analysis, _is_prod
from pipeline.analyze.findings.rows import _rows
from pipeline.core.render import human_minutes


def dirty_findings(f: Analysis) -> list[pl.DataFrame]:
    """dirty_open per dirty episode of a database, and forced_recovery for each episode that ended.

    migrate refuses every command but `force` while a database is dirty, and `force` prints nothing; so a
    clean run after dirty evidence means someone forced the version in between.
    """
    dirty_rows, forced_rows = [], []
    for episode in f.frame("episodes").iter_rows(named=True):
        key = (episode["env"], episode["service"], episode["database"])
        version, since = episode["dirty_version"], episode["dirty_since"]
        recovered_at = episode["recovered_at"]
        minutes = ((recovered_at if recovered_at is not None else f.as_of) - since).total_seconds() / 60
        dirty_rows.append(_dirty_row(f, key, episode, minutes))
        if recovered_at is None:
            continue
        forced_rows.append({
            "severity": "warning" if _is_prod(key[0], f.cfg) else "info",
            "env": key[0], "service": key[1], "database": key[2], "version": version,
            "run_id": episode["recovered_run_id"], "ts": recovered_at, "observed": minutes, "expected": 0.0,
            "unit": "minutes",
            "explanation": (
                f"{'/'.join(key)}: dirty at {version if version is not None else '?'} from "
                f"{since:%Y-%m-%d %H:%M} for {human_minutes(minutes)}; "
                + ("the wrapper recorded `migrate force`" if episode["force_recorded"] else
                   f"the run at {recovered_at:%Y-%m-%d %H:%M} was clean, so the version was forced "
                   "in between (`force` prints nothing; inferred)")),
            "status": "resolved", "resolved_at": recovered_at,
        })
    return [_rows("dirty_open", dirty_rows), _rows("forced_recovery", forced_rows)]


def _dirty_row(f: Analysis, key: tuple, episode: dict, minutes: float) -> dict:
    version, since, resolved_at = episode["dirty_version"], episode["dirty_since"], episode["recovered_at"]
    prod = _is_prod(key[0], f.cfg)
    severity = "critical" if prod and minutes >= f.cfg.dirty_critical_minutes else "warning"
    state = "was dirty" if resolved_at else "is dirty"
    return {
        "severity": severity if resolved_at is None else "info",
        "env": key[0], "service": key[1], "database": key[2], "version": version,
        "run_id": episode["cause_run_id"], "ts": since, "observed": minutes, "expected": 0.0,
        "unit": "minutes",
        "explanation": f"{'/'.join(key)} {state} at version {version if version is not None else '?'} "
                       f"for {human_minutes(minutes)} (since {since:%Y-%m-%d %H:%M}, "
                       f"run {episode['cause_outcome']})",
        "status": "open" if resolved_at is None else "resolved", "resolved_at": resolved_at,
    }

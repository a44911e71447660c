"""Findings about script durations: duration_outlier, a lone slow application or a level shift."""

from __future__ import annotations

import polars as pl

from pipeline.analyze.context import Analysis, _is_prod
from pipeline.analyze.findings.rows import _rows
from pipeline.core.render import human_duration


def outlier_findings(f: Analysis) -> list[pl.DataFrame]:
    """duration_outlier: a lone outlier once per application; a streak of `shift_min`+ once, as a level shift.

    Reads the scored applications of the scopes with outliers (analyze_apps, see baselines.py). A streak is
    resolved once a later application is back under `outlier_ratio` x the baseline it broke from; a baseline
    that merely absorbed the new level does not resolve it.
    """
    streaks = f.frame("streaks", outlier_ratio=f.cfg.outlier_ratio)
    rows = []
    for s in streaks.iter_rows(named=True):
        script = f"{s['version']}/{s['direction'][0]} {s['name']}"
        # A pooled baseline (preview-*, ci-*) still names the real environments that were slow.
        real_env = s["source_envs"][0] if len(s["source_envs"]) == 1 else s["env"]
        envs = real_env if len(s["source_envs"]) == 1 else f"{s['env']} ({', '.join(s['source_envs'])})"
        where = f"{envs}/{s['service']}"
        ratio = s["observed"] / max(s["expected"], 1e-3)
        critical = _is_prod(s["env"], f.cfg) and ratio >= f.cfg.critical_ratio
        later_normal = s["recovered_at"]
        shift = s["count"] >= f.cfg.shift_min
        if shift:
            text = (f"{where} {script}: level shift, {human_duration(s['observed'])} (median of {s['count']} runs on "
                    f"{s['databases']} database{'s' if s['databases'] != 1 else ''} since {s['first_ts']:%Y-%m-%d}) vs "
                    f"{human_duration(s['expected'])} before, {ratio:.0f}x, robust z {s['score']:.0f}")
        else:
            text = (f"{where}/{s['database']} {script}: {human_duration(s['observed'])} vs median {human_duration(s['expected'])} "
                    f"of earlier runs, {ratio:.0f}x, robust z {s['score']:.0f}")
        rows.append({
            "severity": "critical" if critical else "warning", "env": real_env, "service": s["service"],
            "database": None if shift else s["database"], "version": s["version"],
            "run_id": None if shift else s["run_id"], "ts": s["first_ts"], "observed": s["observed"],
            "expected": s["expected"], "score": s["score"], "unit": "ms", "explanation": text,
            "status": "resolved" if later_normal is not None else "open", "resolved_at": later_normal,
        })
    return [_rows("duration_outlier", rows)]

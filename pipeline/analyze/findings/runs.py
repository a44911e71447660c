"""Findings about single runs and run rates: failed_run, lock_timeout, interrupted_run, failure_spike."""

from __future__ import annotations

from datetime import timedelta

import polars as pl

from pipeline.analyze.context import Analysis, _is_prod
from pipeline.analyze.findings.rows import _rows
from pipeline.core.vocabulary import FindingKind, Outcome, Severity


def run_findings(f: Analysis) -> list[pl.DataFrame]:
    """failed_run, lock_timeout, interrupted_run: one per run, resolved by a later clean run on the database."""
    specs: dict[FindingKind, tuple[Outcome, Severity, Severity]] = {  # outcome, severity in prod, elsewhere
        "failed_run": ("failed", "critical", "warning"),
        "lock_timeout": ("locked", "warning", "warning"),
        "interrupted_run": ("interrupted", "warning", "warning"),
    }
    troubled = f.frame("troubled_runs")
    out = []
    for kind, (outcome, prod_sev, other_sev) in specs.items():
        rows = []
        for run in troubled.filter(pl.col("outcome") == outcome).iter_rows(named=True):
            clean = run["clean_at"]
            version = run["dirty_version"] if run["dirty_version"] is not None else run["to_version"]
            where = f"{run['env']}/{run['service']}/{run['database']}"
            if kind == "failed_run":
                first = (run["error_text"] or "").splitlines()[0][:160] if run["error_text"] else run["error_class"]
                text = f"{where}: migration {version if version is not None else '?'} failed ({run['error_class']}): {first}"
            elif kind == "lock_timeout":
                text = f"{where}: could not take migrate's advisory lock (another migrate held it)"
            else:
                text = (f"{where}: run stopped with no terminal line and no error"
                        + (f" while running {version}" if run["left_dirty"] and version is not None else "")
                        + " (killed: SIGTERM, OOM or a deadline)")
            rows.append({
                "severity": prod_sev if _is_prod(run["env"], f.cfg) else other_sev,
                "env": run["env"], "service": run["service"], "database": run["database"], "version": version,
                "run_id": run["run_id"], "ts": run["started_at"], "observed": 1.0, "expected": 0.0, "unit": "count",
                "explanation": text + (f"; a clean run followed at {clean:%Y-%m-%d %H:%M}" if clean else ""),
                "status": "resolved" if clean else "open",
                "resolved_at": clean,
            })
        out.append(_rows(kind, rows))
    return out


def spike_findings(f: Analysis) -> list[pl.DataFrame]:
    """failure_spike: a service/env failing far more often in the recent window than in its trailing one."""
    cfg = f.cfg
    start = f.as_of - timedelta(days=cfg.spike_window_days)
    trail = start - timedelta(days=cfg.spike_trailing_days)
    rates = (
        f.frame("spike_counts", start=start, trail=trail)
        .filter(pl.col("n_recent") > 0)
        .with_columns((pl.col("f_recent") / pl.col("n_recent")).alias("rate"),
                      pl.max_horizontal(pl.col("f_trail") / pl.col("n_trail").clip(lower_bound=1),
                                        pl.lit(cfg.spike_rate_floor)).alias("base"))
        .with_columns((pl.col("rate") / pl.col("base")).alias("score"))
        .filter((pl.col("f_recent") >= cfg.spike_min_failures) & (pl.col("score") >= cfg.spike_ratio))
    )
    rows = []
    for r in rates.sort(["env", "service"]).iter_rows(named=True):
        rows.append({
            "severity": "critical" if _is_prod(r["env"], cfg) else "warning", "env": r["env"],
            "service": r["service"], "ts": r["first_failure"], "observed": r["rate"], "expected": r["base"],
            "score": r["score"], "unit": "rate",
            "explanation": (f"{r['env']}/{r['service']}: {r['f_recent']} of {r['n_recent']} runs failed in the last "
                            f"{cfg.spike_window_days:g} days ({r['rate']:.0%}) vs {r['f_trail']} of {r['n_trail']} in "
                            f"the {cfg.spike_trailing_days:g} days before ({r['base']:.0%} counted), {r['score']:.1f}x"),
            "status": "open",
        })
    return [_rows("failure_spike", rows)]

"""Findings about re-runs: non_idempotent, a script that cannot be applied twice where it had to be."""

from __future__ import annotations

from datetime import timedelta

import polars as pl

from pipeline.analyze.context import Analysis
from pipeline.analyze.findings.rows import _rows


def idempotency_findings(f: Analysis, forced: pl.DataFrame) -> list[pl.DataFrame]:
    """non_idempotent: a re-run after a failure, interruption or force that fails on objects that already
    exist (or are already gone); and versions applied again on a database without a down in between."""
    lookback = timedelta(days=f.cfg.non_idempotent_lookback_days)
    db = ["env", "service", "database"]
    # A failed run whose database had trouble in the lookback (the query finds the last such run) or was forced
    # back in it (any forced recovery of the database in [started_at - lookback, started_at]).
    candidates = f.frame("rerun_failures", lookback=lookback)
    forced_in_window = (
        candidates.select(["run_id", *db, "started_at"])
        .join(forced.select([*db, pl.col("ts").alias("forced_at")]), on=db)
        .filter((pl.col("forced_at") >= pl.col("started_at") - lookback) & (pl.col("forced_at") <= pl.col("started_at")))
        .select("run_id").unique()
    )
    rows = []
    reruns = candidates.filter(pl.col("cause").is_not_null() | pl.col("run_id").is_in(forced_in_window["run_id"].implode()))
    for run in reruns.iter_rows(named=True):
        version = run["dirty_version"] if run["dirty_version"] is not None else run["to_version"]
        cause = f"after a {run['cause']} run at {run['cause_at']:%Y-%m-%d %H:%M}" if run["cause"] \
            else "after a forced recovery"
        first = (run["error_text"] or "").splitlines()[0][:140]
        where = f"{run['env']}/{run['service']}/{run['database']}"
        rows.append({
            "severity": "warning", "env": run["env"], "service": run["service"], "database": run["database"],
            "version": version, "run_id": run["run_id"], "ts": run["started_at"], "observed": 1.0, "expected": 0.0,
            "unit": "count", "status": "open",
            "explanation": f"{where}: re-run {cause} failed with {run['error_class']}: {first}",
        })
    # The same version applied up twice on one database with no down in between: only a force allows it,
    # and a re-run that must succeed is exactly what idempotent DDL is for.
    for r in f.frame("applied_again").iter_rows(named=True):
        rows.append({
            "severity": "info", "env": r["env"], "service": r["service"], "version": r["version"], "ts": r["ts"],
            "observed": float(r["times"]), "expected": 0.0, "unit": "count", "status": "open",
            "explanation": f"{r['env']}/{r['service']}: {r['version']}/u {r['name']} applied again without a down "
                           f"{r['times']} time{'s' if r['times'] != 1 else ''} on {r['databases']} "
                           f"database{'s' if r['databases'] != 1 else ''} (forced back, then re-run): it must be "
                           "idempotent",
        })
    return [_rows("non_idempotent", rows)]

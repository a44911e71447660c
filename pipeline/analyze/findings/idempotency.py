"""Findings about re-runs: non_idempotent, a script that cannot be applied twice where it had to be."""

from __future__ import annotations

from datetime import timedelta

import polars as pl

from pipeline.analyze.findings.frames import Frames, _db_key
from pipeline.analyze.findings.rows import _rows
from pipeline.core.vocabulary import Outcome

# Runs that leave a version half-applied or show it so: re-running that version afterwards needs it idempotent.
_RERUN_CAUSES: tuple[Outcome, ...] = ("failed", "interrupted", "dirty")


def idempotency_findings(f: Frames, forced: pl.DataFrame) -> list[pl.DataFrame]:
    """non_idempotent: a re-run after a failure, interruption or force that fails on objects that already
    exist (or are already gone); and versions applied again on a database without a down in between."""
    cfg = f.cfg
    lookback = timedelta(days=cfg.non_idempotent_lookback_days)
    by_db = f.by_db
    forced_at = {(r["env"], r["service"], r["database"]): r["ts"] for r in forced.iter_rows(named=True)}
    rows = []
    candidates = f.runs.filter((pl.col("outcome") == "failed")
                               & pl.col("error_class").is_in(["already_exists", "does_not_exist"]))
    for run in candidates.iter_rows(named=True):
        earlier = [r for r in by_db[_db_key(run)] if run["started_at"] - lookback <= r["started_at"] < run["started_at"]]
        trouble = [r for r in earlier if r["outcome"] in _RERUN_CAUSES]
        forced_before = forced_at.get(_db_key(run))
        if not trouble and not (forced_before and run["started_at"] - lookback <= forced_before <= run["started_at"]):
            continue
        version = run["dirty_version"] if run["dirty_version"] is not None else run["to_version"]
        cause = f"after a {trouble[-1]['outcome']} run at {trouble[-1]['started_at']:%Y-%m-%d %H:%M}" if trouble \
            else "after a forced recovery"
        first = (run["error_text"] or "").splitlines()[0][:140]
        rows.append({
            "severity": "warning", "env": run["env"], "service": run["service"], "database": run["database"],
            "version": version, "run_id": run["run_id"], "ts": run["started_at"], "observed": 1.0, "expected": 0.0,
            "unit": "count", "status": "open",
            "explanation": f"{'/'.join(_db_key(run))}: re-run {cause} failed with {run['error_class']}: {first}",
        })
    # The same version applied up twice on one database with no down in between: only a force allows it,
    # and a re-run that must succeed is exactly what idempotent DDL is for.
    # Ephemeral databases (pooled envs: preview, CI) are created afresh and apply every script again: no force.
    pooled = [env for env in f.events["env"].unique().to_list() if cfg.pool(env) != env]
    key = ["env", "service", "database", "version"]
    steps = (f.events.filter((pl.col("kind") == "applied") & ~pl.col("env").is_in(pooled))
             .select([*key, "direction", "ts", "seq", "name"]).sort([*key, "ts", "seq"])
             .with_columns(pl.when(pl.struct(key) == pl.struct(key).shift(1)).then(pl.col("direction").shift(1))
                           .alias("prev_dir"))
             .filter((pl.col("direction") == "up") & (pl.col("prev_dir") == "up")))
    again = steps.group_by(["env", "service", "version"]).agg(
        pl.len().alias("times"), pl.col("database").n_unique().alias("databases"), pl.col("ts").min(),
        pl.col("name").first())
    for r in again.sort(["env", "service", "version"]).iter_rows(named=True):
        rows.append({
            "severity": "info", "env": r["env"], "service": r["service"], "version": r["version"], "ts": r["ts"],
            "observed": float(r["times"]), "expected": 0.0, "unit": "count", "status": "open",
            "explanation": f"{r['env']}/{r['service']}: {r['version']}/u {r['name']} applied again without a down "
                           f"{r['times']} time{'s' if r['times'] != 1 else ''} on {r['databases']} "
                           f"database{'s' if r['databases'] != 1 else ''} (forced back, then re-run): it must be "
                           "idempotent",
        })
    return [_rows("non_idempotent", rows)]

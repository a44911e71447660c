"""Findings about moving versions through the environments and back: prod_rollback, promotion_skipped,
missing_down, down_test_failed, and the rollback readiness relation the last two read."""

from __future__ import annotations

from itertools import pairwise

import polars as pl

from pipeline.analyze.context import Analysis, _is_prod
from pipeline.analyze.findings.rows import _rows
from pipeline.core.vocabulary import DOWN_TEST_CHECKS


def rollback_findings(f: Analysis) -> list[pl.DataFrame]:
    """prod_rollback: down migrations applied in production, open until the versions are re-applied."""
    rows = []
    for run in f.frame("prod_rollbacks", prod_envs=f.cfg.prod_envs).iter_rows(named=True):
        back = run["reapplied"] == len(set(run["versions"]))
        versions = ", ".join(str(v) for v in run["versions"])
        rows.append({
            "severity": "warning", "env": run["env"], "service": run["service"], "database": run["database"],
            "version": min(run["versions"]), "run_id": run["run_id"], "ts": run["ts"],
            "observed": float(len(run["versions"])), "expected": 0.0, "unit": "count",
            "explanation": f"{run['env']}/{run['service']}/{run['database']}: rolled back {versions} at "
                           f"{run['ts']:%Y-%m-%d %H:%M}" + ("; re-applied since" if back else "; not re-applied since"),
            "status": "resolved" if back else "open",
            "resolved_at": run["reapplied_at"] if back else None,
        })
    return [_rows("prod_rollback", rows)]


def promotion_findings(f: Analysis) -> list[pl.DataFrame]:
    """promotion_skipped: a version applied in an env before it was ever applied in the env before it."""
    order = f.cfg.env_order
    firsts = f.frame("first_applied", env_order=order)
    active = f.frame("active_services", env_order=order)
    rows = []
    for earlier, later in pairwise(order):
        before = firsts.filter(pl.col("env") == earlier).select(["service", "version", pl.col("first_at").alias("prev_at")])
        skipped = (
            firsts.filter(pl.col("env") == later)
            .join(before, on=["service", "version"], how="left")
            # no logs of the earlier env for this service: nothing to compare with
            .join(active.filter(pl.col("env") == earlier).select("service"), on="service", how="semi")
            .filter(pl.col("prev_at").is_null() | (pl.col("prev_at") > pl.col("first_at")))
        )
        for r in skipped.iter_rows(named=True):
            rows.append({
                "severity": "warning" if _is_prod(later, f.cfg) else "info", "env": later, "service": r["service"],
                "database": r["database"], "version": r["version"], "run_id": r["run_id"], "ts": r["first_at"],
                "observed": 0.0, "expected": 1.0, "unit": "count",
                "explanation": f"{later}/{r['service']}: {r['version']}/u {r['name']} applied "
                               f"{r['first_at']:%Y-%m-%d %H:%M} but " + (
                                   f"reached {earlier} only at {r['prev_at']:%Y-%m-%d %H:%M}" if r["prev_at"]
                                   else f"never in {earlier}"),
                "status": "resolved" if r["prev_at"] is not None else "open", "resolved_at": r["prev_at"],
            })
    return [_rows("promotion_skipped", rows)]


def missing_down_findings(f: Analysis) -> list[pl.DataFrame]:
    """missing_down: a version whose down step printed `<empty>` (no `.down.sql`); reads analyze_readiness."""
    rows = []
    for r in f.frame("missing_down").iter_rows(named=True):
        rows.append({
            "severity": "warning" if r["in_prod"] else "info", "env": r["env"], "service": r["service"],
            "database": r["database"], "version": r["version"], "run_id": r["run_id"], "ts": r["ts"],
            "observed": 0.0, "expected": 1.0, "unit": "count",
            "explanation": f"{r['service']}: version {r['version']} ({r['name'] or '?'}) has no down migration: "
                           f"migrate stepped it as `{r['version']}/d <empty>` in {r['env']}"
                           + ("; it is in prod" if r["in_prod"] else ""),
            "status": "open",
        })
    return [_rows("missing_down", rows)]


def down_test_findings(f: Analysis) -> list[pl.DataFrame]:
    """down_test_failed: a version in prod whose down failed `verify` in CI; reads analyze_readiness."""
    rows = []
    for r in f.frame("down_test_failed", prod_envs=f.cfg.prod_envs,
                     down_test_checks=list(DOWN_TEST_CHECKS)).iter_rows(named=True):
        checks = r["down_test_failed_checks"]
        rows.append({
            "severity": "warning", "env": r["env"], "service": r["service"], "version": r["version"],
            "ts": r["down_tested_at"], "observed": float(len(checks.split(", "))), "expected": 0.0,
            "unit": "count",
            "explanation": f"{r['service']}: version {r['version']} ({r['name'] or '?'}) is in prod, and its down "
                           f"failed in CI on {r['down_tested_at']:%Y-%m-%d} ({checks})"
                           + (f": {r['detail']}" if r["detail"] else ""),
            "status": "open",
        })
    return [_rows("down_test_failed", rows)]


def rollback_readiness(f: Analysis) -> None:
    """Per (service, version): is the down file there, was it tried outside prod, did it pass, re-applied, and
    how did its CI test go? Fills the scratch table analyze_readiness (the rows of rollback_readiness), which
    missing_down and down_test_failed read."""
    f.run("readiness", prod_envs=f.cfg.prod_envs, down_test_checks=list(DOWN_TEST_CHECKS))

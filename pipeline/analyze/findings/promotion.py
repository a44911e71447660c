"""Findings about moving versions through the environments and back: prod_rollback, promotion_skipped,
missing_down, and the rollback readiness relation missing_down reads."""

from __future__ import annotations

from itertools import pairwise

import polars as pl

from pipeline.analyze.findings.frames import Frames, _is_prod
from pipeline.analyze.findings.rows import _rows


def rollback_findings(f: Frames) -> list[pl.DataFrame]:
    """prod_rollback: down migrations applied in production, open until the versions are re-applied."""
    downs = f.events.filter((pl.col("kind") == "applied") & (pl.col("direction") == "down")
                            & pl.col("env").is_in(f.cfg.prod_envs))
    ups = f.events.filter((pl.col("kind") == "applied") & (pl.col("direction") == "up"))
    rows = []
    for run in downs.group_by(["run_id", "env", "service", "database"]).agg(
            pl.col("version").sort(descending=True), pl.col("ts").min(), pl.col("name").first()).iter_rows(named=True):
        reapplied = ups.filter((pl.col("env") == run["env"]) & (pl.col("service") == run["service"])
                               & (pl.col("database") == run["database"]) & (pl.col("ts") > run["ts"])
                               & pl.col("version").is_in(run["version"]))
        back = reapplied["version"].n_unique() == len(set(run["version"]))
        versions = ", ".join(str(v) for v in run["version"])
        rows.append({
            "severity": "warning", "env": run["env"], "service": run["service"], "database": run["database"],
            "version": min(run["version"]), "run_id": run["run_id"], "ts": run["ts"],
            "observed": float(len(run["version"])), "expected": 0.0, "unit": "count",
            "explanation": f"{run['env']}/{run['service']}/{run['database']}: rolled back {versions} at "
                           f"{run['ts']:%Y-%m-%d %H:%M}" + ("; re-applied since" if back else "; not re-applied since"),
            "status": "resolved" if back else "open",
            "resolved_at": reapplied["ts"].max() if back else None,
        })
    return [_rows("prod_rollback", rows)]


def promotion_findings(f: Frames) -> list[pl.DataFrame]:
    """promotion_skipped: a version applied in an env before it was ever applied in the env before it."""
    ups = f.events.filter((pl.col("kind") == "applied") & (pl.col("direction") == "up"))
    firsts = ups.group_by(["env", "service", "version"]).agg(pl.col("ts").min().alias("first_at"),
                                                             pl.col("name").first(), pl.col("database").first(),
                                                             pl.col("run_id").first())
    active = set(f.runs.select(["env", "service"]).unique().iter_rows())
    rows = []
    order = f.cfg.env_order
    for earlier, later in pairwise(order):
        here = firsts.filter(pl.col("env") == later)
        before = firsts.filter(pl.col("env") == earlier).select(["service", "version", pl.col("first_at").alias("prev_at")])
        joined = here.join(before, on=["service", "version"], how="left")
        for r in joined.iter_rows(named=True):
            if (earlier, r["service"]) not in active:
                continue  # no logs of that env for this service: nothing to compare with
            if r["prev_at"] is not None and r["prev_at"] <= r["first_at"]:
                continue
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


def missing_down_findings(f: Frames, readiness: pl.DataFrame) -> list[pl.DataFrame]:
    """missing_down: a version whose down step printed `<empty>` (no `.down.sql`)."""
    empties = (f.events.filter((pl.col("direction") == "down") & (pl.col("name") == "<empty>"))
               .group_by(["service", "version"]).agg(pl.col("ts").min(), pl.col("env").first(),
                                                     pl.col("database").first(), pl.col("run_id").first()))
    rows = []
    for r in empties.join(readiness.select(["service", "version", "in_prod", "name"]), on=["service", "version"],
                          how="left").iter_rows(named=True):
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


def rollback_readiness(f: Frames) -> pl.DataFrame:
    """Per (service, version): is the down file there, was it tried outside prod, did it pass, re-applied?"""
    ev = f.events.filter(pl.col("version").is_not_null() & pl.col("direction").is_not_null())
    prod = f.cfg.prod_envs
    ups = ev.filter((pl.col("kind") == "applied") & (pl.col("direction") == "up"))
    base = ups.group_by(["service", "version"]).agg(
        pl.col("name").first(), pl.col("env").unique().sort().alias("envs_applied"),
        pl.col("env").is_in(prod).any().alias("in_prod"),
        pl.col("ts").filter(pl.col("env").is_in(prod)).min().alias("first_prod_at"))
    downs = ev.filter(pl.col("direction") == "down")
    files = downs.group_by(["service", "version"]).agg(
        (pl.col("name") == "<empty>").any().alias("empty"), (pl.col("name") != "<empty>").any().alias("named"))
    tried = downs.filter(pl.col("kind").is_in(["applied", "migration_failed"]) & ~pl.col("env").is_in(prod))
    last_down = (tried.sort("ts").group_by(["service", "version"]).agg(
        pl.col("env").unique().sort().alias("down_tried_envs"), pl.col("ts").last().alias("last_down_at"),
        (pl.col("kind").last() == "applied").alias("last_down_ok"), pl.col("env").last().alias("last_down_env")))
    table = (base.join(files, on=["service", "version"], how="left")
             .join(last_down, on=["service", "version"], how="left"))
    reapplied = (table.select(["service", "version", "last_down_at", "last_down_env"])
                 .join(ups.select(["service", "version", "env", "ts"]), on=["service", "version"])
                 .filter((pl.col("env") == pl.col("last_down_env")) & (pl.col("ts") > pl.col("last_down_at")))
                 .select(["service", "version"]).unique().with_columns(pl.lit(True).alias("reapplied_after_down")))
    return (
        table.join(reapplied, on=["service", "version"], how="left")
        .with_columns(
            pl.when(pl.col("empty").fill_null(False)).then(pl.lit("missing"))
            .when(pl.col("named").fill_null(False)).then(pl.lit("present")).otherwise(pl.lit("unknown")).alias("down_file"),
            pl.col("reapplied_after_down").fill_null(False),
        )
        .with_columns(
            ((pl.col("down_file") == "present") & pl.col("last_down_ok").fill_null(False)
             & pl.col("reapplied_after_down")).alias("ready"),
            pl.lit(f.as_of).alias("as_of"),
        )
        .select(["service", "version", "name", "down_file", "envs_applied", "in_prod", "first_prod_at",
                 "down_tried_envs", "last_down_at", "last_down_ok", "reapplied_after_down", "ready", "as_of"])
        .sort(["service", "version"])
    )

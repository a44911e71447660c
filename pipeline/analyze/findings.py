"""Findings: every detected problem, with severity, the evidence (observed vs expected, score), a one-line
explanation a person can check, and a status (open | resolved) as of the analysis clock.

Each `_kind` function takes the frames of one analysis and returns rows of the `findings` columns.
"""

from __future__ import annotations

import bisect
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from itertools import pairwise

import polars as pl

from pipeline.analyze.baselines import SCOPE
from pipeline.core.config import AnalyzeConfig
from pipeline.core.render import human_duration, human_minutes
from pipeline.core.vocabulary import CLEAN_OUTCOMES, FAILURE_OUTCOMES

COLUMNS = ["finding_id", "kind", "severity", "env", "service", "database", "version", "run_id", "ts", "observed",
           "expected", "score", "unit", "explanation", "status", "resolved_at", "runbook"]
SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    "finding_id": pl.String, "kind": pl.String, "severity": pl.String, "env": pl.String, "service": pl.String,
    "database": pl.String, "version": pl.Int64, "run_id": pl.String, "ts": pl.Datetime("us"),
    "observed": pl.Float64, "expected": pl.Float64, "score": pl.Float64, "unit": pl.String,
    "explanation": pl.String, "status": pl.String, "resolved_at": pl.Datetime("us"), "runbook": pl.String,
}

RUNBOOK = {
    "failed_run": "Read the error; the database is now dirty at that version. Check what the script applied, "
                  "`migrate force N-1` if nothing committed (or N if it did), fix the script, then `up`.",
    "dirty_open": "Check which statements of version N applied, then `migrate force N-1` (nothing applied) or "
                  "`force N` (all applied), and run `up`. Never force without looking.",
    "forced_recovery": "Confirm who forced which version and that the schema matches it; record it in the "
                       "change log. Prefer the wrapper (`migrate-lens wrap`) so forces are logged.",
    "duration_outlier": "Compare with the baseline: data growth, a missing index, lock waits. For a level shift, "
                        "decide whether it is the new normal before the next prod rollout.",
    "failure_spike": "Look at the failed runs of the window together: one cause (credentials, network, a bad "
                     "release) usually explains them.",
    "lock_timeout": "Another migrate held the advisory lock: serialise migration jobs (one Job per database) "
                    "and raise -lock-timeout if a long migration is expected.",
    "interrupted_run": "The process was killed (SIGTERM/OOM) mid-run: check `migrate version` for dirty, then "
                       "force and re-run; give the Job a longer activeDeadlineSeconds/terminationGracePeriod.",
    "prod_rollback": "A down migration ran in prod: confirm it was intended, and that the version was re-applied "
                     "or the release rolled back with it.",
    "promotion_skipped": "Apply the version in the earlier environment first; make the pipeline gate prod on it.",
    "missing_down": "Write the down migration (`N_name.down.sql`) and try it outside prod.",
    "non_idempotent": "Make the DDL re-runnable (IF NOT EXISTS / IF EXISTS) so a re-run after a failure or force "
                      "is safe.",
}


@dataclass
class Frames:
    """Everything one analysis sees, cut at the clock."""

    runs: pl.DataFrame
    events: pl.DataFrame
    scored: pl.DataFrame
    as_of: datetime
    cfg: AnalyzeConfig

    @cached_property
    def by_db(self) -> dict[tuple, list[dict]]:
        """Runs per (env, service, database), in time order (built once, shared by the detectors), for the
        databases that ever had trouble (a run that was not clean): every detector that walks a database's
        history starts from such a run, and a healthy fleet's other databases need no Python pass."""
        keys = ["env", "service", "database"]
        trouble = self.runs.filter(
            ~pl.col("outcome").is_in(["success", "no_change"]) | pl.col("left_dirty")
            | pl.col("dirty_version").is_not_null()
        ).select(keys).unique()
        return _by_db(self.runs.join(trouble, on=keys, how="semi"))

    @cached_property
    def clean_runs(self) -> dict[tuple, tuple[list[datetime], list[dict]]]:
        """Per database, its clean runs (success / no change without dirty evidence) and their start times."""
        out: dict[tuple, tuple[list[datetime], list[dict]]] = {}
        for key, runs in self.by_db.items():
            clean = [r for r in runs if r["outcome"] in CLEAN_OUTCOMES and not _dirty_evidence(r)]
            out[key] = ([r["started_at"] for r in clean], clean)
        return out

    def later_clean(self, row: dict) -> dict | None:
        """The first clean run on the same database after `row`."""
        times, clean = self.clean_runs.get(_db_key(row), ([], []))
        i = bisect.bisect_right(times, row["started_at"])
        return clean[i] if i < len(clean) else None


def _id(*parts: object) -> str:
    return hashlib.md5("\x1f".join("" if p is None else str(p) for p in parts).encode()).hexdigest()[:16]


def _rows(kind: str, rows: list[dict]) -> pl.DataFrame:
    for row in rows:
        row.setdefault("runbook", RUNBOOK[kind])
        row["kind"] = kind
        row["finding_id"] = _id(kind, row.get("env"), row.get("service"), row.get("database"), row.get("version"),
                                row.get("run_id"), row.get("ts"))
        for col in COLUMNS:
            row.setdefault(col, None)
    return pl.DataFrame(rows, schema=SCHEMA) if rows else pl.DataFrame(schema=SCHEMA)


def _is_prod(env: str, cfg: AnalyzeConfig) -> bool:
    return env in cfg.prod_envs


def _db_key(row: dict) -> tuple:
    return (row["env"], row["service"], row["database"])


def _by_db(runs: pl.DataFrame) -> dict[tuple, list[dict]]:
    grouped: dict[tuple, list[dict]] = {}
    for row in runs.sort(["started_at", "run_id"]).iter_rows(named=True):
        grouped.setdefault(_db_key(row), []).append(row)
    return grouped


def run_findings(f: Frames) -> list[pl.DataFrame]:
    """failed_run, lock_timeout, interrupted_run: one per run, resolved by a later clean run on the database."""
    specs = {
        "failed_run": ("failed", "critical", "warning"),
        "lock_timeout": ("locked", "warning", "warning"),
        "interrupted_run": ("interrupted", "warning", "warning"),
    }
    out = []
    for kind, (outcome, prod_sev, other_sev) in specs.items():
        rows = []
        for run in f.runs.filter(pl.col("outcome") == outcome).sort("started_at").iter_rows(named=True):
            clean = f.later_clean(run)
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
                "explanation": text + (f"; a clean run followed at {clean['started_at']:%Y-%m-%d %H:%M}" if clean else ""),
                "status": "resolved" if clean else "open",
                "resolved_at": clean["started_at"] if clean else None,
            })
        out.append(_rows(kind, rows))
    return out


def _dirty_evidence(run: dict) -> bool:
    return bool(run["left_dirty"] or run["outcome"] == "dirty" or run["dirty_version"] is not None)


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


def outlier_findings(f: Frames) -> list[pl.DataFrame]:
    """duration_outlier: a lone outlier once per application; a streak of `shift_min`+ once, as a level shift."""
    outliers = f.scored.filter(pl.col("outlier"))
    if outliers.is_empty():
        return [_rows("duration_outlier", [])]
    streaks = (
        outliers.group_by([*SCOPE, "streak"])
        .agg(pl.len().alias("count"), pl.col("ts").min().alias("first_ts"), pl.col("ts").max().alias("last_ts"),
             pl.col("own_ms").median().alias("observed"), pl.col("prior_median").first().alias("expected"),
             pl.col("z").median().alias("score"), pl.col("database").n_unique().alias("databases"),
             pl.col("name").last(), pl.col("run_id").first(), pl.col("database").first(),
             pl.col("source_env").unique().sort().alias("source_envs"))
    )
    # Resolved once a later application is back under `outlier_ratio` x the baseline the streak broke
    # from; a baseline that merely absorbed the new level does not resolve it.
    recovered = (
        streaks.select([*SCOPE, "streak", "last_ts", "expected"])
        .join(f.scored.select([*SCOPE, "ts", "own_ms"]), on=SCOPE)
        .filter((pl.col("ts") > pl.col("last_ts")) & (pl.col("own_ms") < f.cfg.outlier_ratio * pl.col("expected")))
        .group_by([*SCOPE, "streak"]).agg(pl.col("ts").min().alias("recovered_at"))
    )
    streaks = streaks.join(recovered, on=[*SCOPE, "streak"], how="left")
    rows = []
    for s in streaks.sort([*SCOPE, "streak"]).iter_rows(named=True):
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


def spike_findings(f: Frames) -> list[pl.DataFrame]:
    """failure_spike: a service/env failing far more often in the recent window than in its trailing one."""
    cfg = f.cfg
    start = f.as_of - timedelta(days=cfg.spike_window_days)
    trail = start - timedelta(days=cfg.spike_trailing_days)
    rates = (
        f.runs.filter((pl.col("started_at") > trail) & (pl.col("started_at") <= f.as_of))
        .with_columns(pl.col("outcome").is_in(FAILURE_OUTCOMES).alias("failed"),
                      (pl.col("started_at") > start).alias("recent"))
        .group_by(["env", "service"])
        .agg((pl.col("failed") & pl.col("recent")).sum().alias("f_recent"),
             pl.col("recent").sum().alias("n_recent"),
             (pl.col("failed") & ~pl.col("recent")).sum().alias("f_trail"),
             (~pl.col("recent")).sum().alias("n_trail"),
             pl.col("started_at").filter(pl.col("failed") & pl.col("recent")).min().alias("first_failure"))
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
        trouble = [r for r in earlier if r["outcome"] in ("failed", "interrupted", "dirty")]
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


def detect(f: Frames) -> tuple[pl.DataFrame, pl.DataFrame]:
    """All findings and the rollback readiness relation for one clock."""
    readiness = rollback_readiness(f)
    dirty, forced = dirty_findings(f)
    frames = [*run_findings(f), dirty, forced, *outlier_findings(f), *spike_findings(f), *rollback_findings(f),
              *promotion_findings(f), *missing_down_findings(f, readiness), *idempotency_findings(f, forced)]
    findings = pl.concat(frames, how="vertical").with_columns(pl.lit(f.as_of).alias("as_of"))
    return findings.sort(["ts", "kind", "finding_id"], nulls_last=True), readiness

"""Stage 5, report: the weekly review, one self-contained HTML file an SRE reads in five minutes.

The page is rendered from one typed context of plain values built here from the warehouse; the templates
(`reports/*.html.j2`) never query. One jinja2 environment: autoescape on, StrictUndefined, filters
registered in one place.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import jinja2

from pipeline.core.assets import sql_text
from pipeline.core.config import Config
from pipeline.core.errors import ConfigError, WarehouseError
from pipeline.core.redact import redact
from pipeline.core.render import environment
from pipeline.core.vocabulary import FAILURE_OUTCOMES
from pipeline.core.weeks import Week
from pipeline.warehouse import execute
from pipeline.warehouse.named import run_named

# The page aggregates; past this many rows a list is cut (the rest is one named query away).
MAX_ROWS = 40
@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    value: float | None
    previous: float | None
    unit: str  # count | percent | ms | minutes
    worse_when: str  # up | down | none


@dataclass(frozen=True)
class FindingItem:
    kind: str
    severity: str
    status: str
    where: str
    version: int | None
    ts: datetime | None
    explanation: str
    runbook: str


@dataclass(frozen=True)
class ServiceRow:
    env: str
    service: str
    runs: int
    outcomes: tuple[tuple[str, int], ...]
    failures: int


@dataclass(frozen=True)
class VersionRow:
    service: str
    cells: tuple[str, ...]  # one per env in `envs`: versions seen, e.g. "23" or "22–23 (8 dbs)"
    drift: bool


@dataclass(frozen=True)
class ScriptRow:
    where: str
    script: str
    own_ms: float
    median_ms: float | None
    ratio: float | None
    ts: datetime
    spark: str  # SVG polyline points "x,y x,y …" of the script's history, or ""


@dataclass(frozen=True)
class Bar:
    label: str
    runs: int
    failures: int
    height: float
    fail_height: float


@dataclass(frozen=True)
class ReadinessRow:
    service: str
    version: int
    name: str
    down_file: str
    tried: str
    last_down: str
    ci: str = "—"  # "2026-11-14 passed", "2026-11-14 failed (schema_restored)": the down as `verify` tested it


@dataclass(frozen=True)
class AlertingRow:
    rule: str
    fired: int
    resolved: int
    repeats: int
    silenced: int
    escalated: int
    median_resolve_minutes: float | None


@dataclass(frozen=True)
class WeeklyContext:
    """Everything the weekly page shows, as plain values."""

    week: Week
    previous: Week
    as_of: datetime
    attention: list[FindingItem]
    headline: list[Metric]
    services: list[ServiceRow]
    envs: list[str]
    versions: list[VersionRow]
    slowest: list[ScriptRow]
    regressions: list[FindingItem]
    daily: list[Bar]
    readiness: list[ReadinessRow]
    sections: dict[str, list[FindingItem]]
    quality: dict[str, int]
    reject_reasons: list[tuple[str, int]]
    open_counts: dict[str, int] = field(default_factory=dict)
    silences: list[tuple[str, datetime, str, str]] = field(default_factory=list)  # matchers, until, comment, by
    silenced: list[tuple[str, str]] = field(default_factory=list)  # rule, what is held back
    lint_bitten: list[dict[str, object]] = field(default_factory=list)  # lint flags that failed/dirty/rolled back
    alerting: list[AlertingRow] = field(default_factory=list)  # per rule, the 4 weeks ending with this one
    noisiest: list[str] = field(default_factory=list)  # rules that fired or repeated most, at most three
    alerting_since: datetime | None = None


@dataclass(frozen=True)
class ReportResult:
    """What one report run wrote."""

    path: Path
    index: Path
    week: str
    attention: int
    size_bytes: int

    def summary(self) -> str:
        return (f"wrote {self.path} ({self.size_bytes / 1024:.0f} KiB, week {self.week}, "
                f"{self.attention} item{'s' if self.attention != 1 else ''} need attention); index: {self.index}")


def _rows(con: duckdb.DuckDBPyConnection, name: str, params: dict[str, object]) -> list[dict]:
    cur = execute(con, sql_text(f"report/{name}"), params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _findings(con: duckdb.DuckDBPyConnection, where: str, params: list[object]) -> list[FindingItem]:
    cur = con.execute(
        "SELECT kind, severity, status, env, service, database, version, ts, explanation, runbook FROM findings "
        f"WHERE {where} ORDER BY severity_rank(severity), ts DESC, "
        "finding_id", params)
    return [FindingItem(kind, sev, status, "/".join(p for p in (env, service, db) if p), version, ts,
                        redact(explanation), runbook or "")
            for kind, sev, status, env, service, db, version, ts, explanation, runbook in cur.fetchall()]


def _headline(con: duckdb.DuckDBPyConnection, week: Week, config: Config) -> dict[str, float | None]:
    row = _rows(con, "headline", {"start": week.start, "end": week.end, "prod_envs": config.analyze.prod_envs})[0]
    dirty = con.execute(
        "SELECT avg(observed), count(*) FROM findings WHERE kind = 'dirty_open' AND status = 'resolved' "
        "AND resolved_at >= ? AND resolved_at < ?", [week.start, week.end]).fetchall()[0]
    runs = row["runs"] or 0
    return {
        "runs": runs,
        "success_rate": (100.0 * row["succeeded"] / runs) if runs else None,
        "failures": row["failures"],
        "dirty_mttr": dirty[0],
        "p95_own_ms": row["p95_own_ms"],
        "lock_timeouts": row["lock_timeouts"],
        "prod_rollbacks": row["prod_rollbacks"],
    }


_METRICS = [
    ("runs", "Runs", "count", "none"),
    ("success_rate", "Success rate", "percent", "down"),
    ("failures", "Failed runs", "count", "up"),
    ("dirty_mttr", "Dirty time (MTTR)", "minutes", "up"),
    ("p95_own_ms", "p95 own duration", "ms", "up"),
    ("lock_timeouts", "Lock timeouts", "count", "up"),
    ("prod_rollbacks", "Rollbacks in prod", "count", "up"),
]


def _ci_down_test(r: dict) -> str:
    """The rollback-readiness cell for the down's CI test: "down tested in CI on <date>: passed/failed (…)"."""
    if not r["down_test"]:
        return "—"
    how = {"failed": f"failed ({r['down_test_failed_checks']})", "missing": "no down file",
           "not_tested": "not tested (its up failed)"}.get(r["down_test"], r["down_test"])
    return f"{r['down_tested_at']:%Y-%m-%d}: {how}"


def _spark(points: list[float], width: float = 120, height: float = 24) -> str:
    if len(points) < 2:
        return ""
    top = max(points) or 1.0
    step = width / (len(points) - 1)
    return " ".join(f"{i * step:.1f},{height - 2 - (v / top) * (height - 4):.1f}" for i, v in enumerate(points))


def _version_cell(values: list[int]) -> str:
    if not values:
        return ""
    lo, hi = min(values), max(values)
    label = str(hi) if lo == hi else f"{lo}–{hi}"
    return label + (f" ({len(values)} dbs)" if len(values) > 1 else "")


def build_context(con: duckdb.DuckDBPyConnection, *, config: Config, as_of: datetime, week: Week) -> WeeklyContext:
    """Read the warehouse into the weekly page's context (the template never queries)."""
    prev = week.previous()
    now, before = _headline(con, week, config), _headline(con, prev, config)
    headline = [Metric(k, label, now[k], before[k], unit, worse) for k, label, unit, worse in _METRICS]
    in_week = "(ts >= ? AND ts < ?)"
    attention = _findings(con, "status = 'open' AND (severity = 'critical' OR kind IN ('dirty_open', 'failed_run'))"
                               " AND ts <= ?", [as_of])[:MAX_ROWS]
    # Ephemeral envs (preview-*, ci-*) appear under their pooled name: thousands of them would drown the page.
    outcomes: dict[tuple[str, str], dict[str, int]] = {}
    for r in _rows(con, "outcomes", {"start": week.start, "end": week.end}):
        per = outcomes.setdefault((config.analyze.pool(r["env"]), r["service"]), {})
        per[r["outcome"]] = per.get(r["outcome"], 0) + r["runs"]
    order = {e: i for i, e in enumerate(config.analyze.env_order)}
    services = [ServiceRow(env, svc, sum(o.values()), tuple(sorted(o.items())), sum(o.get(x, 0) for x in FAILURE_OUTCOMES))
                for (env, svc), o in sorted(outcomes.items(), key=lambda kv: (order.get(kv[0][0], 99), kv[0]))
                ][:MAX_ROWS]
    seen: dict[str, dict[str, list[int]]] = {}
    for r in _rows(con, "versions", {"as_of": as_of}):
        if r["version"] is not None:
            seen.setdefault(r["service"], {}).setdefault(config.analyze.pool(r["env"]), []).append(r["version"])
    envs = sorted({e for per in seen.values() for e in per}, key=lambda e: (order.get(e, 99), e))
    versions = [VersionRow(svc, tuple(_version_cell(per.get(e, [])) for e in envs),
                           len({max(v) for v in per.values()}) > 1) for svc, per in sorted(seen.items())]
    slowest = []
    for r in _rows(con, "slowest", {"start": week.start, "end": week.end, "limit": 10}):
        history = _rows(con, "history", {"env": r["env"], "service": r["service"], "version": r["version"],
                                         "direction": r["direction"], "as_of": as_of})
        ratio = r["own_ms"] / r["median_ms"] if r["median_ms"] else None
        where = f"{r['env']}/{r['service']}/" + (r["database"] if r["databases"] == 1 else f"{r['databases']} dbs")
        slowest.append(ScriptRow(where, f"{r['version']}/{r['direction'][0]} {r['name']}", r["own_ms"], r["median_ms"],
                                 ratio, r["ts"], _spark([h["own_ms"] for h in history])))
    daily_rows = _rows(con, "daily", {"start": week.start, "end": week.end})
    top = max([d["runs"] for d in daily_rows] + [1])
    daily = [Bar(f"{d['day']:%a %d}", d["runs"], d["failures"], 60.0 * d["runs"] / top, 60.0 * d["failures"] / top)
             for d in daily_rows]
    readiness = [ReadinessRow(r["service"], r["version"], r["name"] or "", r["down_file"],
                              ", ".join(r["down_tried_envs"] or []) or "never",
                              f"{r['last_down_at']:%Y-%m-%d} {'passed' if r['last_down_ok'] else 'failed'}"
                              if r["last_down_at"] else "—", _ci_down_test(r))
                 for r in _rows(con, "readiness_gaps", {"limit": 30})]
    sections = {kind: _findings(con, f"kind = ? AND (status = 'open' OR {in_week}) AND ts <= ?",
                                [kind, week.start, week.end, as_of])[:MAX_ROWS]
                for kind in ("promotion_skipped", "forced_recovery", "non_idempotent", "interrupted_run",
                             "prod_rollback", "missing_down", "down_test_failed", "lock_timeout", "failure_spike")}
    regressions = _findings(con, f"kind = 'duration_outlier' AND (status = 'open' OR {in_week}) AND ts <= ?",
                            [week.start, week.end, as_of])[:MAX_ROWS]
    quality = _rows(con, "quality", {})[0]
    reasons = [(r["reason"], r["records"]) for r in _rows(con, "reject_reasons", {})]
    open_counts = dict(con.execute("SELECT severity, count(*) FROM findings WHERE status = 'open' GROUP BY 1")
                       .fetchall())
    silences = [(", ".join(f"{k}={v}" for k, v in sorted(json.loads(m).items())), until, comment, by)
                for m, until, comment, by in con.execute(
                    "SELECT matchers, ends_at, comment, created_by FROM silences WHERE ends_at > ? AND starts_at <= ? "
                    "ORDER BY ends_at", [as_of, as_of]).fetchall()]
    silenced = [(rule, redact(summary)) for rule, summary in con.execute(
        "SELECT rule, summary FROM alerts WHERE status = 'silenced' ORDER BY rule, fingerprint").fetchall()]
    bitten = run_named(con,  # the one definition of "lint that bit"
                       "lint_vs_history", {"as_of": as_of.isoformat()}).to_dicts()
    since = week.end - timedelta(days=28)
    alerting = [AlertingRow(**r) for r in _rows(con, "alerting", {"start": since, "end": week.end})]
    noisiest = [a.rule for a in alerting if a.fired + a.repeats > 0][:3]
    return WeeklyContext(week, prev, as_of, attention, headline, services, envs, versions, slowest, regressions,
                         daily, readiness, sections, quality, reasons, open_counts, silences, silenced, bitten,
                         alerting, noisiest, since)


def _index(out: Path, env: jinja2.Environment, as_of: datetime) -> Path:
    pages = sorted((p.stem for p in out.glob("????-W??.html")), reverse=True)
    index = out / "index.html"
    index.write_text(env.get_template("index.html.j2").render(pages=pages, as_of=as_of), encoding="utf-8")
    return index


def report(con: duckdb.DuckDBPyConnection, *, config: Config, as_of: datetime, out: Path,
           week: str | None = None) -> ReportResult:
    """Write `reports/YYYY-Www.html` under `out` for `week` (default: the last complete week) and the index."""
    chosen = Week.parse(week) if week else Week.before(as_of)
    try:
        context = build_context(con, config=config, as_of=as_of, week=chosen)
    except duckdb.Error as e:
        raise WarehouseError(f"reading the warehouse for the report failed: {str(e).splitlines()[0]} "
                             "(run ingest and analyze first)") from e
    env = environment()
    html = env.get_template("weekly.html.j2").render(c=context)
    folder = out / "reports"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{chosen.label}.html"
        path.write_text(html, encoding="utf-8")
        index = _index(folder, env, as_of)
    except OSError as e:
        raise ConfigError(f"{folder}: cannot write the report ({e.strerror}); check --out") from e
    return ReportResult(path, index, chosen.label, len(context.attention), len(html.encode()))

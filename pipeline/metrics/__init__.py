"""Stage 7, metrics: the warehouse as Prometheus metrics (text format 0.0.4), for node_exporter's textfile
collector or a Pushgateway, so the dashboards teams already have can show migrations.

Runs, versions, dirty state and last runs are read at the clock (`--as-of`); script durations and open
findings are those of the last `analyze`; `ingest_lines_total` and `rejects_total` count the whole warehouse.
Pooled environments (`[analyze] pooled_envs`: preview-*, ci-*) are one series per pool, not one per database.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
from prometheus_client import CollectorRegistry, generate_latest, push_to_gateway, write_to_textfile
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from pipeline.core.config import Config
from pipeline.core.errors import ConfigError, DeliveryError
from pipeline.core.redact import redact
from pipeline.core.vocabulary import FAILURE_OUTCOMES, FINDING_KINDS, SEVERITIES

JOB = "migrate_lens"
POOLED = "*"  # the database label of a pool's one series

# name, type, labels, help: the documented set (README § Metrics, docs/contract.md §5).
METRICS: tuple[tuple[str, str, tuple[str, ...], str], ...] = (
    ("migrate_lens_runs_total", "counter", ("env", "service", "outcome"),
     "migrate runs started by the clock, by outcome."),
    ("migrate_lens_run_failures_total", "counter", ("env", "service", "error_class"),
     "Failed runs (failed, dirty, locked, error, interrupted) started by the clock, by error class."),
    ("migrate_lens_script_duration_seconds", "gauge", ("env", "service", "version", "direction", "quantile"),
     "A script's own duration in its baseline (last analyze): quantile 0.5 (median) and 0.95."),
    ("migrate_lens_database_version", "gauge", ("env", "service", "database"),
     "The version a database is at (a pool: the highest of its databases)."),
    ("migrate_lens_database_dirty", "gauge", ("env", "service", "database"),
     "1 when a database is dirty now, else 0 (a pool: how many of its databases are dirty)."),
    ("migrate_lens_findings_open", "gauge", ("kind", "severity"), "Open findings of the last analyze."),
    ("migrate_lens_last_run_timestamp_seconds", "gauge", ("env", "service", "database"),
     "Unix time the last run on a database started (a pool: its latest)."),
    ("migrate_lens_ingest_lines_total", "counter", (), "Records read by ingest, over the whole warehouse."),
    ("migrate_lens_rejects_total", "counter", ("reason",),
     "Records refused by ingest, by reason, over the whole warehouse (those prune removed included)."),
    ("migrate_lens_as_of_timestamp_seconds", "gauge", (), "The clock the metrics were computed for (Unix time)."),
)


def _family(name: str, kind: str, labels: tuple[str, ...], help_text: str) -> CounterMetricFamily | GaugeMetricFamily:
    if kind == "counter":
        return CounterMetricFamily(name, help_text, labels=list(labels))
    return GaugeMetricFamily(name, help_text, labels=list(labels))


def _epoch(ts: datetime) -> float:
    return ts.replace(tzinfo=UTC).timestamp()


class _Warehouse(Collector):
    """Reads the warehouse once, when the registry is collected."""

    def __init__(self, con: duckdb.DuckDBPyConnection, config: Config, as_of: datetime) -> None:
        self.con, self.config, self.as_of = con, config, as_of

    def _pool(self, env: str) -> tuple[str, bool]:
        pool = self.config.analyze.pool(env)
        return pool, pool != env

    def collect(self) -> Iterator[Metric]:
        families = {name: _family(name, kind, labels, help_text) for name, kind, labels, help_text in METRICS}
        con, as_of = self.con, self.as_of
        runs: dict[tuple[str, ...], float] = {}
        failures: dict[tuple[str, ...], float] = {}
        for env, service, outcome, error_class, n in con.execute(
                "SELECT env, service, outcome, error_class, count(*) FROM runs WHERE started_at <= ? "
                "GROUP BY ALL", [as_of]).fetchall():
            env = self._pool(env)[0]
            runs[(env, service, outcome)] = runs.get((env, service, outcome), 0) + n
            if outcome in FAILURE_OUTCOMES:
                key = (env, service, error_class or "unknown")
                failures[key] = failures.get(key, 0) + n
        for key, n in sorted(runs.items()):
            families["migrate_lens_runs_total"].add_metric(list(key), n)
        for key, n in sorted(failures.items()):
            families["migrate_lens_run_failures_total"].add_metric(list(key), n)
        for env, service, version, direction, median, p95 in con.execute(
                "SELECT env, service, version, direction, median_ms, p95_ms FROM script_baselines "
                "WHERE median_ms IS NOT NULL ORDER BY ALL").fetchall():
            for quantile, ms in (("0.5", median), ("0.95", p95)):
                if ms is not None:
                    families["migrate_lens_script_duration_seconds"].add_metric(
                        [env, service, str(version), direction, quantile], ms / 1000)
        versions: dict[tuple[str, ...], float] = {}
        dirty: dict[tuple[str, ...], float] = {}
        for env, service, database, version, is_dirty in con.execute(
                "SELECT env, service, database, version, dirty FROM database_versions(?::TIMESTAMP) ORDER BY ALL",
                [as_of]).fetchall():
            pool, pooled = self._pool(env)
            key = (pool, service, POOLED if pooled else database)
            if version is not None:
                versions[key] = max(versions.get(key, version), version)
            dirty[key] = dirty.get(key, 0) + bool(is_dirty)
        for key, v in sorted(versions.items()):
            families["migrate_lens_database_version"].add_metric(list(key), v)
        for key, v in sorted(dirty.items()):
            families["migrate_lens_database_dirty"].add_metric(list(key), v)
        last: dict[tuple[str, ...], datetime] = {}
        for env, service, database, started in con.execute(
                "SELECT env, service, database, max(started_at) FROM runs WHERE started_at <= ? GROUP BY ALL",
                [as_of]).fetchall():
            pool, pooled = self._pool(env)
            key = (pool, service, POOLED if pooled else database)
            last[key] = max(last.get(key, started), started)
        for key, ts in sorted(last.items()):
            families["migrate_lens_last_run_timestamp_seconds"].add_metric(list(key), _epoch(ts))
        open_findings = {(k, s): n for k, s, n in con.execute(
            "SELECT kind, severity, count(*) FROM findings WHERE status = 'open' GROUP BY ALL").fetchall()}
        for kind in sorted({*FINDING_KINDS, *(k for k, _ in open_findings)}):
            for severity in SEVERITIES:  # zeros too: a panel shows 0, not "no data"
                families["migrate_lens_findings_open"].add_metric([kind, severity], open_findings.get((kind, severity), 0))
        lines = con.execute("SELECT coalesce(sum(lines), 0) FROM ingested_sources").fetchall()[0][0]
        families["migrate_lens_ingest_lines_total"].add_metric([], lines)
        for reason, n in con.execute(
                "SELECT reason, sum(n) FROM (SELECT reason, count(*) AS n FROM rejects GROUP BY ALL UNION ALL "
                "SELECT reason, sum(rejects) FROM pruned_rejects GROUP BY ALL) GROUP BY ALL ORDER BY ALL").fetchall():
            families["migrate_lens_rejects_total"].add_metric([reason], n)
        families["migrate_lens_as_of_timestamp_seconds"].add_metric([], _epoch(as_of))
        yield from families.values()


@dataclass(frozen=True)
class MetricsResult:
    """What one metrics run produced and where it went."""

    text: str
    series: int
    textfile: Path | None = None
    pushed_to: str | None = None

    def summary(self) -> str:
        where = [f"wrote {self.textfile}"] if self.textfile else []
        where += [f"pushed to {self.pushed_to} (job {JOB})"] if self.pushed_to else []
        return f"metrics: {self.series} series" + (f"; {'; '.join(where)}" if where else "")


def registry(con: duckdb.DuckDBPyConnection, *, config: Config, as_of: datetime) -> CollectorRegistry:
    """A registry holding the warehouse's metrics at `as_of` (read when collected)."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(_Warehouse(con, config, as_of))
    return reg


def metrics(con: duckdb.DuckDBPyConnection, *, config: Config, as_of: datetime, textfile: Path | None = None,
            push_url: str | None = None) -> MetricsResult:
    """The exposition at `as_of`; written atomically to `textfile` and/or pushed to a Pushgateway."""
    reg = registry(con, config=config, as_of=as_of)
    text = generate_latest(reg).decode()
    series = sum(1 for line in text.splitlines() if line and not line.startswith("#"))
    if textfile is not None:
        try:
            textfile.parent.mkdir(parents=True, exist_ok=True)
            write_to_textfile(str(textfile), reg)  # a temporary file renamed over it: readers never see half
        except OSError as e:
            raise ConfigError(f"{textfile}: cannot write the metrics ({e.strerror}); check --textfile") from e
    if push_url:
        try:
            push_to_gateway(push_url, job=JOB, registry=reg, timeout=10)
        except OSError as e:
            raise DeliveryError(f"metrics: the Pushgateway at {redact(push_url)} refused or is down "
                                f"({redact(str(e))[:200]}); check --push / [metrics] push_url") from e
    return MetricsResult(text, series, textfile, push_url and redact(push_url))

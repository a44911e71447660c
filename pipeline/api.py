"""The public Python API: everything the `migrate-lens` command does, callable from a user's own script.

Two forms, one behaviour. Functions over an open DuckDB connection, for code that manages its own
connection (and for tests)::

    from pipeline import api
    con = api.connect("migrate-lens.duckdb")
    api.ingest(con, ["logs/"], config=api.Config())
    api.analyze(con, config=api.Config(), as_of=datetime(2026, 11, 16))

and `Lens`, a warehouse file with the options every command shares, which opens a connection per call as the
CLI does::

    lens = Lens("migrate-lens.duckdb", out=Path("out"))
    print(lens.run(["logs/"]).summary())

Each call returns a small frozen result with a one-line `summary()`. Errors are `pipeline.core.errors.LensError`
subclasses whose message names the thing and the fix.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline import lint as _lint
from pipeline.core.errors import ConfigError, DeliveryError, SourceError, WarehouseError
from pipeline.core.vocabulary import FINDINGS_EXIT, at_or_above
from pipeline.core.weeks import Week
from pipeline.lint import LintResult
from pipeline.lint import exit_code as lint_exit_code
from pipeline.lint import render as render_lint

if TYPE_CHECKING:
    import duckdb
    import polars as pl

    from pipeline import alerts, analyze, ingest, parse, query, report, warehouse  # noqa: F401
    from pipeline import wrap as _wrap_stage  # noqa: F401
    from pipeline.alerts import AlertResult, Rules, load_rules
    from pipeline.analyze import AnalyzeResult
    from pipeline.core.config import Config, load_config
    from pipeline.ingest import IngestResult
    from pipeline.metrics import MetricsResult
    from pipeline.query import ExportResult
    from pipeline.report import ReportResult
    from pipeline.verify import VerifyResult
    from pipeline.warehouse import connect
    from pipeline.warehouse.named import NamedQuery
    from pipeline.warehouse.retention import PruneResult
    from pipeline.wrap import WrapResult


class _Stage:
    """A module imported on first use: `lint` (and `--help`) start without DuckDB, polars and the stages."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        return getattr(importlib.import_module(self._name), attr)


_alerts = _Stage("pipeline.alerts")
_analyze = _Stage("pipeline.analyze")
_ingest = _Stage("pipeline.ingest")
_parse = _Stage("pipeline.parse")
_query = _Stage("pipeline.query")
_report = _Stage("pipeline.report")
_warehouse = _Stage("pipeline.warehouse")
_retention = _Stage("pipeline.warehouse.retention")
_metrics = _Stage("pipeline.metrics")
_verify = _Stage("pipeline.verify")
_config = _Stage("pipeline.core.config")  # pydantic builds its models on import: `lint` seldom needs them
# Names this module re-exports from the stages, imported when first asked for.
_REEXPORTS = {
    "Config": "pipeline.core.config", "load_config": "pipeline.core.config",
    "AlertResult": "pipeline.alerts", "Rules": "pipeline.alerts", "load_rules": "pipeline.alerts",
    "AnalyzeResult": "pipeline.analyze", "IngestResult": "pipeline.ingest", "MetricsResult": "pipeline.metrics",
    "ExportResult": "pipeline.query", "ReportResult": "pipeline.report", "connect": "pipeline.warehouse",
    "NamedQuery": "pipeline.warehouse.named", "PruneResult": "pipeline.warehouse.retention",
    "WrapResult": "pipeline.wrap", "VerifyResult": "pipeline.verify",
}


def __getattr__(name: str) -> Any:
    if name in _REEXPORTS:
        return getattr(importlib.import_module(_REEXPORTS[name]), name)
    raise AttributeError(f"module 'pipeline.api' has no attribute {name!r}")


def named_queries() -> dict[str, NamedQuery]:
    """The named queries shipped in `queries/`, by name."""
    return _Stage("pipeline.warehouse.named").named_queries()  # type: ignore[no-any-return]


def render_frame(frame: pl.DataFrame, output_format: str) -> str:
    """A query result as text, CSV, JSON or Markdown."""
    return _Stage("pipeline.query.output").render(frame, output_format)  # type: ignore[no-any-return]


def render_verify(result: VerifyResult, output_format: str) -> str:
    """A verify result as text, JSON or JUnit XML."""
    return _Stage("pipeline.verify").render(result, output_format)  # type: ignore[no-any-return]


def write_frame(frame: pl.DataFrame, output_format: str, path: Path) -> None:
    """A query result written to `path` (Parquet, CSV, JSON, …)."""
    _Stage("pipeline.query.output").write(frame, output_format, path)


def wrap(args: list[str], *, events: Path, env: str | None, service: str | None,
         database: str | None) -> WrapResult:
    """Run migrate (`args`), record its run in `events`, and return how it exited."""
    return _Stage("pipeline.wrap").wrap(args, events=events, env=env, service=service,  # type: ignore[no-any-return]
                                        database=database)


__all__ = [
    "DEFAULT_DB",
    "DEFAULT_OUT",
    "AlertResult",
    "AnalyzeResult",
    "Config",
    "ExportResult",
    "IngestResult",
    "JobResult",
    "Lens",
    "LintResult",
    "MetricsResult",
    "NamedQuery",
    "PruneResult",
    "ReportResult",
    "Rules",
    "UpgradeResult",
    "VerifyResult",
    "WrapResult",
    "alert",
    "analyze",
    "connect",
    "fail_on_undelivered",
    "fail_on_unread",
    "ingest",
    "lint",
    "lint_exit_code",
    "load_config",
    "load_rules",
    "metrics",
    "named_queries",
    "prune",
    "query",
    "render_frame",
    "render_lint",
    "render_verify",
    "report",
    "run",
    "upgrade",
    "verify",
    "wrap",
    "write_frame",
]

DEFAULT_DB = "migrate-lens.duckdb"
DEFAULT_OUT = Path("migrate-lens-out")


def ingest(con: duckdb.DuckDBPyConnection, sources: list[str], *, config: Config, envelope: str | None = None,
           since: datetime | None = None, progress: bool = False) -> IngestResult:
    """Load `sources` (files, folders, globs, object-storage prefixes) and rebuild the events and runs of every
    stream that changed. Unchanged sources are skipped; unreadable ones are named in `failed`."""
    loaded = _ingest.ingest(con, sources, config=config, envelope=envelope, progress=progress, since=since)
    parsed = _parse.rebuild(con, config=config)
    return replace(loaded, events=parsed.events, runs=parsed.runs)


def analyze(con: duckdb.DuckDBPyConnection, *, config: Config, as_of: datetime) -> AnalyzeResult:
    """Rebuild baselines, findings and rollback readiness from what happened at or before `as_of`."""
    return _analyze.analyze(con, config=config, as_of=as_of)


def _require_fresh_analysis(con: duckdb.DuckDBPyConnection, command: str) -> None:
    """Stale or missing analysis is never reported as health."""
    why = _warehouse.stale_analysis(con)
    if why:
        raise WarehouseError(f"{command}: {why}; run `migrate-lens analyze` first (or `migrate-lens run`, which does)")


def report(con: duckdb.DuckDBPyConnection, *, config: Config, as_of: datetime, out: Path,
           week: str | None = None) -> ReportResult:
    """Write the weekly review of `week` (default: the last complete ISO week before `as_of`) and the index.
    Refuses when the analysis is missing or older than the last ingest."""
    _require_fresh_analysis(con, "report")
    return _report.report(con, config=config, as_of=as_of, out=out, week=week)


def alert(con: duckdb.DuckDBPyConnection, *, rules: Rules, as_of: datetime, out: Path,
          dry_run: bool = False) -> AlertResult:
    """Evaluate `rules` over open findings and deliver what is due (or, dry, write the outbox). Refuses when
    the analysis is missing or older than the last ingest."""
    _require_fresh_analysis(con, "alert")
    return _alerts.alert(con, rules=rules, as_of=as_of, out=out, dry_run=dry_run)


def metrics(con: duckdb.DuckDBPyConnection, *, config: Config, as_of: datetime, textfile: Path | None = None,
            push_url: str | None = None) -> MetricsResult:
    """The Prometheus exposition of the warehouse at `as_of`, written atomically to `textfile` and/or pushed to a
    Pushgateway. Refuses when the analysis is missing or older than the last ingest."""
    _require_fresh_analysis(con, "metrics")
    return _metrics.metrics(con, config=config, as_of=as_of, textfile=textfile, push_url=push_url)


def query(con: duckdb.DuckDBPyConnection, name_or_sql: str, params: dict[str, str] | None = None, *,
          as_of: datetime | None = None) -> pl.DataFrame:
    """A named query from `queries/` (by name) or ad-hoc SQL, parameters bound; a named query's clock
    (`as_of`) defaults to `as_of`, else now."""
    return _query.run_query(con, name_or_sql, params or {}, as_of)


def lint(folder: Path, *, multi_statement: bool = False, config: Config | None = None) -> LintResult:
    """Lint a golang-migrate folder (no warehouse needed); `config.lint` disables rules or sets their levels."""
    return _lint.lint(folder, multi_statement=multi_statement, config=config.lint if config else None)


def verify(folder: Path, *, database: str | None = None, multi_statement: bool = False, seed_dir: Path | None = None,
           strict: bool = False, allow_missing_down: bool = False,
           progress: Callable[[int, int], None] | None = None) -> VerifyResult:
    """Run a golang-migrate folder's ups and downs against a real PostgreSQL (no warehouse needed): a throwaway
    cluster from local server binaries, or scratch databases made through `database`; `progress(done, total)`."""
    return _verify.verify(folder, database=database, multi_statement=multi_statement, seed_dir=seed_dir,
                          strict=strict, allow_missing_down=allow_missing_down, progress=progress)


@dataclass(frozen=True)
class JobResult:
    """What the weekly job did, stage by stage."""

    ingest: IngestResult
    outcomes: tuple[tuple[str, int], ...]  # runs by outcome, over the whole warehouse
    analysis: AnalyzeResult
    report: ReportResult
    alerts: AlertResult
    pruned: PruneResult | None = None  # when [retention] keep_raw_days is set
    metrics: MetricsResult | None = None  # when [metrics] textfile or push_url is set

    def summary(self) -> str:
        by_outcome = ", ".join(f"{n:,} {outcome}" for outcome, n in self.outcomes) or "no runs"
        lines = [self.ingest.summary(), f"runs by outcome: {by_outcome}", self.analysis.summary(),
                 self.report.summary(), self.alerts.summary()]
        lines += [self.metrics.summary()] if self.metrics else []
        return "\n".join(lines + ([self.pruned.summary()] if self.pruned else []))

    def exit_code(self, fail_on: str | None) -> int:
        """3 when an open finding is at or above `fail_on` (critical, warning, info), else 0."""
        if fail_on is None:
            return 0
        return FINDINGS_EXIT if any(n and at_or_above(sev, fail_on) for sev, n in self.analysis.open_by_severity) else 0


def run(con: duckdb.DuckDBPyConnection, sources: list[str], *, config: Config, as_of: datetime, out: Path,
        rules: Rules, envelope: str | None = None, week: str | None = None, dry_run: bool = False,
        since: datetime | None = None, progress: bool = False) -> JobResult:
    """The weekly job: ingest, analyze as of the clock, write the weekly review, then alert."""
    loaded = ingest(con, sources, config=config, envelope=envelope, since=since, progress=progress)
    outcomes = con.execute(
        "SELECT outcome, count(*) FROM runs GROUP BY outcome ORDER BY count(*) DESC, outcome").fetchall()
    analysis = analyze(con, config=config, as_of=as_of)
    review = report(con, config=config, as_of=as_of, out=out, week=week)
    alerted = alert(con, rules=rules, as_of=as_of, out=out, dry_run=dry_run)
    wanted = config.metrics
    exposed = metrics(con, config=config, as_of=as_of, textfile=wanted.textfile, push_url=wanted.push_url) \
        if (wanted.textfile or wanted.push_url) and not dry_run else None
    keep = config.retention.keep_raw_days
    pruned = _retention.prune(con, keep_days=keep, now=as_of) if keep else None
    return JobResult(loaded, tuple((o, n) for o, n in outcomes), analysis, review, alerted, pruned, exposed)


def prune(con: duckdb.DuckDBPyConnection, *, keep_days: float, now: datetime) -> PruneResult:
    """Apply the retention policy: raw lines of closed streams and rejects older than `keep_days` go;
    events, runs, findings and alerts stay. `Lens.prune` also compacts the file."""
    return _retention.prune(con, keep_days=keep_days, now=now)


@dataclass(frozen=True)
class UpgradeResult:
    """The schema version of a warehouse before and after `upgrade`."""

    path: str
    before: int
    after: int

    def summary(self) -> str:
        if self.before == self.after:
            return f"{self.path}: schema version {self.after}, already current"
        return f"{self.path}: schema upgraded from version {self.before} to {self.after}"


def upgrade(path: str | Path, *, config: Config | None = None) -> UpgradeResult:
    """Bring a warehouse written by an older build to this build's schema (every writing call does it too)."""
    before, after = _warehouse.upgrade(path, settings=(config or _config.Config()).warehouse)
    return UpgradeResult(str(path), before, after)


def fail_on_unread(result: IngestResult) -> None:
    """Raise for sources that could not be read (every other source was ingested)."""
    if result.failed:
        more = f" (and {len(result.failed) - 1} more)" if len(result.failed) > 1 else ""
        raise SourceError(f"{result.failed[0]}{more}; every other source was ingested, "
                          "and these are retried on the next run")


def fail_on_undelivered(result: AlertResult) -> None:
    """Raise when a notification could not be delivered (it stays pending and is retried next run), so that
    cron notices; everything else the run did stands."""
    if result.channels_failed and not result.emails_failed:
        n = result.channels_failed
        raise DeliveryError(f"alert: {n} channel deliver{'ies' if n != 1 else 'y'} failed ({result.channel_errors[0]}); "
                            "see alert_deliveries (check the routes' channels)")
    if result.emails_failed:
        raise DeliveryError(f"alert: {result.emails_failed} e-mail{'s' if result.emails_failed != 1 else ''} could not "
                            f"be sent ({result.errors[0]}); kept pending, retried on the next run (check [smtp])")


class Lens:
    """A warehouse file and the options every command shares; each call opens and closes its connection."""

    def __init__(self, db: str | Path = DEFAULT_DB, *, config: Config | None = None, out: Path = DEFAULT_OUT,
                 as_of: datetime | None = None, progress: bool = False) -> None:
        self.db = str(db)
        self.config = config or _config.Config()
        self.out = Path(out)
        self.as_of = as_of or datetime.now(UTC).replace(tzinfo=None)
        self.progress = progress

    @contextmanager
    def connection(self, *, read_only: bool = False, create: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection to the warehouse; only the commands that load something pass `create`."""
        con = _warehouse.connect(self.db, read_only=read_only, settings=self.config.warehouse, create=create)
        try:
            yield con
        finally:
            con.close()

    def ingest(self, sources: list[str], *, envelope: str | None = None, since: datetime | None = None) -> IngestResult:
        with self.connection(create=True) as con:
            return ingest(con, sources, config=self.config, envelope=envelope, since=since, progress=self.progress)

    def analyze(self) -> AnalyzeResult:
        with self.connection() as con:
            return analyze(con, config=self.config, as_of=self.as_of)

    def report(self, *, week: str | None = None) -> ReportResult:
        if week:
            Week.parse(week)  # a mistyped week is named before the warehouse is opened
        with self.connection() as con:
            return report(con, config=self.config, as_of=self.as_of, out=self.out, week=week)

    def alert(self, *, rules: Rules | Path | None = None, dry_run: bool = False) -> AlertResult:
        loaded = rules if isinstance(rules, _alerts.Rules) else _alerts.load_rules(rules)
        with self.connection() as con:
            return alert(con, rules=loaded, as_of=self.as_of, out=self.out, dry_run=dry_run)

    def run(self, sources: list[str], *, rules: Rules | Path | None = None, envelope: str | None = None,
            week: str | None = None, dry_run: bool = False, since: datetime | None = None) -> JobResult:
        loaded = rules if isinstance(rules, _alerts.Rules) else _alerts.load_rules(rules)  # a bad rules file stops it before any change
        with self.connection(create=True) as con:
            job = run(con, sources, config=self.config, as_of=self.as_of, out=self.out, rules=loaded,
                      envelope=envelope, week=week, dry_run=dry_run, since=since, progress=self.progress)
        if job.pruned and self.config.retention.compact:
            job = replace(job, pruned=replace(job.pruned, **self._compact()))
        return job

    def prune(self, *, keep_days: float | None = None) -> PruneResult:
        """The retention policy (`keep_days`, else `[retention] keep_raw_days`), then compaction."""
        keep = keep_days or self.config.retention.keep_raw_days
        if not keep:
            raise ConfigError("prune: give --keep-days N or set [retention] keep_raw_days in the config file")
        with self.connection() as con:
            pruned = prune(con, keep_days=keep, now=self.as_of)
        return replace(pruned, **self._compact()) if self.config.retention.compact else pruned

    def _compact(self) -> dict[str, int]:
        before, after = _retention.compact(self.db)
        return {"bytes_before": before, "bytes_after": after}

    def query(self, name_or_sql: str, params: dict[str, str] | None = None) -> pl.DataFrame:
        """A named query or one ad-hoc statement, read-only and sandboxed: no files, network, extensions or
        settings."""
        with self.connection(read_only=True) as con:
            _query.sandbox(con)
            return query(con, name_or_sql, params, as_of=self.as_of)

    def metrics(self, *, textfile: Path | None = None, push_url: str | None = None) -> MetricsResult:
        with self.connection(read_only=True) as con:
            return metrics(con, config=self.config, as_of=self.as_of, textfile=textfile, push_url=push_url)

    def export(self, folder: Path) -> ExportResult:
        with self.connection(read_only=True) as con:
            return _query.export_parquet(con, folder)

    def silence(self, *, matchers: list[str], duration: str | None, until: str | None, comment: str,
                created_by: str) -> str:
        with self.connection(create=True) as con:
            return _alerts.add_silence(con, matchers=matchers, duration=duration, until=until, comment=comment,
                                       created_by=created_by, now=self.as_of)

    def store_lint(self, result: LintResult, service: str) -> int:
        with self.connection(create=True) as con:
            return _lint.store(con, result, service)

    def store_verify(self, result: VerifyResult, service: str) -> int:
        with self.connection(create=True) as con:
            return _verify.store(con, result, service)

    def upgrade(self) -> UpgradeResult:
        return upgrade(self.db, config=self.config)

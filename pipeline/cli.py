"""The `migrate-lens` command: a thin layer over `pipeline.api.Lens` that parses options and prints one summary.

Errors are translated once, in `_stage`: a `LensError` becomes one `Error: …` line on stderr and its exit
code (1, or 2 for usage); `--debug` shows the traceback instead. The options every command shares are
accepted before the command and after it (`migrate-lens ingest logs/ --db w.duckdb`).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from pipeline import __version__
from pipeline.api import (
    DEFAULT_DB,
    DEFAULT_OUT,
    Lens,
    fail_on_undelivered,
    fail_on_unread,
    lint,
    lint_exit_code,
    named_queries,
    render_frame,
    render_lint,
    render_verify,
    verify,
    wrap,
    write_frame,
)
from pipeline.core.errors import LensError, QueryError
from pipeline.core.render import inert
from pipeline.core.vocabulary import ENVELOPES, SEVERITIES

if TYPE_CHECKING:
    from pipeline.core.config import Config

_COMMON = "migrate_lens_common"


def _parse_as_of(value: str | None) -> datetime:
    if not value:
        return datetime.now(UTC).replace(tzinfo=None)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO timestamp (e.g. 2026-11-16T00:00:00Z)") from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


def _remember(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """Keep a common option given on the group or on the command; the command's own wins."""
    if value is not None and value is not False:
        ctx.find_root().meta.setdefault(_COMMON, {})[param.name] = value
    return value


def _common_options(func: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--db", default=None, expose_value=False, callback=_remember,
                     help=f"The DuckDB warehouse file (default {DEFAULT_DB}, or $MIGRATE_LENS_DB)."),
        click.option("--config", default=None, type=click.Path(path_type=Path), expose_value=False,
                     callback=_remember, help="TOML config file."),
        click.option("--out", default=None, type=click.Path(path_type=Path), expose_value=False, callback=_remember,
                     help=f"Where reports and the outbox go (default {DEFAULT_OUT})."),
        click.option("--as-of", "as_of", default=None, expose_value=False, callback=_remember,
                     help="The analysis clock (ISO timestamp, UTC); default now."),
        click.option("--debug", is_flag=True, default=False, expose_value=False, callback=_remember,
                     help="Show tracebacks."),
        click.option("--no-progress", "no_progress", is_flag=True, default=False, expose_value=False,
                     callback=_remember, help="No progress bar."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _common() -> dict[str, Any]:
    """The options every command shares (given before or after the command)."""
    return click.get_current_context().find_root().meta.get(_COMMON, {})  # type: ignore[no-any-return]


def _emit(report: str, output: Path | None, summary: str) -> None:
    """A folder report (lint, verify) to `output` with its summary on the terminal, or whole to stdout."""
    if output:
        output.write_text(report if report.endswith("\n") else report + "\n", encoding="utf-8")
        click.echo(summary)
    else:
        click.echo(report.rstrip("\n"))


def load_config(path: Path | None) -> Config:
    """The config (pydantic's models load here, on first use: `lint` without --config never needs them)."""
    from pipeline.api import load_config as load

    return load(path)


def _lens() -> Lens:
    common = _common()
    config = load_config(common.get("config"))
    progress = not common.get("no_progress") and sys.stderr.isatty() and not os.environ.get("CI")
    return Lens(common.get("db") or os.environ.get("MIGRATE_LENS_DB") or DEFAULT_DB, config=config,
                out=common.get("out") or DEFAULT_OUT, as_of=_parse_as_of(common.get("as_of")), progress=progress)


def _stage(func: Callable[..., None]) -> Callable[..., None]:
    """Translate the error tree once: `Error: …` on stderr and its exit code; --debug re-raises."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        debug = _common().get("debug", False)
        try:
            func(*args, **kwargs)
        except LensError as e:
            if debug:
                raise
            click.echo(f"Error: {inert(str(e))}", err=True)
            sys.exit(e.exit_code)
        except KeyboardInterrupt:
            click.echo("Error: interrupted; nothing half-recorded (each source commits whole)", err=True)
            sys.exit(130)

    return wrapper


def _command(*args: Any, **kwargs: Any) -> Callable[[Callable[..., None]], click.Command]:
    """A subcommand with the common options, the error translation, and the Lens built from both."""

    def decorate(func: Callable[..., None]) -> click.Command:
        return main.command(*args, **kwargs)(_common_options(_stage(func)))

    return decorate


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="migrate-lens")
@_common_options
def main() -> None:
    """migrate-lens: history, baselines and findings from golang-migrate logs, in DuckDB."""


_format_option = click.option(
    "--format", "envelope", default=None, metavar="FORMAT",
    help=f"Force one envelope for every source instead of detecting it per file: {', '.join(ENVELOPES)}.",
)
_since_option = click.option(
    "--since", default=None, metavar="DATE",
    help="Leave out objects modified before DATE, and date partitions (dt=YYYY-MM-DD/, YYYY/MM/DD/) before it.",
)
_rules_option = click.option("--rules", "rules_path", type=click.Path(path_type=Path), default=None,
                             help="Alert rules file (TOML); default: the shipped rules.")
_dry_run_option = click.option("--dry-run", is_flag=True,
                               help="Write each e-mail (.eml) and channel request (.json) under --out/outbox/ and change no alert state.")
_week_option = click.option("--week", default=None, metavar="YYYY-Www",
                            help="The ISO week to review (default: the last complete week before --as-of).")


def _since(value: str | None) -> datetime | None:
    return None if value is None else _parse_as_of(value).replace(tzinfo=UTC)


@_command()
@click.argument("sources", nargs=-1, required=True)
@_format_option
@_since_option
def ingest(sources: tuple[str, ...], envelope: str | None, since: str | None) -> None:
    """Read log files, folders, globs or object-storage prefixes into the warehouse."""
    result = _lens().ingest(list(sources), envelope=envelope, since=_since(since))
    click.echo(result.summary())
    fail_on_unread(result)


@_command()
def analyze() -> None:
    """Rebuild per-script baselines, findings and rollback readiness as of --as-of."""
    click.echo(_lens().analyze().summary())


@_command()
@_week_option
def report(week: str | None) -> None:
    """Write the weekly HTML review and the index under --out/reports/."""
    click.echo(_lens().report(week=week).summary())


@_command()
@_rules_option
@_dry_run_option
def alert(rules_path: Path | None, dry_run: bool) -> None:
    """Evaluate alert rules over findings; send e-mail (or, with --dry-run, write .eml files)."""
    result = _lens().alert(rules=rules_path, dry_run=dry_run)
    click.echo(result.summary())
    fail_on_undelivered(result)


@_command()
@click.option("--match", "matchers", multiple=True, required=True, metavar="LABEL=GLOB",
              help="rule, kind, env, service, database or version; repeat for more (all must match).")
@click.option("--for", "duration", default=None, metavar="DURATION", help="How long from --as-of (30m, 4h, 7d).")
@click.option("--until", default=None, metavar="TIMESTAMP", help="When it expires (ISO, UTC).")
@click.option("--comment", required=True, help="Why.")
@click.option("--by", "created_by", default=lambda: os.environ.get("USER", "unknown"), help="Who (default $USER).")
def silence(matchers: tuple[str, ...], duration: str | None, until: str | None, comment: str, created_by: str) -> None:
    """Hold matching alerts back until the silence expires."""
    click.echo(_lens().silence(matchers=list(matchers), duration=duration, until=until, comment=comment,
                               created_by=created_by))


@_command()
@click.argument("name_or_sql", required=False)
@click.option("--param", "params", multiple=True, metavar="K=V", help="A query parameter (repeatable); always bound.")
@click.option("--format", "output_format", type=click.Choice(["table", "csv", "json", "parquet"]), default="table",
              show_default=True, help="Output format; parquet needs --output.")
@click.option("--output", type=click.Path(path_type=Path), default=None, help="Write to this file instead of stdout.")
@click.option("--list", "list_queries", is_flag=True, help="List the named queries and what they answer.")
def query(name_or_sql: str | None, params: tuple[str, ...], output_format: str, output: Path | None,
          list_queries: bool) -> None:
    """Run a named query from queries/ or ad-hoc SQL, read-only."""
    if list_queries:
        for q in named_queries().values():
            args = " ".join(f"[{p.name}={p.default}]" for p in q.params)
            click.echo(f"{q.name:<28} {q.answers}" + (f"  {args}" if args else ""))
        return
    if not name_or_sql:
        raise QueryError("give a query name or SQL (see `migrate-lens query --list`)")
    bound: dict[str, str] = {}
    for p in params:
        key, sep, value = p.partition("=")
        if not sep or not key:
            raise QueryError(f"--param {p}: use NAME=VALUE")
        bound[key] = value
    if output_format == "parquet" and output is None:
        raise QueryError("--format parquet writes a file: add --output FILE.parquet")
    frame = _lens().query(name_or_sql, bound)
    if output:
        write_frame(frame, output_format, output)
        click.echo(f"wrote {frame.height:,} rows to {output}", err=True)
    else:
        click.echo(render_frame(frame, output_format), nl=False)


@_command()
@click.option("--textfile", type=click.Path(path_type=Path), default=None, metavar="PATH",
              help="Write the exposition here atomically (node_exporter's textfile collector reads *.prom).")
@click.option("--push", "push_url", default=None, metavar="URL", help="Push it to this Pushgateway (job migrate_lens).")
def metrics(textfile: Path | None, push_url: str | None) -> None:
    """Prometheus metrics of the warehouse at --as-of: to stdout, a textfile, or a Pushgateway."""
    result = _lens().metrics(textfile=textfile, push_url=push_url)
    click.echo(result.summary() if textfile or push_url else result.text, nl=bool(textfile or push_url))


@_command()
@click.option("--parquet", "folder", type=click.Path(path_type=Path), required=True,
              help="Folder to write the relations to, Hive-partitioned by env and month where they have them.")
def export(folder: Path) -> None:
    """Export the SQL surface as Parquet that Trino, Spark or Athena read unchanged."""
    click.echo(_lens().export(folder).summary())


@_command(name="lint")
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("--format", "output_format", type=click.Choice(["text", "json", "sarif"]), default="text",
              show_default=True, help="text for people, json for scripts, SARIF for code-scanning UIs.")
@click.option("--fail-on", default="error", show_default=True, metavar="LEVEL",
              help="Exit 3 when an issue is at or above: error, warning, info, or never.")
@click.option("--multi-statement", is_flag=True, help="The DSN sets x-multi-statement=true (files are not one transaction).")
@click.option("--store", "service", default=None, metavar="SERVICE",
              help="Also store the issues in the warehouse (--db) under this service, to join with history.")
@click.option("--output", type=click.Path(path_type=Path), default=None, help="Write the report to this file.")
def lint_command(folder: Path, output_format: str, fail_on: str, multi_statement: bool, service: str | None,
                 output: Path | None) -> None:
    """Lint a golang-migrate folder with PostgreSQL's parser: rollback, idempotency, locks and rewrites."""
    path = _common().get("config")
    config = load_config(path) if path else None
    result = lint(folder, multi_statement=multi_statement, config=config)
    code = lint_exit_code(result, fail_on)  # a bad --fail-on is a usage error before anything is written
    _emit(render_lint(result, output_format), output, result.summary())
    if service:
        _lens().store_lint(result, service)
    if code:
        sys.exit(code)


class _VerifyProgress:
    """A line on stderr at most every 10 s and after the last version: a CI log shows a long verify moving."""

    EVERY_SECONDS = 10.0

    def __init__(self) -> None:
        self.started = self.shown = time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done == total or now - self.shown >= self.EVERY_SECONDS:
            self.shown = now
            click.echo(f"verify: {done}/{total} versions checked ({now - self.started:.0f} s)", err=True)


@_command(name="verify")
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("--database", default=None, metavar="URL", envvar="MIGRATE_LENS_VERIFY_DATABASE",
              help="A PostgreSQL URL of a role that may create databases (or $MIGRATE_LENS_VERIFY_DATABASE, which "
                   "keeps the password out of the process list); only scratch databases it creates are used. "
                   "Default: a throwaway cluster from the local PostgreSQL server binaries.")
@click.option("--format", "output_format", type=click.Choice(["text", "json", "junit"]), default="text",
              show_default=True, help="text for people, json for scripts, junit (XML) for CI test reports.")
@click.option("--output", type=click.Path(path_type=Path), default=None, help="Write the report to this file.")
@click.option("--store", "service", default=None, metavar="SERVICE",
              help="Also store the results in the warehouse (--db) under this service, for the readiness ledger.")
@click.option("--strict", is_flag=True, help="data_restored and idempotent_up failures count toward exit 3 too.")
@click.option("--allow-missing-down", is_flag=True, help="A version without a down file does not count toward exit 3.")
@click.option("--multi-statement", is_flag=True,
              help="Split files on `;` and run each statement alone, as the DSN option x-multi-statement=true does.")
@click.option("--seed-dir", type=click.Path(path_type=Path), default=None, metavar="DIR",
              help="Folder of {version}.sql files of rows applied after that version's up, for data_restored.")
def verify_command(folder: Path, database: str | None, output_format: str, output: Path | None, service: str | None,
                   strict: bool, allow_missing_down: bool, multi_statement: bool, seed_dir: Path | None) -> None:
    """Apply each version's up, down, up again and up twice on a real PostgreSQL; compare schema and data."""
    result = verify(folder, database=database, multi_statement=multi_statement, seed_dir=seed_dir, strict=strict,
                    allow_missing_down=allow_missing_down,
                    progress=None if _common().get("no_progress") else _VerifyProgress())
    _emit(render_verify(result, output_format), output, result.summary())
    if service:
        _lens().store_verify(result, service)
    if result.exit_code():
        sys.exit(result.exit_code())


@_command(name="wrap", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option("--env", default=None, help="env of this run (recorded in every event).")
@click.option("--service", default=None, help="service of this run.")
@click.option("--database", default=None, help="database of this run.")
@click.option("--events", type=click.Path(path_type=Path), default=None, envvar="MIGRATE_LENS_EVENTS",
              help="Events file to append to (default: migrate-lens-events.jsonl, or $MIGRATE_LENS_EVENTS).")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def wrap_command(env: str | None, service: str | None, database: str | None, events: Path | None,
                 command: tuple[str, ...]) -> None:
    """Run migrate (after `--`), pass its output through and append migrate-lens/v1 events; exits as migrate did."""
    result = wrap(list(command), events=events or Path("migrate-lens-events.jsonl"), env=env, service=service,
                      database=database)
    # A child killed by a signal exits like a shell reports it: 128 + the signal number.
    sys.exit(result.exit_code if result.exit_code >= 0 else 128 - result.exit_code)


@_command()
@click.argument("sources", nargs=-1, required=True)
@_format_option
@_rules_option
@_dry_run_option
@_since_option
@_week_option
@click.option("--fail-on", type=click.Choice(SEVERITIES), default=None,
              help="Exit 3 when an open finding is at or above this severity (after every stage ran).")
def run(sources: tuple[str, ...], envelope: str | None, rules_path: Path | None, dry_run: bool, week: str | None,
        since: str | None, fail_on: str | None) -> None:
    """The weekly job: ingest, analyze, report, alert, in that order."""
    result = _lens().run(list(sources), rules=rules_path, envelope=envelope, week=week, dry_run=dry_run,
                         since=_since(since))
    click.echo(result.summary())
    fail_on_unread(result.ingest)  # exit 1 (a fixable error) wins over 3
    fail_on_undelivered(result.alerts)
    code = result.exit_code(fail_on)
    if code:
        sys.exit(code)


@_command()
def upgrade() -> None:
    """Migrate a warehouse written by an older migrate-lens to this build's schema (keeps every row)."""
    click.echo(_lens().upgrade().summary())


@_command()
@click.option("--keep-days", type=click.FloatRange(min=0, min_open=True), default=None, metavar="DAYS",
              help="Keep raw lines this many days (default: [retention] keep_raw_days of the config).")
def prune(keep_days: float | None) -> None:
    """Apply the retention policy: remove old raw lines and rejects, keep events, runs and findings; compact."""
    click.echo(_lens().prune(keep_days=keep_days).summary())

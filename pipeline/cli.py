"""The `migrate-lens` command: opens the warehouse, calls one stage, prints one line."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps
from pathlib import Path
from typing import Any

import click

from . import __version__
from .config import Config, load_config
from .envelopes import ENVELOPES
from .errors import LensError

DEFAULT_DB = "migrate-lens.duckdb"


class Context:
    """What every command needs: the options common to all of them."""

    def __init__(self, db: str, config: Config, out: Path, as_of: datetime, debug: bool, progress: bool):
        self.db = db
        self.config = config
        self.out = out
        self.as_of = as_of
        self.debug = debug
        self.progress = progress

    def connect(self, *, read_only: bool = False):
        from .warehouse import connect

        return connect(self.db, read_only=read_only, settings=self.config.warehouse)


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


def _stage(func: Callable[..., None]) -> Callable[..., None]:
    """Translate the error tree once: `Error: …` on stderr and exit 1 (2 for usage); --debug re-raises."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        ctx: Context = click.get_current_context().obj
        try:
            func(*args, **kwargs)
        except LensError as e:
            if ctx.debug:
                raise
            click.echo(f"Error: {e}", err=True)
            sys.exit(e.exit_code)
        except KeyboardInterrupt:
            click.echo("Error: interrupted; nothing half-recorded (each source commits whole)", err=True)
            sys.exit(130)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="migrate-lens")
@click.option("--db", envvar="MIGRATE_LENS_DB", default=DEFAULT_DB, show_default=True,
              help="The DuckDB warehouse file (or $MIGRATE_LENS_DB).")
@click.option("--config", "config_path", type=click.Path(path_type=Path), default=None,
              help="TOML config file.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("migrate-lens-out"), show_default=True,
              help="Where reports and the outbox go.")
@click.option("--as-of", "as_of", default=None, help="The analysis clock (ISO timestamp, UTC); default now.")
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@click.pass_context
def main(ctx: click.Context, db: str, config_path: Path | None, out: Path, as_of: str | None, debug: bool,
         no_progress: bool) -> None:
    """migrate-lens: history, baselines and findings from golang-migrate logs, in DuckDB."""
    try:
        config = load_config(config_path)
    except LensError as e:
        if debug:
            raise
        click.echo(f"Error: {e}", err=True)
        sys.exit(1)
    progress = not no_progress and sys.stderr.isatty() and not os.environ.get("CI")
    ctx.obj = Context(db, config, out, _parse_as_of(as_of), debug, progress)


_format_option = click.option(
    "--format", "envelope", default=None, metavar="FORMAT",
    help=f"Force one envelope for every source instead of detecting it per file: {', '.join(ENVELOPES)}.",
)


_since_option = click.option(
    "--since", default=None, metavar="DATE",
    help="Leave out objects modified before DATE, and date partitions (dt=YYYY-MM-DD/, YYYY/MM/DD/) before it.",
)


def _since(value: str | None) -> datetime | None:
    if value is None:
        return None
    parsed = _parse_as_of(value)
    return parsed.replace(tzinfo=UTC)


def _fail_on_unread(failed: tuple[str, ...]) -> None:
    from .errors import SourceError

    if failed:
        more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        raise SourceError(f"{failed[0]}{more}; every other source was ingested, and these are retried on the next run")


@main.command()
@click.argument("sources", nargs=-1, required=True)
@_format_option
@_since_option
@click.pass_obj
@_stage
def ingest(obj: Context, sources: tuple[str, ...], envelope: str | None, since: str | None) -> None:
    """Read log files, folders, globs or object-storage prefixes into the warehouse."""
    from .ingest import ingest as run_ingest

    con = obj.connect()
    try:
        result = run_ingest(con, list(sources), config=obj.config, envelope=envelope, progress=obj.progress,
                            since=_since(since))
    finally:
        con.close()
    click.echo(result.summary())
    _fail_on_unread(result.failed)


@main.command()
@click.pass_obj
@_stage
def analyze(obj: Context) -> None:
    """Rebuild per-script baselines, findings and rollback readiness as of --as-of."""
    from .analyze import analyze as run_analyze

    con = obj.connect()
    try:
        result = run_analyze(con, config=obj.config, as_of=obj.as_of)
    finally:
        con.close()
    click.echo(result.summary())


@main.command()
@click.option("--week", default=None, metavar="YYYY-Www",
              help="The ISO week to review (default: the last complete week before --as-of).")
@click.pass_obj
@_stage
def report(obj: Context, week: str | None) -> None:
    """Write the weekly HTML review and the index under --out/reports/."""
    from .report import report as run_report

    con = obj.connect()
    try:
        result = run_report(con, config=obj.config, as_of=obj.as_of, out=obj.out, week=week)
    finally:
        con.close()
    click.echo(result.summary())


_rules_option = click.option("--rules", "rules_path", type=click.Path(path_type=Path), default=None,
                             help="Alert rules file (TOML); default: the shipped rules.")
_dry_run_option = click.option("--dry-run", is_flag=True,
                               help="Write each e-mail as an .eml file under --out/outbox/ and change no alert state.")


@main.command()
@_rules_option
@_dry_run_option
@click.pass_obj
@_stage
def alert(obj: Context, rules_path: Path | None, dry_run: bool) -> None:
    """Evaluate alert rules over findings; send e-mail (or, with --dry-run, write .eml files)."""
    from .alerts import alert as run_alert
    from .alerts import load_rules

    rules = load_rules(rules_path)
    con = obj.connect()
    try:
        result = run_alert(con, rules=rules, as_of=obj.as_of, out=obj.out, dry_run=dry_run)
    finally:
        con.close()
    click.echo(result.summary())


@main.command()
@click.option("--match", "matchers", multiple=True, required=True, metavar="LABEL=GLOB",
              help="rule, kind, env, service, database or version; repeat for more (all must match).")
@click.option("--for", "duration", default=None, metavar="DURATION", help="How long from --as-of (30m, 4h, 7d).")
@click.option("--until", default=None, metavar="TIMESTAMP", help="When it expires (ISO, UTC).")
@click.option("--comment", required=True, help="Why.")
@click.option("--by", "created_by", default=lambda: os.environ.get("USER", "unknown"), help="Who (default $USER).")
@click.pass_obj
@_stage
def silence(obj: Context, matchers: tuple[str, ...], duration: str | None, until: str | None, comment: str,
            created_by: str) -> None:
    """Hold matching alerts back until the silence expires."""
    from .alerts import add_silence

    con = obj.connect()
    try:
        result = add_silence(con, matchers=list(matchers), duration=duration, until=until, comment=comment,
                             created_by=created_by, now=obj.as_of)
    finally:
        con.close()
    click.echo(result)


@main.command()
@click.argument("name_or_sql", required=False)
@click.option("--param", "params", multiple=True, metavar="K=V", help="A query parameter (repeatable); always bound.")
@click.option("--format", "output_format", type=click.Choice(["table", "csv", "json", "parquet"]), default="table",
              show_default=True, help="Output format; parquet needs --output.")
@click.option("--output", type=click.Path(path_type=Path), default=None, help="Write to this file instead of stdout.")
@click.option("--list", "list_queries", is_flag=True, help="List the named queries and what they answer.")
@click.pass_obj
@_stage
def query(obj: Context, name_or_sql: str | None, params: tuple[str, ...], output_format: str, output: Path | None,
          list_queries: bool) -> None:
    """Run a named query from queries/ or ad-hoc SQL, read-only."""
    from .errors import QueryError
    from .query import named_queries, run_query

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
    con = obj.connect(read_only=True)
    try:
        frame = run_query(con, name_or_sql, bound)
    finally:
        con.close()
    _emit(frame, output_format, output)


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _inert(text: str) -> str:
    """Text from logs, safe for a terminal: control characters (ESC sequences included) shown, not obeyed."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _emit(frame: Any, output_format: str, output: Path | None) -> None:
    """Write a query result as a table, CSV, JSON or Parquet, to stdout or a file."""
    from rich.console import Console
    from rich.table import Table

    if output_format == "parquet":
        frame.write_parquet(output)
        click.echo(f"wrote {frame.height:,} rows to {output}", err=True)
        return
    if output_format == "csv":
        text = frame.write_csv()
    elif output_format == "json":
        text = frame.write_json() + "\n"
    else:
        table = Table(*(_inert(c) for c in frame.columns), show_lines=False)
        for row in frame.iter_rows():
            table.add_row(*("" if v is None else _inert(str(v)) for v in row))
        console = Console(width=max(80, min(250, 20 * len(frame.columns))), record=True, markup=False,
                          file=open(os.devnull, "w"))  # noqa: SIM115 - rendered to text below
        console.print(table)
        text = console.export_text() + f"({frame.height:,} row{'s' if frame.height != 1 else ''})\n"
    if output:
        output.write_text(text, encoding="utf-8")
        click.echo(f"wrote {frame.height:,} rows to {output}", err=True)
    else:
        click.echo(text, nl=False)


@main.command()
@click.option("--parquet", "folder", type=click.Path(path_type=Path), required=True,
              help="Folder to write the relations to, Hive-partitioned by env and month where they have them.")
@click.pass_obj
@_stage
def export(obj: Context, folder: Path) -> None:
    """Export the SQL surface as Parquet that Trino, Spark or Athena read unchanged."""
    from .query import export_parquet

    con = obj.connect(read_only=True)
    try:
        result = export_parquet(con, folder)
    finally:
        con.close()
    click.echo(result.summary())


@main.command(name="lint")
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("--format", "output_format", type=click.Choice(["text", "json", "sarif"]), default="text",
              show_default=True, help="text for people, json for scripts, SARIF for code-scanning UIs.")
@click.option("--fail-on", default="error", show_default=True, metavar="LEVEL",
              help="Exit 1 when an issue is at or above: error, warning, info, or never.")
@click.option("--multi-statement", is_flag=True, help="The DSN sets x-multi-statement=true (files are not one transaction).")
@click.option("--store", "service", default=None, metavar="SERVICE",
              help="Also store the issues in the warehouse (--db) under this service, to join with history.")
@click.option("--output", type=click.Path(path_type=Path), default=None, help="Write the report to this file.")
@click.pass_obj
@_stage
def lint_command(obj: Context, folder: Path, output_format: str, fail_on: str, multi_statement: bool,
                 service: str | None, output: Path | None) -> None:
    """Lint a golang-migrate folder: missing downs, duplicates, non-idempotent DDL, CONCURRENTLY in a transaction."""
    from . import lint as linting

    result = linting.lint(folder, multi_statement=multi_statement)
    text = {"text": linting.to_text, "json": linting.to_json, "sarif": linting.to_sarif}[output_format](result)
    if output:
        output.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
        click.echo(result.summary())
    else:
        click.echo(text.rstrip("\n"))
    if service:
        con = obj.connect()
        try:
            linting.store(con, result, service)
        finally:
            con.close()
    code = linting.exit_code(result, fail_on)
    if code:
        sys.exit(code)


@main.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option("--env", default=None, help="env of this run (recorded in every event).")
@click.option("--service", default=None, help="service of this run.")
@click.option("--database", default=None, help="database of this run.")
@click.option("--events", type=click.Path(path_type=Path), default=None, envvar="MIGRATE_LENS_EVENTS",
              help="Events file to append to (default: migrate-lens-events.jsonl, or $MIGRATE_LENS_EVENTS).")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.pass_obj
@_stage
def wrap(obj: Context, env: str | None, service: str | None, database: str | None, events: Path | None,
         command: tuple[str, ...]) -> None:
    """Run migrate (after `--`), pass its output through and append migrate-lens/v1 events; exits as migrate did."""
    from .wrap import wrap as run_wrap

    result = run_wrap(list(command), events=events or Path("migrate-lens-events.jsonl"), env=env, service=service,
                      database=database)
    # A child killed by a signal exits like a shell reports it: 128 + the signal number.
    sys.exit(result.exit_code if result.exit_code >= 0 else 128 - result.exit_code)


@main.command()
@click.argument("sources", nargs=-1, required=True)
@_format_option
@_rules_option
@_dry_run_option
@_since_option
@click.option("--week", default=None, metavar="YYYY-Www", help="The ISO week to review (default: the last complete one).")
@click.pass_obj
@_stage
def run(obj: Context, sources: tuple[str, ...], envelope: str | None, rules_path: Path | None, dry_run: bool,
        week: str | None, since: str | None) -> None:
    """The weekly job: ingest, analyze, report, alert, in that order."""
    from .job import weekly_job

    result = weekly_job(obj, list(sources), envelope=envelope, week=week, rules_path=rules_path, dry_run=dry_run,
                        since=_since(since))
    click.echo(result.summary())
    _fail_on_unread(result.ingest.failed)

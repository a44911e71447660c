"""Stage 1, ingest: shipped migrate logs into `log_lines` and `rejects`; changed streams queued for parse.

Every record of every source ends in `log_lines` or in `rejects` with a reason. A source whose fingerprint
is already recorded is skipped; a changed source is re-read whole, its old rows replaced.

Crash safety without one long transaction per source (which would pin every batch in memory until the
commit): a source is listed in `pending_sources` while it loads and in `ingested_sources` only once all
of it is stored; the next ingest removes the rows of any load still pending. Streams whose lines changed
wait in `pending_streams` until their events and runs are rebuilt, so a failed rebuild is redone.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb
import pyarrow as pa
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from pipeline.core.assets import sql_text
from pipeline.core.config import Config
from pipeline.core.errors import SourceError, WarehouseError
from pipeline.core.redact import redact
from pipeline.core.vocabulary import ENVELOPES
from pipeline.ingest import envelopes
from pipeline.ingest.batches import Batch, Reject, cloudwatch_batches, plain_batches, unrecognised_batches
from pipeline.ingest.sources import ReadOutcome, Source, discover
from pipeline.warehouse import execute, one, scalar, statements, transaction


@dataclass(frozen=True)
class IngestResult:
    """What one ingest did."""

    sources: int  # read this time
    skipped: int  # unchanged since a previous ingest
    lines: int  # records read (accepted + rejected)
    stored: int  # rows now in log_lines from the sources read
    rejected: int
    duplicates: int  # accepted records already stored from another source
    damaged: int  # sources with a truncated or corrupt compressed stream
    failed: tuple[str, ...] = ()  # sources that could not be read; retried on the next run
    events: int = 0  # events and runs rebuilt for the streams this ingest touched (the parse stage, via the API)
    runs: int = 0

    def summary(self) -> str:
        parts = [
            f"ingested {self.sources:,} source{'s' if self.sources != 1 else ''}",
            f"skipped {self.skipped:,} unchanged",
            (f"{self.lines:,} lines ({self.stored:,} new, {self.duplicates:,} duplicate, "
            f"{self.rejected:,} rejected)"),
            f"{self.events:,} migrate events in {self.runs:,} runs rebuilt",
        ]
        if self.damaged:
            parts.append(f"{self.damaged} damaged source{'s' if self.damaged != 1 else ''} "
                         "(see ingested_sources.damage)")
        if self.failed:
            parts.append(f"{len(self.failed)} could not be read and will be retried next run")
        return "; ".join(parts)


def _file_stream(src: Source) -> str:
    # Docker rotates `<id>-json.log` into `<id>-json.log.1`…: one container, one stream.
    base = re.sub(r"\.(gz|zst)$", "", src.uri)
    base = re.sub(r"(\.log)\.\d+$", r"\1", base)
    return "file:" + base


class _SourceLoader:
    """Loads the batches of one source, each batch in its own short transaction."""

    def __init__(self, con: duckdb.DuckDBPyConnection, config: Config, load_id: str) -> None:
        self.con = con
        self.config = config
        self.load_id = load_id
        self.store = statements("ingest/store_batch")

    def params(self, src: Source, carry_ts: datetime | None, carry_origin: str | None) -> dict[str, object]:
        hive = src.hive_labels()
        cfg = self.config.ingest
        return {
            "source_uri": src.display_uri,
            "load_id": self.load_id,
            "file_stream": _file_stream(src),
            "path_env": hive.get("env") or hive.get("environment"),
            "path_service": hive.get("service") or hive.get("service_name") or hive.get("app"),
            "path_database": hive.get("database") or hive.get("db") or hive.get("tenant"),
            "default_env": cfg.default_env,
            "default_service": cfg.default_service,
            "default_database": cfg.default_database,
            "tz": cfg.verbose_timezone,
            "mtime": (src.modified or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None),
            "carry_ts": carry_ts,
            "carry_origin": carry_origin,
        }

    def _reject(self, src: Source, rows: list[Reject]) -> None:
        table = pa.table({"line_no": pa.array([r[0] for r in rows], pa.int64()),
                          "reason": pa.array([r[1] for r in rows], pa.string()),
                          "raw": pa.array([r[2] for r in rows], pa.string())})
        self.con.register("py_rejects", table)
        try:
            execute(self.con, "INSERT INTO rejects SELECT $source_uri, line_no, reason, left(redact(raw), 4096), "
                              "$load_id FROM py_rejects", {"source_uri": src.display_uri, "load_id": self.load_id})
        finally:
            self.con.unregister("py_rejects")

    def load(self, src: Source, envelope: str, batches: Iterator[Batch]) -> tuple[int, int]:
        """Store every batch; returns (records read, records rejected)."""
        stage = sql_text("ingest/stage").replace("{envelope}", envelopes.envelope_sql(envelope))
        json_type = ("CASE WHEN NOT json_valid(line) THEN 'INVALID' WHEN starts_with(ltrim(line), '{') THEN 'OBJECT' "
                     "WHEN starts_with(ltrim(line), '[') THEN 'ARRAY' ELSE 'SCALAR' END"
                     if envelope in envelopes.JSON_ENVELOPES else "NULL::VARCHAR")
        typed = f"CREATE OR REPLACE TEMP VIEW typed_batch AS SELECT line_no, line AS raw, {json_type} AS jtype FROM batch"
        carry_ts, carry_origin = None, None
        lines = rejected = 0
        for batch in batches:
            lines += batch.table.num_rows + len(batch.rejects)
            rejected += len(batch.rejects)
            try:
                with transaction(self.con):
                    if batch.rejects:
                        self._reject(src, batch.rejects)
                    if batch.table.num_rows:
                        self.con.register("batch", batch.table)
                        self.con.execute(typed)
                        params = self.params(src, carry_ts, carry_origin)
                        execute(self.con, stage, params)
                        for statement in self.store:
                            execute(self.con, statement, params)
                        rejected += scalar(self.con, "SELECT count(*) FROM staged WHERE reason IS NOT NULL")
                        if envelope == "text":  # a line without its own time takes the last one before it
                            last = one(self.con, "SELECT ts, ts_origin FROM staged ORDER BY line_no DESC LIMIT 1")
                            carry_ts, carry_origin = last if last else (carry_ts, carry_origin)
            finally:
                if batch.table.num_rows:
                    self.con.unregister("batch")
        return lines, rejected


def _recover(con: duckdb.DuckDBPyConnection) -> None:
    """Remove the rows of loads that never finished (a killed ingest) and queue their streams."""
    if not scalar(con, "SELECT count(*) FROM pending_sources"):
        return
    with transaction(con):
        for statement in statements("ingest/recover"):
            con.execute(statement)


@dataclass(frozen=True)
class _Loaded:
    read: int
    rejected: int
    stored: int
    duplicates: int
    damaged: bool


def _load_source(con: duckdb.DuckDBPyConnection, loader: _SourceLoader, src: Source, fingerprint: str,
                 kind: str, config: Config) -> _Loaded:
    """One source, start to finish: forget its old state, load it in batches, then mark it ingested."""
    load_id = loader.load_id
    outcome = ReadOutcome()
    with transaction(con):
        for statement in statements("ingest/forget_source"):
            execute(con, statement, {"source_uri": src.display_uri, "load_id": load_id})
    reader = {"unknown": unrecognised_batches, "cloudwatch": cloudwatch_batches}.get(kind, plain_batches)
    read, refused = loader.load(src, "docker" if kind == "unknown" else kind,
                                reader(src, outcome, config.ingest.batch_lines))
    with transaction(con):
        for statement in statements("ingest/finish_source"):
            execute(con, statement, {"source_uri": src.display_uri, "size_bytes": src.size, "fingerprint": fingerprint,
                                     "format": kind, "lines": read, "rejected": refused, "damage": outcome.damage,
                                     "load_id": load_id})
    new, dup = one(con, "SELECT (SELECT count(*) FROM log_lines WHERE source_uri = $s AND load_id = $l), "
                        "(SELECT duplicates FROM ingested_sources WHERE source_uri = $s)",
                   {"s": src.display_uri, "l": load_id})
    return _Loaded(read, refused, new, dup, outcome.damage is not None)


# Reading an object can fail for a moment (a reset connection, a throttled request): try again, from scratch.
READ_ATTEMPTS = 3
BACKOFF_SECONDS = 0.5


def _with_retries(con: duckdb.DuckDBPyConnection, loader: _SourceLoader, src: Source, fingerprint: str,
                  kind: str, config: Config) -> _Loaded:
    for attempt in range(1, READ_ATTEMPTS + 1):
        try:
            return _load_source(con, loader, src, fingerprint, kind, config)
        except duckdb.Error as e:
            raise WarehouseError(f"{src.display_uri}: the warehouse refused the load: {str(e).splitlines()[0]} "
                                 "(re-run ingest; --debug for details)") from e
        except (OSError, SourceError) as e:
            _recover(con)  # nothing half-recorded: drop what this attempt stored
            transient = not isinstance(e, (SourceError, PermissionError, FileNotFoundError))
            if not transient or attempt == READ_ATTEMPTS:
                raise
            time.sleep(BACKOFF_SECONDS * 2 ** (attempt - 1))
    raise AssertionError("unreachable")


def ingest(
    con: duckdb.DuckDBPyConnection,
    specs: list[str],
    *,
    config: Config,
    envelope: str | None = None,
    progress: bool = True,
    since: datetime | None = None,
) -> IngestResult:
    """Read every source in `specs` into `log_lines` and `rejects`; queue the streams that changed for parse.

    A source that cannot be read (after retries) is left out and named in `failed`; it is not marked
    ingested, so the next run tries it again, and every other source is still loaded.
    """
    forced = envelope or (None if config.ingest.format == "auto" else config.ingest.format)
    if forced is not None and forced not in ENVELOPES:
        raise SourceError(f"--format {forced}: unknown format (use one of: {', '.join(ENVELOPES)})")
    discovery = discover(specs, since=since)
    sources = discovery.sources
    _recover(con)
    load_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ-") + secrets.token_hex(3)
    loader = _SourceLoader(con, config, load_id)
    done = skipped = lines = rejected = stored = duplicates = damaged = 0
    failed: list[str] = list(discovery.unreadable)
    with Progress(TextColumn("[bold]ingest[/] {task.description}"), BarColumn(), DownloadColumn(),
                  TimeRemainingColumn(), disable=not progress, transient=True) as bar:
        task = bar.add_task("", total=sum(s.size for s in sources) or 1)
        for src in sources:
            bar.update(task, description=src.display_uri[-60:])
            try:
                fingerprint = src.fingerprint()
                known = one(con, "SELECT fingerprint FROM ingested_sources WHERE source_uri = ?", [src.display_uri])
                if known and known[0] == fingerprint:
                    skipped += 1
                    bar.advance(task, src.size)
                    continue
                kind = forced or envelopes.detect(src.head())
                loaded = _with_retries(con, loader, src, fingerprint, kind, config)
            except (OSError, SourceError) as e:
                message = str(e) if isinstance(e, SourceError) else f"{src.display_uri}: {type(e).__name__}: {e}"
                failed.append(redact(message.splitlines()[0] if message else src.display_uri))
                bar.advance(task, src.size)
                continue
            done += 1
            lines += loaded.read
            rejected += loaded.rejected
            stored += loaded.stored
            duplicates += loaded.duplicates
            damaged += loaded.damaged
            bar.advance(task, src.size)
    return IngestResult(done, skipped, lines, stored, rejected, duplicates, damaged, tuple(failed))

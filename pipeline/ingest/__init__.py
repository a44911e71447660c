"""Stage 1, ingest: shipped migrate logs into `log_lines` and `rejects`; changed streams queued for parse.

Every record of every source ends in `log_lines` or in `rejects` with a reason. A source whose fingerprint
is already recorded is skipped (every fingerprint is looked up in one query); a changed source is re-read
whole, its old rows replaced.

Fleets ship thousands of small files (one short log per pod, job or CI run): small sources are read whole
into memory, a source that cannot be read is left out, and the rest are stored in groups, one transaction
per group (`loader.Loader.load_group`), which a kill undoes whole. A large source is stored batch by batch
instead, so memory stays bounded whatever its size; crash safety without one long transaction (which would
pin every batch in memory until the commit): it is listed in `pending_sources` while it loads and in
`ingested_sources` only once all of it is stored; the next ingest removes the rows of any load still
pending. Streams whose lines changed wait in `pending_streams` until their events and runs are rebuilt, so
a failed rebuild is redone.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb
import pyarrow as pa
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from pipeline.core.config import Config
from pipeline.core.errors import LensError, SourceError, WarehouseError
from pipeline.core.redact import redact
from pipeline.core.vocabulary import ENVELOPES
from pipeline.ingest import envelopes, logs_api
from pipeline.ingest.batches import EMPTY as _EMPTY
from pipeline.ingest.batches import Batch, Pieces, reader
from pipeline.ingest.loader import Loader, Member, Stored
from pipeline.ingest.sources import ReadOutcome, Source, discover, read_lines
from pipeline.warehouse import scalar, statements, transaction


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



def _recover(con: duckdb.DuckDBPyConnection) -> None:
    """Remove the rows of loads that never finished (a killed ingest) and queue their streams."""
    if not scalar(con, "SELECT count(*) FROM pending_sources"):
        return
    with transaction(con):
        for statement in statements("ingest/recover"):
            con.execute(statement)


def _failure(src: Source, e: Exception) -> str:
    message = str(e) if isinstance(e, SourceError) else f"{src.display_uri}: {type(e).__name__}: {e}"
    return redact(message.splitlines()[0] if message else src.display_uri)


def _lookup(con: duckdb.DuckDBPyConnection, prints: dict[str, str]) -> tuple[set[str], set[str]]:
    """(sources whose fingerprint is recorded: unchanged, changed sources with rows of an earlier load), in
    one query each, however many sources there are."""
    con.register("candidates", pa.table({"source_uri": pa.array(list(prints), pa.string()),
                                         "fingerprint": pa.array(list(prints.values()), pa.string())}))
    try:
        unchanged = {u for (u,) in con.execute(
            "SELECT c.source_uri FROM candidates c JOIN ingested_sources i "
            "ON i.source_uri = c.source_uri AND i.fingerprint = c.fingerprint").fetchall()}
        had_rows = {u for (u,) in con.execute(
            "SELECT DISTINCT source_uri FROM log_lines WHERE source_uri IN (SELECT source_uri FROM candidates) "
            "UNION SELECT DISTINCT source_uri FROM rejects WHERE source_uri IN (SELECT source_uri FROM candidates)"
        ).fetchall()} if len(unchanged) < len(prints) else set()
    finally:
        con.unregister("candidates")
    return unchanged, had_rows - unchanged


# Reading an object can fail for a moment (a reset connection, a throttled request): try again, from scratch.
READ_ATTEMPTS = 3
BACKOFF_SECONDS = 0.5


def _retrying(src: Source, attempt_once: Callable[[], object], on_failure: Callable[[], None]) -> object:
    for attempt in range(1, READ_ATTEMPTS + 1):
        try:
            return attempt_once()
        except duckdb.Error as e:
            raise WarehouseError(f"{src.display_uri}: the warehouse refused the load: {str(e).splitlines()[0]} "
                                 "(re-run ingest; --debug for details)") from e
        except (OSError, SourceError) as e:
            on_failure()
            transient = not isinstance(e, (SourceError, PermissionError, FileNotFoundError))
            if not transient or attempt == READ_ATTEMPTS:
                raise
            time.sleep(BACKOFF_SECONDS * 2 ** (attempt - 1))
    raise AssertionError("unreachable")


def _read_whole(src: Source) -> tuple[list[tuple[bytes, bool]], ReadOutcome]:
    """All of a small source, decompressed, as read_lines pieces (retried like any read)."""
    def once() -> tuple[list[tuple[bytes, bool]], ReadOutcome]:
        outcome = ReadOutcome()
        return list(read_lines(src, outcome)), outcome
    return _retrying(src, once, lambda: None)  # type: ignore[return-value]


def _head(pieces: Pieces) -> bytes:
    head = b""
    for block, _ in pieces:
        head += block[: 262144 - len(head)]
        if len(head) >= 262144:
            break
    return head


class _Groups:
    """Small sources waiting to be stored, one group per envelope (the staging SQL is per envelope)."""

    def __init__(self, loader: Loader, config: Config) -> None:
        self.loader = loader
        self.lines = config.ingest.group_lines
        self.sources = config.ingest.group_sources
        self.waiting: dict[str, list[tuple[Member, Batch]]] = {}
        self.records: dict[str, int] = {}
        self.done = Stored()

    def add(self, member: Member, batch: Batch) -> None:
        env = member.envelope
        if self.records.get(env, 0) + batch.records > self.lines:
            self.flush(env)
        self.waiting.setdefault(env, []).append((member, batch))
        self.records[env] = self.records.get(env, 0) + batch.records
        if len(self.waiting[env]) >= self.sources:
            self.flush(env)

    def flush(self, envelope: str | None = None) -> None:
        for env in [envelope] if envelope else list(self.waiting):
            group = self.waiting.pop(env, [])
            self.records.pop(env, None)
            if group:
                try:
                    self.done += self.loader.load_group(group)
                except duckdb.Error as e:
                    raise WarehouseError(f"{group[0][0].src.display_uri} and {len(group) - 1} more: the warehouse "
                                         f"refused the load: {str(e).splitlines()[0]} (re-run ingest; --debug for "
                                         "details)") from e


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
    discovery = discover([s for s in specs if not s.startswith(logs_api.PREFIX)], since=since)
    _recover(con)
    pulled = _pull([s for s in specs if s.startswith(logs_api.PREFIX)], con, config, since)
    sources = discovery.sources + pulled.sources
    load_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ-") + secrets.token_hex(3)
    loader = Loader(con, config, load_id)
    groups = _Groups(loader, config)
    large = Stored()
    failed: list[str] = list(discovery.unreadable) + pulled.failed
    prints: dict[str, str] = {}
    readable: list[Source] = []
    for src in sources:
        try:
            prints[src.display_uri] = src.fingerprint()
            readable.append(src)
        except (OSError, SourceError) as e:
            failed.append(_failure(src, e))
    unchanged, had_rows = _lookup(con, prints) if prints else (set(), set())
    small_bytes, batch_lines = config.ingest.group_source_bytes, config.ingest.batch_lines
    with Progress(TextColumn("[bold]ingest[/] {task.description}"), BarColumn(), DownloadColumn(),
                  TimeRemainingColumn(), disable=not progress, transient=True) as bar:
        task = bar.add_task("", total=sum(s.size for s in readable) or 1)
        for src in readable:
            if src.display_uri in unchanged:
                bar.advance(task, src.size)
                continue
            bar.update(task, description=src.display_uri[-60:])
            member = Member(src, prints[src.display_uri], "", src.display_uri in had_rows)
            try:
                if src.size <= small_bytes:
                    pieces, outcome = _read_whole(src)
                    member.kind = src.envelope or forced or envelopes.detect(_head(pieces))
                    member.damage = outcome.damage
                    batch = next(reader(member.kind)(pieces, outcome, 1 << 62), Batch(_EMPTY.empty_table()))
                    if batch.records <= batch_lines:
                        groups.add(member, batch)
                    else:  # few bytes, many records (well compressed): batch by batch after all
                        large += loader.load_large(member, reader(member.kind)(pieces, outcome, batch_lines), outcome)
                else:
                    member.kind = src.envelope or forced or envelopes.detect(src.head())
                    large += _load_large(con, loader, member, batch_lines)
            except (OSError, SourceError) as e:
                failed.append(_failure(src, e))
            except LensError:
                raise
            except Exception as e:  # noqa: BLE001 - one source's surprise must not stop the others, now or later
                _recover(con)  # nothing half-recorded from it; it is named in `failed` and read again next run
                failed.append(_failure(src, e))
            bar.advance(task, src.size)
        groups.flush()
    done = groups.done + large
    return IngestResult(done.sources, len(unchanged) + pulled.skipped, done.lines, done.stored, done.rejected, done.duplicates,
                        done.damaged, tuple(failed))


def _pull(specs: list[str], con: duckdb.DuckDBPyConnection, config: Config, since: datetime | None) -> logs_api.Pull:
    """The new events of each `cloudwatch://` source, one source per stream with something new."""
    out = logs_api.Pull()
    state = logs_api.known(con) if specs else {}
    for spec in specs:
        got = logs_api.pull(spec, state, since=since, lookback_ms=int(config.ingest.cloudwatch_lookback_seconds * 1000))
        out.sources += got.sources
        out.skipped += got.skipped
        out.failed += got.failed
    return out


def _load_large(con: duckdb.DuckDBPyConnection, loader: Loader, member: Member, batch_lines: int) -> Stored:
    """A large source streamed batch by batch; a failed read drops what it stored and starts again."""
    def once() -> Stored:
        outcome = ReadOutcome()
        member.read = member.refused = 0
        member.carry = (None, None)
        return loader.load_large(member, reader(member.kind)(read_lines(member.src, outcome), outcome, batch_lines),
                                 outcome)
    return _retrying(member.src, once, lambda: _recover(con))  # type: ignore[return-value]

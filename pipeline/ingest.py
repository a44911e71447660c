"""Stage 1, ingest: shipped migrate logs into `log_lines` and `rejects`, then events and runs rebuilt.

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
from dataclasses import dataclass, field
from datetime import UTC, datetime

import duckdb
import numpy as np
import pyarrow as pa
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from . import envelopes, events, runs
from .config import Config
from .errors import SourceError, WarehouseError
from .redact import redact, redact_fragment
from .sources import ReadOutcome, Source, discover, read_lines
from .warehouse import execute, one, scalar, sql_text, statements

Reject = tuple[int, str, str]  # line_no, reason, raw


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
    runs: int  # runs rebuilt for the streams this ingest touched
    events: int
    failed: tuple[str, ...] = ()  # sources that could not be read; retried on the next run

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


@dataclass
class _Batch:
    """Lines ready for SQL (Arrow, one chunk per read block) and the records refused before SQL."""

    table: pa.Table
    rejects: list[Reject] = field(default_factory=list)


_EMPTY = pa.schema([("line_no", pa.int64()), ("line", pa.large_string())])


def _file_stream(src: Source) -> str:
    # Docker rotates `<id>-json.log` into `<id>-json.log.1`…: one container, one stream.
    base = re.sub(r"\.(gz|zst)$", "", src.uri)
    base = re.sub(r"(\.log)\.\d+$", r"\1", base)
    return "file:" + base


def _block_lines(block: bytes, first_line_no: int) -> tuple[pa.Array, pa.Array, list[Reject]]:
    """One read block (whole lines) as Arrow (line_no, line) without line ends, zero-copy where it can.

    Newlines and the `\\r` of CRLF are cut out with numpy so SQL never trims 700-byte records one by one;
    Arrow checks UTF-8 in bulk, and only a block that fails is split line by line to reject the bad ones.
    """
    buf = np.frombuffer(block, dtype=np.uint8)
    nl = np.flatnonzero(buf == 10)
    if len(block) and (len(nl) == 0 or nl[-1] != len(block) - 1):
        nl = np.append(nl, len(block))  # a last line without a newline (end of file)
        buf = np.append(buf, np.uint8(10))
    n = len(nl)
    has_cr = np.zeros(n, dtype=bool)
    inner = nl > 0
    has_cr[inner] = buf[nl[inner] - 1] == 13
    keep = np.ones(len(buf), dtype=bool)
    keep[nl] = False
    keep[nl[has_cr] - 1] = False
    data = buf[keep] if n else buf[:0]
    ends = nl - np.arange(n) - np.cumsum(has_cr)
    offsets = np.zeros(n + 1, dtype=np.int64)
    offsets[1:] = ends
    lines = pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data.tobytes()))
    numbers = pa.array(np.arange(first_line_no, first_line_no + n, dtype=np.int64))
    try:
        lines.validate(full=True)
        return numbers, lines, []
    except pa.ArrowInvalid:
        good_no, good, bad = [], [], []
        for i, raw in enumerate(block.split(b"\n")[:n]):
            raw = raw.removesuffix(b"\r")
            try:
                good.append(raw.decode("utf-8"))
                good_no.append(first_line_no + i)
            except UnicodeDecodeError:
                bad.append((first_line_no + i, "invalid_utf8", raw.decode("utf-8", errors="replace")))
        return pa.array(good_no, pa.int64()), pa.array(good, pa.large_string()), bad


def _plain_batches(src: Source, outcome: ReadOutcome, batch_lines: int) -> Iterator[_Batch]:
    """Batches of about `batch_lines` lines, each block of the file one Arrow chunk (DuckDB scans chunks
    in parallel; nothing is joined into one big buffer)."""
    line_no = 1
    numbers: list[pa.Array] = []
    lines: list[pa.Array] = []
    bad: list[Reject] = []
    count = 0

    def flush() -> _Batch:
        table = pa.Table.from_arrays([pa.chunked_array(numbers, pa.int64()), pa.chunked_array(lines, pa.large_string())],
                                     schema=_EMPTY)
        return _Batch(table, bad)

    for block, final in read_lines(src, outcome):
        if final and outcome.damage:
            # The fragment the damage cut off: it may end inside a secret, so redact it as a fragment.
            bad.append((line_no, "truncated_record", redact_fragment(block.decode("utf-8", errors="replace"))))
            line_no += 1
            continue
        nums, arr, rejected = _block_lines(block, line_no)
        line_no += len(arr) + len(rejected)
        numbers.append(nums)
        lines.append(arr)
        bad.extend(rejected)
        count += len(arr)
        if count >= batch_lines:
            yield flush()
            numbers, lines, bad, count = [], [], [], 0
    if outcome.damage:
        bad.append((line_no, "truncated_compressed_stream", outcome.damage))
    if numbers or bad:
        yield flush()


def _unrecognised_batches(src: Source, outcome: ReadOutcome, batch_lines: int) -> Iterator[_Batch]:
    """JSON of no known shape: every record rejected, so nothing vanishes and `--format` can force one."""
    for batch in _plain_batches(src, outcome, batch_lines):
        rows = zip(batch.table.column("line_no").to_pylist(), batch.table.column("line").to_pylist(), strict=True)
        yield _Batch(_EMPTY.empty_table(), batch.rejects + [(no, "unrecognised_envelope", ln) for no, ln in rows])


def _cloudwatch_batches(src: Source, outcome: ReadOutcome, batch_lines: int) -> Iterator[_Batch]:
    """CloudWatch documents are JSON values, not lines: split them into one event per record first."""
    text = b"".join(block for block, _ in read_lines(src, outcome)).decode("utf-8", errors="surrogateescape")
    good_no: list[int] = []
    good: list[str] = []
    bad: list[Reject] = []
    for n, (event, reason, raw) in enumerate(envelopes.cloudwatch_records(text), start=1):
        if event is None:
            bad.append((n, reason or "malformed_json", raw))
        else:
            good_no.append(n)
            good.append(event)
    if outcome.damage:
        if bad and bad[-1][1] == "malformed_json" and bad[-1][0] == len(good) + len(bad):
            no, _, raw = bad.pop()
            bad.append((no, "truncated_record", redact_fragment(raw)))
        bad.append((len(good) + len(bad) + 1, "truncated_compressed_stream", outcome.damage))
    for start in range(0, max(len(good), 1), batch_lines):
        table = pa.table({"line_no": pa.array(good_no[start : start + batch_lines], pa.int64()),
                          "line": pa.array(good[start : start + batch_lines], pa.large_string())})
        yield _Batch(table, bad if start == 0 else [])


class _SourceLoader:
    """Loads the batches of one source, each batch in its own short transaction."""

    def __init__(self, con: duckdb.DuckDBPyConnection, config: Config, load_id: str) -> None:
        self.con = con
        self.config = config
        self.load_id = load_id
        self.store = statements("store_batch")

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

    def load(self, src: Source, envelope: str, batches: Iterator[_Batch]) -> tuple[int, int]:
        """Store every batch; returns (records read, records rejected)."""
        stage = sql_text("stage").replace("{envelope}", envelopes.envelope_sql(envelope))
        json_type = ("CASE WHEN NOT json_valid(line) THEN 'INVALID' WHEN starts_with(ltrim(line), '{') THEN 'OBJECT' "
                     "WHEN starts_with(ltrim(line), '[') THEN 'ARRAY' ELSE 'SCALAR' END"
                     if envelope in envelopes.JSON_ENVELOPES else "NULL::VARCHAR")
        typed = f"CREATE OR REPLACE TEMP VIEW typed_batch AS SELECT line_no, line AS raw, {json_type} AS jtype FROM batch"
        carry_ts, carry_origin = None, None
        lines = rejected = 0
        for batch in batches:
            lines += batch.table.num_rows + len(batch.rejects)
            rejected += len(batch.rejects)
            self.con.execute("BEGIN TRANSACTION")
            try:
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
                self.con.execute("COMMIT")
            except BaseException:
                _rollback_quietly(self.con)
                raise
            finally:
                if batch.table.num_rows:
                    self.con.unregister("batch")
        return lines, rejected


def _rollback_quietly(con: duckdb.DuckDBPyConnection) -> None:
    try:
        con.execute("ROLLBACK")
    except duckdb.Error:
        pass  # no transaction was open


def _recover(con: duckdb.DuckDBPyConnection) -> None:
    """Remove the rows of loads that never finished (a killed ingest) and queue their streams."""
    if not scalar(con, "SELECT count(*) FROM pending_sources"):
        return
    con.execute("BEGIN TRANSACTION")
    for statement in statements("recover"):
        con.execute(statement)
    con.execute("COMMIT")


# Streams are rebuilt in parts of about this many lines, so the window queries stay within memory.
REBUILD_LINES = 1_000_000


def _rebuild(con: duckdb.DuckDBPyConnection, config: Config) -> tuple[int, int]:
    """Rebuild events and runs of the streams in `pending_streams`, one transaction per part."""
    total = scalar(con, "SELECT count(*) FROM log_lines WHERE stream_key IN (SELECT stream_key FROM pending_streams)")
    parts = max(1, -(-total // REBUILD_LINES))
    event_count = run_count = 0
    for part in range(parts):
        con.execute("BEGIN TRANSACTION")
        try:
            execute(con, "CREATE OR REPLACE TEMP TABLE touched_streams AS SELECT DISTINCT stream_key "
                         "FROM pending_streams WHERE hash(stream_key) % $parts = $part", {"parts": parts, "part": part})
            event_count += events.rebuild_events(con, config=config)
            run_count += runs.rebuild_runs(con, config=config)
            con.execute("DELETE FROM pending_streams WHERE stream_key IN (SELECT stream_key FROM touched_streams)")
            con.execute("COMMIT")
        except duckdb.Error as e:
            _rollback_quietly(con)
            raise WarehouseError(f"rebuilding events and runs failed: {str(e).splitlines()[0]} "
                                 "(the lines are stored; re-run ingest to retry, --debug for details)") from e
        except BaseException:
            _rollback_quietly(con)
            raise
    return event_count, run_count


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
    con.execute("BEGIN TRANSACTION")
    for statement in statements("forget_source"):
        execute(con, statement, {"source_uri": src.display_uri, "load_id": load_id})
    con.execute("COMMIT")
    reader = {"unknown": _unrecognised_batches, "cloudwatch": _cloudwatch_batches}.get(kind, _plain_batches)
    read, refused = loader.load(src, "docker" if kind == "unknown" else kind,
                                reader(src, outcome, config.ingest.batch_lines))
    con.execute("BEGIN TRANSACTION")
    for statement in statements("finish_source"):
        execute(con, statement, {"source_uri": src.display_uri, "size_bytes": src.size, "fingerprint": fingerprint,
                                 "format": kind, "lines": read, "rejected": refused, "damage": outcome.damage,
                                 "load_id": load_id})
    con.execute("COMMIT")
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
            _rollback_quietly(con)
            raise WarehouseError(f"{src.display_uri}: the warehouse refused the load: {str(e).splitlines()[0]} "
                                 "(re-run ingest; --debug for details)") from e
        except (OSError, SourceError) as e:
            _rollback_quietly(con)
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
    """Read every source in `specs` into the warehouse and rebuild events and runs for what changed.

    A source that cannot be read (after retries) is left out and named in `failed`; it is not marked
    ingested, so the next run tries it again, and every other source is still loaded.
    """
    forced = envelope or (None if config.ingest.format == "auto" else config.ingest.format)
    if forced is not None and forced not in envelopes.ENVELOPES:
        raise SourceError(f"--format {forced}: unknown format (use one of: {', '.join(envelopes.ENVELOPES)})")
    sources = discover(specs, since=since)
    _recover(con)
    load_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ-") + secrets.token_hex(3)
    loader = _SourceLoader(con, config, load_id)
    done = skipped = lines = rejected = stored = duplicates = damaged = 0
    failed: list[str] = []
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
    event_count, run_count = (0, 0)
    if scalar(con, "SELECT count(*) FROM pending_streams"):
        event_count, run_count = _rebuild(con, config)
    return IngestResult(done, skipped, lines, stored, rejected, duplicates, damaged, run_count, event_count,
                        tuple(failed))

"""Stage 1, ingest: shipped migrate logs into `log_lines` and `rejects`, then events and runs rebuilt.

Every record of every source ends in `log_lines` or in `rejects` with a reason. A source whose fingerprint
is already recorded is skipped; a changed source is re-read whole inside one transaction (its old rows
replaced), so an interrupted ingest never leaves a source half recorded.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb
import numpy as np
import pyarrow as pa
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from . import envelopes, events, runs
from .config import Config
from .errors import SourceError, WarehouseError
from .sources import ReadOutcome, Source, discover, read_lines
from .warehouse import execute, one, scalar, sql_text, statements

_TMP_TABLES = """
CREATE OR REPLACE TEMP TABLE touched_streams (stream_key VARCHAR);
"""


@dataclass(frozen=True)
class IngestResult:
    """What one ingest did."""

    sources: int  # read this time
    skipped: int  # unchanged since a previous ingest
    lines: int  # records read (accepted + rejected)
    stored: int  # new rows in log_lines
    rejected: int
    duplicates: int  # accepted records already stored from another source
    damaged: int  # sources with a truncated or corrupt compressed stream
    runs: int  # runs rebuilt for the streams this ingest touched
    events: int

    def summary(self) -> str:
        parts = [
            f"ingested {self.sources:,} source{'s' if self.sources != 1 else ''}",
            f"skipped {self.skipped:,} unchanged",
            f"{self.lines:,} lines ({self.stored:,} new, {self.duplicates:,} duplicate, {self.rejected:,} rejected)",
            f"{self.events:,} migrate events in {self.runs:,} runs rebuilt",
        ]
        if self.damaged:
            parts.append(f"{self.damaged} damaged source{'s' if self.damaged != 1 else ''} (see ingested_sources.damage)")
        return "; ".join(parts)


@dataclass
class _Tally:
    lines: int = 0
    rejected: int = 0


def _file_stream(src: Source) -> str:
    # Docker rotates `<id>-json.log` into `<id>-json.log.1`…: one container, one stream.
    base = re.sub(r"\.(gz|zst)$", "", src.uri)
    base = re.sub(r"(\.log)\.\d+$", r"\1", base)
    return "file:" + base


def _lines_array(data: bytes) -> pa.Array:
    """Zero-copy Arrow strings, one per line (newline kept; SQL trims it)."""
    buf = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(buf == 10) + 1
    if len(data) and (len(ends) == 0 or ends[-1] != len(data)):
        ends = np.append(ends, len(data))
    offsets = np.zeros(len(ends) + 1, dtype=np.int64)
    offsets[1:] = ends
    return pa.LargeStringArray.from_buffers(len(ends), pa.py_buffer(offsets), pa.py_buffer(data))


def _decode_batch(data: bytes, first_line_no: int) -> tuple[pa.Table, list[tuple[int, str, str]]]:
    """Arrow table (line_no, line) of the valid lines, plus rejects for invalid UTF-8."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        good_no, good, bad = [], [], []
        for i, raw in enumerate(data.split(b"\n")[: data.count(b"\n") + (0 if data.endswith(b"\n") else 1)]):
            try:
                good.append(raw.decode("utf-8"))
                good_no.append(first_line_no + i)
            except UnicodeDecodeError:
                bad.append((first_line_no + i, "invalid_utf8", raw.decode("utf-8", errors="replace")))
        return pa.table({"line_no": pa.array(good_no, pa.int64()), "line": pa.array(good, pa.large_string())}), bad
    lines = _lines_array(data)
    numbers = pa.array(np.arange(first_line_no, first_line_no + len(lines), dtype=np.int64))
    return pa.table({"line_no": numbers, "line": lines}), []


def _batches(src: Source, outcome: ReadOutcome, batch_lines: int) -> Iterator[tuple[bytes, bool]]:
    """Group whole-line blocks into batches of about `batch_lines` lines (bounded memory)."""
    held: list[bytes] = []
    count = 0
    for block, final in read_lines(src, outcome):
        if final and outcome.damage:
            if held:
                yield b"".join(held), False
            yield block, True  # the fragment cut by the damage
            return
        held.append(block)
        count += block.count(b"\n")
        if count >= batch_lines or sum(map(len, held)) >= (256 << 20):
            yield b"".join(held), False
            held, count = [], 0
    if held:
        yield b"".join(held), False


class _SourceLoader:
    """Loads one source inside the caller's transaction."""

    def __init__(self, con: duckdb.DuckDBPyConnection, config: Config, load_id: str) -> None:
        self.con = con
        self.config = config
        self.load_id = load_id

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

    def reject(self, src: Source, rows: list[tuple[int, str, str]]) -> None:
        if not rows:
            return
        table = pa.table({
            "line_no": pa.array([r[0] for r in rows], pa.int64()),
            "reason": pa.array([r[1] for r in rows], pa.string()),
            "raw": pa.array([r[2] for r in rows], pa.string()),
        })
        self.con.register("py_rejects", table)
        try:
            execute(self.con, "INSERT INTO rejects SELECT $source_uri, line_no, reason, left(redact(raw), 4096), "
                    "$load_id FROM py_rejects", {"source_uri": src.display_uri, "load_id": self.load_id})
        finally:
            self.con.unregister("py_rejects")

    def load(self, src: Source, envelope: str, batches: Iterator[tuple[pa.Table, list]], tally: _Tally) -> None:
        stage = sql_text("stage").replace("{envelope}", envelopes.envelope_sql(envelope))
        store = statements("store_batch")
        is_json = envelope in envelopes.JSON_ENVELOPES
        carry_ts, carry_origin = None, None
        self.con.execute("CREATE OR REPLACE TEMP TABLE source_seen (content_hash VARCHAR, n BIGINT)")
        for table, bad in batches:
            self.reject(src, bad)
            tally.lines += table.num_rows + len(bad)
            tally.rejected += len(bad)
            if table.num_rows == 0:
                continue
            self.con.register("batch", table)
            try:
                self.con.execute(
                    "CREATE OR REPLACE TEMP VIEW typed_batch AS SELECT line_no, rtrim(line, chr(13) || chr(10)) AS raw, "
                    + ("CASE WHEN json_valid(line) THEN json_type(line) ELSE 'INVALID' END" if is_json else "NULL::VARCHAR")
                    + " AS jtype FROM batch"
                )
                params = self.params(src, carry_ts, carry_origin)
                execute(self.con, stage, params)
                for statement in store:
                    execute(self.con, statement, params)
                tally.rejected += scalar(self.con, "SELECT count(*) FROM staged WHERE reason IS NOT NULL")
                if envelope == "text":
                    last = one(self.con, "SELECT ts, ts_origin FROM staged ORDER BY line_no DESC LIMIT 1")
                    carry_ts, carry_origin = last if last else (carry_ts, carry_origin)
            finally:
                self.con.unregister("batch")


def _plain_batches(src: Source, outcome: ReadOutcome, batch_lines: int) -> Iterator[tuple[pa.Table, list]]:
    line_no = 1
    for data, truncated in _batches(src, outcome, batch_lines):
        if truncated:
            yield _no_lines(), [(line_no, "truncated_record", data.decode("utf-8", errors="replace"))]
            line_no += 1
            continue
        table, bad = _decode_batch(data, line_no)
        line_no += table.num_rows + len(bad)
        yield table, bad
    if outcome.damage:
        yield _no_lines(), [(line_no, "truncated_compressed_stream", outcome.damage)]


def _no_lines() -> pa.Table:
    return pa.table({"line_no": pa.array([], pa.int64()), "line": pa.array([], pa.large_string())})


def _unrecognised_batches(src: Source, outcome: ReadOutcome, batch_lines: int) -> Iterator[tuple[pa.Table, list]]:
    """JSON of no known shape: every record rejected, so nothing vanishes and `--format` can force one."""
    for table, bad in _plain_batches(src, outcome, batch_lines):
        yield _no_lines(), bad + [
            (no, "unrecognised_envelope", line)
            for no, line in zip(table.column("line_no").to_pylist(), table.column("line").to_pylist())
        ]


def _cloudwatch_batches(src: Source, outcome: ReadOutcome, batch_lines: int) -> Iterator[tuple[pa.Table, list]]:
    text = b"".join(block for block, _ in read_lines(src, outcome)).decode("utf-8", errors="replace")
    good_no, good, bad = [], [], []
    for n, (event, reason, raw) in enumerate(envelopes.cloudwatch_records(text), start=1):
        if event is None:
            bad.append((n, reason, raw))
        else:
            good_no.append(n)
            good.append(event)
    if outcome.damage:
        bad.append((len(good) + len(bad) + 1, "truncated_compressed_stream", outcome.damage))
    for i in range(0, max(len(good), 1), batch_lines):
        chunk_bad = bad if i == 0 else []
        yield pa.table({
            "line_no": pa.array(good_no[i : i + batch_lines], pa.int64()),
            "line": pa.array(good[i : i + batch_lines], pa.large_string()),
        }), chunk_bad


def _head(src: Source) -> bytes:
    outcome = ReadOutcome()
    for block, _ in read_lines(src, outcome):
        return block[:262144]
    return b""


def ingest(
    con: duckdb.DuckDBPyConnection,
    specs: list[str],
    *,
    config: Config,
    envelope: str | None = None,
    progress: bool = True,
) -> IngestResult:
    """Read every source in `specs` into the warehouse and rebuild events and runs for what changed."""
    forced = envelope or (None if config.ingest.format == "auto" else config.ingest.format)
    if forced is not None and forced not in envelopes.ENVELOPES:
        raise SourceError(f"--format {forced}: unknown format (use one of: {', '.join(envelopes.ENVELOPES)})")
    sources = discover(specs)
    load_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ-") + secrets.token_hex(3)
    loader = _SourceLoader(con, config, load_id)
    con.execute(_TMP_TABLES)
    done = skipped = lines = rejected = stored = duplicates = damaged = 0
    with Progress(
        TextColumn("[bold]ingest[/] {task.description}"), BarColumn(), DownloadColumn(), TimeRemainingColumn(),
        disable=not progress, transient=True,
    ) as bar:
        task = bar.add_task("", total=sum(s.size for s in sources) or 1)
        for src in sources:
            bar.update(task, description=src.display_uri[-60:])
            fingerprint = src.fingerprint()
            known = one(con, "SELECT fingerprint FROM ingested_sources WHERE source_uri = ?", [src.display_uri])
            if known and known[0] == fingerprint:
                skipped += 1
                bar.advance(task, src.size)
                continue
            kind = forced or envelopes.detect(_head(src))
            outcome = ReadOutcome()
            tally = _Tally()
            con.execute("BEGIN TRANSACTION")
            try:
                for table in ("log_lines", "rejects", "ingested_sources"):
                    con.execute(f"DELETE FROM {table} WHERE source_uri = ?", [src.display_uri])
                if kind == "unknown":
                    loader.load(src, "docker", _unrecognised_batches(src, outcome, config.ingest.batch_lines), tally)
                elif kind == "cloudwatch":
                    loader.load(src, kind, _cloudwatch_batches(src, outcome, config.ingest.batch_lines), tally)
                else:
                    loader.load(src, kind, _plain_batches(src, outcome, config.ingest.batch_lines), tally)
                new = scalar(
                    con, "SELECT count(*) FROM log_lines WHERE source_uri = ? AND load_id = ?", [src.display_uri, load_id]
                )
                dup = tally.lines - tally.rejected - new
                con.execute(
                    "INSERT INTO ingested_sources VALUES (?, ?, ?, ?, ?, ?, ?, ?, now()::TIMESTAMP, ?)",
                    [src.display_uri, src.size, fingerprint, kind, tally.lines, tally.rejected, dup,
                     outcome.damage, load_id],
                )
                con.execute("COMMIT")
            except duckdb.Error as e:
                con.execute("ROLLBACK")
                raise WarehouseError(f"{src.display_uri}: the warehouse refused the load: {str(e).splitlines()[0]}") from e
            except BaseException:
                con.execute("ROLLBACK")
                raise
            done += 1
            lines += tally.lines
            rejected += tally.rejected
            stored += new
            duplicates += dup
            damaged += outcome.damage is not None
            bar.advance(task, src.size)
    touched = [r[0] for r in con.execute("SELECT stream_key FROM touched_streams").fetchall()]
    event_count, run_count = 0, 0
    if touched:
        con.execute("BEGIN TRANSACTION")
        try:
            event_count = events.rebuild_events(con, config=config)
            run_count = runs.rebuild_runs(con, config=config)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    return IngestResult(done, skipped, lines, stored, rejected, duplicates, damaged, run_count, event_count)

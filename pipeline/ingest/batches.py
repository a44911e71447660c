"""Turning the bytes of one source into Arrow batches of (line_no, line), with the records refused before SQL.

The readers take the source's pieces (`sources.read_lines`: blocks of whole lines) rather than the source,
so a small source read whole into memory first and a large one streamed go through the same code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from pipeline.core.redact import redact_fragment
from pipeline.ingest.cloudwatch import cloudwatch_records
from pipeline.ingest.exports import MESSAGE, export_records
from pipeline.ingest.sources import ReadOutcome

Reject = tuple[int, str, str]  # line_no, reason, raw
Pieces = Iterable[tuple[bytes, bool]]  # (block of whole lines, is_final), as read_lines yields them
Reader = Callable[[Pieces, ReadOutcome, int], Iterator["Batch"]]


@dataclass
class Batch:
    """Lines ready for SQL (Arrow, one chunk per read block) and the records refused before SQL.

    A line keeps its line end (`\\n`, `\\r\\n`): cutting it out would copy every block once more, and JSON
    ignores it; SQL strips it where the text itself is used (plain text, the raw of a reject)."""

    table: pa.Table
    rejects: list[Reject] = field(default_factory=list)

    @property
    def records(self) -> int:
        return self.table.num_rows + len(self.rejects)


EMPTY = pa.schema([("line_no", pa.int64()), ("line", pa.large_string())])


def _block_lines(block: bytes, first_line_no: int) -> tuple[pa.Array, pa.Array, list[Reject]]:
    """One read block (whole lines) as Arrow (line_no, line) over the block's own buffer, without a copy.

    Arrow checks UTF-8 in bulk; only a block that fails is split line by line to reject the bad lines."""
    ends = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == 10) + 1
    if len(block) and (len(ends) == 0 or ends[-1] != len(block)):
        ends = np.append(ends, len(block))  # a last line without a newline (end of file)
    n = len(ends)
    offsets = np.zeros(n + 1, dtype=np.int64)
    offsets[1:] = ends
    lines = pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(block))
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


def plain_batches(pieces: Pieces, outcome: ReadOutcome, batch_lines: int) -> Iterator[Batch]:
    """Batches of about `batch_lines` lines, each block one Arrow chunk (DuckDB scans chunks in parallel;
    nothing is joined into one big buffer)."""
    line_no = 1
    numbers: list[pa.Array] = []
    lines: list[pa.Array] = []
    bad: list[Reject] = []
    count = 0

    def flush() -> Batch:
        table = pa.Table.from_arrays([pa.chunked_array(numbers, pa.int64()), pa.chunked_array(lines, pa.large_string())],
                                     schema=EMPTY)
        return Batch(table, bad)

    for block, final in pieces:
        if final and outcome.damage and not outcome.intact:
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
    if outcome.damage and not outcome.intact:
        bad.append((line_no, "truncated_compressed_stream", outcome.damage))
    if numbers or bad:
        yield flush()


def unrecognised_batches(pieces: Pieces, outcome: ReadOutcome, batch_lines: int) -> Iterator[Batch]:
    """JSON of no known shape: every record rejected, so nothing vanishes and `--format` can force one."""
    for batch in plain_batches(pieces, outcome, batch_lines):
        rows = zip(batch.table.column("line_no").to_pylist(), batch.table.column("line").to_pylist(), strict=True)
        yield Batch(EMPTY.empty_table(), batch.rejects + [(no, "unrecognised_envelope", ln.rstrip("\n").removesuffix("\r"))
                                                          for no, ln in rows])


def _record_batches(records: Iterator[tuple[str | None, str | None, str]], outcome: ReadOutcome,
                    batch_lines: int) -> Iterator[Batch]:
    """Batches of records split out of JSON documents: (record JSON, reject reason, raw), numbered in order."""
    good_no: list[int] = []
    good: list[str] = []
    bad: list[Reject] = []
    n = 0

    def flush() -> Batch:
        return Batch(pa.table({"line_no": pa.array(good_no, pa.int64()), "line": pa.array(good, pa.large_string())}),
                     bad)

    for n, (event, reason, raw) in enumerate(records, start=1):
        if event is None:
            bad.append((n, reason or "malformed_json", raw))
        else:
            good_no.append(n)
            good.append(event)
            if len(good) >= batch_lines:
                yield flush()
                good_no, good, bad = [], [], []
    if outcome.damage:
        if bad and bad[-1][1] in ("malformed_json", "malformed_csv") and bad[-1][0] == n:
            no, _, raw = bad.pop()
            bad.append((no, "truncated_record", redact_fragment(raw)))
        bad.append((n + 1, "truncated_compressed_stream", outcome.damage))
    if good or bad or n == 0:
        yield flush()


def _text(pieces: Pieces) -> Iterator[str]:
    return (block.decode("utf-8", errors="surrogateescape") for block, _ in pieces)


def cloudwatch_batches(pieces: Pieces, outcome: ReadOutcome, batch_lines: int) -> Iterator[Batch]:
    """CloudWatch documents are JSON values, not lines: split them into one event per record, streaming
    (a `filter-log-events` document of any size is never held whole)."""
    return _record_batches(cloudwatch_records(_text(pieces)), outcome, batch_lines)


def export_reader(kind: str) -> Reader:
    """Platform exports: records out of pages, documents or CSV, one per physical line (`ingest/exports.py`)."""
    def batches(pieces: Pieces, outcome: ReadOutcome, batch_lines: int) -> Iterator[Batch]:
        return _record_batches(export_records(kind, _text(pieces)), outcome, batch_lines)
    return batches


def reader(kind: str) -> Reader:
    """The reader for a detected format (`unknown`: every record rejected)."""
    if kind in MESSAGE:
        return export_reader(kind)
    return {"unknown": unrecognised_batches, "cloudwatch": cloudwatch_batches}.get(kind, plain_batches)

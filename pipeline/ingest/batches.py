"""Reading one source into Arrow batches of (line_no, line), with the records refused before SQL."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from pipeline.core.redact import redact_fragment
from pipeline.ingest import envelopes
from pipeline.ingest.sources import ReadOutcome, Source, read_lines

Reject = tuple[int, str, str]  # line_no, reason, raw


@dataclass
class Batch:
    """Lines ready for SQL (Arrow, one chunk per read block) and the records refused before SQL."""

    table: pa.Table
    rejects: list[Reject] = field(default_factory=list)


EMPTY = pa.schema([("line_no", pa.int64()), ("line", pa.large_string())])


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


def plain_batches(src: Source, outcome: ReadOutcome, batch_lines: int) -> Iterator[Batch]:
    """Batches of about `batch_lines` lines, each block of the file one Arrow chunk (DuckDB scans chunks
    in parallel; nothing is joined into one big buffer)."""
    line_no = 1
    numbers: list[pa.Array] = []
    lines: list[pa.Array] = []
    bad: list[Reject] = []
    count = 0

    def flush() -> Batch:
        table = pa.Table.from_arrays([pa.chunked_array(numbers, pa.int64()), pa.chunked_array(lines, pa.large_string())],
                                     schema=EMPTY)
        return Batch(table, bad)

    for block, final in read_lines(src, outcome):
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


def unrecognised_batches(src: Source, outcome: ReadOutcome, batch_lines: int) -> Iterator[Batch]:
    """JSON of no known shape: every record rejected, so nothing vanishes and `--format` can force one."""
    for batch in plain_batches(src, outcome, batch_lines):
        rows = zip(batch.table.column("line_no").to_pylist(), batch.table.column("line").to_pylist(), strict=True)
        yield Batch(EMPTY.empty_table(), batch.rejects + [(no, "unrecognised_envelope", ln) for no, ln in rows])


def cloudwatch_batches(src: Source, outcome: ReadOutcome, batch_lines: int) -> Iterator[Batch]:
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
        yield Batch(table, bad if start == 0 else [])

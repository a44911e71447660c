"""Platform exports (Elastic, Splunk, Google Cloud Logging, Datadog) split into records, one per physical line.

Records arrive as JSON lines (ECS documents, Splunk `{"result":…}` lines, LogEntry lines, Datadog archives), as
documents holding a list of them (an Elasticsearch `_search` or scroll page `hits.hits[]._source`, a
`gcloud logging read --format=json` array, an `entries:list` response, a Splunk results document), or as a
Splunk CSV export. Documents are never held whole: text arrives in blocks of whole lines, a value that fits is
decoded at C speed, one that does not is walked key by key down to its list, whose elements are decoded one at
a time (as for CloudWatch documents). A message holding several lines (Splunk merges lines into one event,
Datadog and Elastic agents aggregate multi-line errors) becomes that many records: each is the original record
with the one line in `lens_line`, which the envelope SQL reads before the platform's own message field.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Iterator
from itertools import chain
from typing import Any

from pipeline.ingest.cloudwatch import (
    _DECODER,
    _UNDECODABLE,
    RAW_LIMIT,
    Record,
    _printable,
    _Text,
    top_level_values,
)

_LINE_END = re.compile(r"\r\n|\r|\n")
_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
LINE_KEY = "lens_line"

# Where each platform keeps the message (the first that is a string wins).
MESSAGE: dict[str, tuple[tuple[str, ...], ...]] = {
    "elastic": (("message",),),
    "splunk": (("result", "_raw"), ("_raw",)),
    "gcp": (("textPayload",), ("jsonPayload", "message")),
    "datadog": (("message",),),
}
# The list a large document streams its records from.
LISTS: dict[str, tuple[str, ...]] = {"elastic": ("hits", "hits"), "splunk": ("results",), "gcp": ("entries",),
                                     "datadog": ()}
# A Splunk `_raw` can be large; the csv module refuses fields over 128 KiB by default.
csv.field_size_limit(1 << 30)


def export_records(kind: str, chunks: Iterable[str]) -> Iterator[Record]:
    """One record per physical line of `kind`'s export: (record JSON, reject reason, raw)."""
    chunks = iter(chunks)
    first = next(chunks, "")
    if kind == "splunk" and first.lstrip()[:1] not in ("{", "[", ""):
        yield from _csv_records(chain([first], chunks))
        return
    yield from top_level_values(_Text(chain([first], chunks)), lambda text: _value(text, kind))


def _value(text: _Text, kind: str) -> Iterator[Record]:
    start = text.pos
    try:
        obj, stop = _DECODER.raw_decode(text.buf, start)
    except RecursionError:
        yield text.reject_line(start)
        return
    except json.JSONDecodeError as e:
        if not text.cut_off(e):
            yield text.reject_line(start)
        else:  # larger than the text at hand: walked, never decoded whole
            yield from _walk(text, kind)
        return
    text.pos = stop
    yield from _records(kind, obj, text.buf[start:stop])


def _walk(text: _Text, kind: str) -> Iterator[Record]:
    start = text.pos
    text.mark = start  # until a record is out, a failure rejects the value's first line, as for any value
    try:
        if text.buf[start] == "[":
            text.pos += 1
            for obj, raw in text.elements():
                yield from _records(kind, obj, raw, nested=True)
        else:
            streamed, rest = yield from _members(text, kind, LISTS[kind])
            if not streamed:
                yield from _records(kind, rest, _ENCODE(rest))
    except (ValueError, RecursionError):  # JSONDecodeError included: the rest of the line where it broke is rejected
        yield text.reject_line(text.mark if text.mark is not None else text.pos)
    finally:
        text.mark = None


def _members(text: _Text, kind: str, path: tuple[str, ...]) -> Iterator[Record]:
    """The object at `pos`, key by key; the value at `path` is descended into and its list streamed. Returns
    (whether the list was streamed, the other members)."""
    text.pos += 1
    rest: dict[str, Any] = {}
    streamed = False
    while (ch := text.skip()) != "}":
        if ch == ",":
            text.pos += 1
            continue
        key, _ = text.decode()
        if not isinstance(key, str) or text.skip() != ":":
            raise ValueError("expected a key and ':'")
        text.pos += 1
        ch = text.skip()
        if path and key == path[0] and ch == "[" and len(path) == 1:
            text.pos += 1
            streamed = True
            for obj, raw in text.elements():
                yield from _records(kind, obj, raw, nested=True)
        elif path and key == path[0] and ch == "{" and len(path) > 1:
            streamed, inner = yield from _members(text, kind, path[1:])
            rest[key] = inner
        else:
            rest[key] = text.decode()[0]
    text.pos += 1
    return streamed, rest


def _records(kind: str, obj: Any, raw: str, nested: bool = False) -> Iterator[Record]:
    """The records inside one decoded value: a page or document is opened, a record split into its lines.
    Lists are opened one level deep only (a list of lists is no export's shape, and could nest past the stack)."""
    if _UNDECODABLE.search(raw):
        yield None, "invalid_utf8", _printable(raw[:RAW_LIMIT])
        return
    if isinstance(obj, list) and not nested:
        for el in obj:
            yield from _records(kind, el, _ENCODE(el), nested=True)
        return
    if not isinstance(obj, dict):
        yield None, "unexpected_shape", raw[:RAW_LIMIT]
        return
    inner = None if nested else _listed(kind, obj)
    if inner is not None:
        if not isinstance(inner, list):
            yield None, "unexpected_shape", raw[:RAW_LIMIT]
            return
        for el in inner:
            yield from _records(kind, el, _ENCODE(el), nested=True)
        return
    if kind == "elastic" and ("_source" in obj or "_index" in obj):
        source = obj.get("_source")
        if not isinstance(source, dict):  # a hit without its document (`_source` disabled or filtered out)
            yield None, "unexpected_shape", raw[:RAW_LIMIT]
            return
        obj, raw = source, _ENCODE(source)
    yield from _lines(kind, obj, raw)


def _listed(kind: str, obj: dict[str, Any]) -> Any:
    """The list of records a document holds (`hits.hits`, `results`, `entries`), None when it is a record."""
    path = LISTS[kind]
    if not path or path[0] not in obj:
        return None
    value: Any = obj
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def message_of(kind: str, obj: dict[str, Any]) -> Any:
    for path in MESSAGE[kind]:
        value: Any = obj
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, str):
            return value
    return None


def _lines(kind: str, obj: dict[str, Any], raw: str) -> Iterator[Record]:
    message = message_of(kind, obj)
    if message is None or not _LINE_END.search(body := message.removesuffix("\n").removesuffix("\r")):
        yield raw, None, ""
        return
    for line in _LINE_END.split(body):
        yield _ENCODE({**obj, LINE_KEY: line}), None, ""


def _csv_lines(chunks: Iterable[str]) -> Iterator[str]:
    for chunk in chunks:
        parts = chunk.split("\n")
        for part in parts[:-1]:
            yield part + "\n"
        if parts[-1]:
            yield parts[-1]


def _csv_records(chunks: Iterable[str]) -> Iterator[Record]:
    """A Splunk CSV export: a header naming `_raw`, then one event per row (a quoted `_raw` may span lines)."""
    reader = csv.reader(_csv_lines(chunks), strict=True)
    header: list[str] | None = None
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as e:  # a stray quote, a quote left open at the end of the file: that row, and read on
            yield None, "malformed_csv", f"line {reader.line_num}: {e}"
            continue
        raw = ",".join(row)
        if not row:
            yield None, "empty_line", ""
        elif header is None:
            header = [h.strip() for h in row]
            if "_raw" not in header:
                yield None, "unexpected_shape", raw[:RAW_LIMIT]
                header = None
        elif _UNDECODABLE.search(raw):
            yield None, "invalid_utf8", _printable(raw[:RAW_LIMIT])
        elif len(row) != len(header):
            yield None, "malformed_csv", raw[:RAW_LIMIT]
        else:
            obj = {"result": dict(zip(header, row, strict=True))}
            yield from _lines("splunk", obj, _ENCODE(obj))

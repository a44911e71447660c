"""CloudWatch Logs output split into one JSON event per record, streaming.

`aws logs filter-log-events` writes one pretty-printed document (its `events` list can hold millions),
subscription payloads hold a `logEvents` list, Firehose concatenates payloads with no separator, and
`jq -c '.events[]'` gives one event per line. Text arrives in blocks of whole lines; a value that fits in
the text at hand is decoded whole (C speed), one that does not is walked key by key, so a document's
events are decoded one at a time and the document is never held whole.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

Record = tuple[str | None, str | None, str]  # (event JSON, reject reason, raw)

_DECODER = json.JSONDecoder()
_SPACE = re.compile(r"[ \t\r\n]*")
_SEPARATOR = re.compile(r"[ \t\r\n]*,?[ \t\r\n]*")
# The text was decoded with surrogateescape: bytes that are not UTF-8 became lone surrogates.
_UNDECODABLE = re.compile("[\udc80-\udcff]")
RAW_LIMIT = 8192


class _Text:
    """Text arriving in chunks; `buf[pos:]` is not consumed yet, and nothing from `mark` on is dropped."""

    def __init__(self, chunks: Iterable[str]) -> None:
        self._chunks = iter(chunks)
        self.buf = ""
        self.pos = 0
        self.mark: int | None = None
        self.done = False
        self.dirty = False  # the text held bytes that are not UTF-8

    def more(self) -> bool:
        """Append the next chunk, dropping what is consumed; False at the end of the text."""
        if self.done:
            return False
        chunk = next(self._chunks, None)
        if chunk is None:
            self.done = True
            return False
        cut = self.pos if self.mark is None else min(self.pos, self.mark)
        self.buf = self.buf[cut:] + chunk
        self.dirty = bool(_UNDECODABLE.search(self.buf))
        self.pos -= cut
        if self.mark is not None:
            self.mark -= cut
        return True

    def at_end(self) -> bool:
        return self.pos >= len(self.buf) and not self.more()

    def skip(self) -> str:
        """Skip whitespace; the next character, '' at the end of the text."""
        while True:
            self.pos = _SPACE.match(self.buf, self.pos).end()  # type: ignore[union-attr]
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self.more():
                return ""

    def cut_off(self, e: json.JSONDecodeError) -> bool:
        """A value failed where only whitespace is left: more text may complete it. (Blocks end at line ends
        and a JSON string cannot hold a raw line end, so a value cut inside a string cannot be completed.)"""
        return not self.done and not self.buf[e.pos :].strip()

    def decode(self) -> tuple[Any, str]:
        """The JSON value at `pos` (after whitespace) and its text, reading more text while it is cut off."""
        while True:
            self.skip()
            start = self.pos
            try:
                obj, stop = _DECODER.raw_decode(self.buf, start)
            except json.JSONDecodeError as e:
                if self.cut_off(e) and self.more():
                    continue
                raise
            self.pos = stop
            return obj, self.buf[start:stop]

    def elements(self) -> Iterator[tuple[Any, str]]:
        """The elements of a JSON list, each decoded alone with its text, up to the list's `]` (the hot loop of
        a big document: CloudWatch's `events`, a search page's hits)."""
        raw_decode = _DECODER.raw_decode
        while True:
            buf = self.buf
            pos = _SEPARATOR.match(buf, self.pos).end()  # type: ignore[union-attr]
            if pos >= len(buf):
                self.pos = pos
                if not self.more():
                    raise ValueError("unterminated list")
                continue
            if buf[pos] == "]":
                self.pos = pos + 1
                return
            try:
                obj, stop = raw_decode(buf, pos)
                raw = buf[pos:stop]
                self.pos = stop
            except json.JSONDecodeError:
                self.pos = pos
                obj, raw = self.decode()  # cut off by the end of the text at hand: read on
            self.mark = None
            yield obj, raw

    def reject_line(self, start: int) -> Record:
        """What is left of the line at `start`, rejected; reading resumes after it."""
        nl = self.buf.find("\n", start)
        stop = len(self.buf) if nl < 0 else nl + 1
        raw = self.buf[start:stop]
        self.pos = stop
        return None, _bad(raw), _printable(raw.rstrip("\r\n"))


def cloudwatch_records(chunks: Iterable[str]) -> Iterator[Record]:
    """Split CloudWatch output into one JSON event each: (event_json, reject_reason, raw).

    Text that is not JSON is rejected line by line; a blank line between values is a record of its own,
    as in JSON-lines files."""
    yield from top_level_values(_Text(chunks), _value)


def top_level_values(text: _Text, value: Callable[[_Text], Iterator[Record]]) -> Iterator[Record]:
    """The records of each top-level value of `text`, by `value`; a blank line between values is an
    `empty_line` record of its own, as in JSON-lines files."""
    newlines = 0
    while not text.at_end():
        ch = text.buf[text.pos]
        if ch in " \t\r\n":
            if ch == "\n":
                newlines += 1
                if newlines > 1:
                    yield None, "empty_line", ""
            text.pos += 1
            continue
        newlines = 0
        yield from value(text)


def _value(text: _Text) -> Iterator[Record]:
    """The records of the top-level value at `pos`."""
    start = text.pos
    try:
        obj, stop = _DECODER.raw_decode(text.buf, start)
    except RecursionError:  # nested past Python's recursion limit: rejected, never the end of the batch
        yield text.reject_line(start)
        return
    except json.JSONDecodeError as e:
        if not text.cut_off(e):
            yield text.reject_line(start)
        elif text.buf[start] == "{":
            yield from _walk(text)
        else:
            text.mark = start
            try:
                obj, raw = text.decode()
            except json.JSONDecodeError:
                yield text.reject_line(text.mark)
            else:
                yield from _events(obj, raw)
            finally:
                text.mark = None
        return
    text.pos = stop
    yield from _events(obj, text.buf[start:stop])


def _events(obj: Any, raw: str) -> Iterator[Record]:
    if _UNDECODABLE.search(raw):
        yield None, "invalid_utf8", _printable(raw[:RAW_LIMIT])
        return
    if isinstance(obj, dict) and "message" in obj and not isinstance(obj.get("events", obj.get("logEvents")), list):
        yield raw, None, ""  # one event (a JSON-lines file): its own text is its JSON
        return
    for ev in _expand(obj):
        if ev is None:
            yield None, "json_array" if isinstance(obj, list) else "not_cloudwatch_event", raw[:RAW_LIMIT]
        else:
            yield json.dumps(ev, ensure_ascii=False), None, ""


def _walk(text: _Text) -> Iterator[Record]:
    """A top-level object larger than the text at hand, key by key: each element of its `events` list is
    yielded as soon as it is decoded. The object's other values (a subscription payload's `logEvents`,
    bounded by the service, needs its `logStream`) are kept and expanded when the object ends."""
    start = text.pos
    text.mark = start  # until an event is out, a failure rejects the object's first line, as for any value
    head = text.buf[start : start + RAW_LIMIT]
    text.pos += 1
    rest: dict[str, Any] = {}
    streamed = False
    try:
        while (ch := text.skip()) != "}":
            if ch == ",":
                text.pos += 1
                continue
            key, _ = text.decode()
            if not isinstance(key, str) or text.skip() != ":":
                raise ValueError("expected a key and ':'")
            text.pos += 1
            if key == "events" and text.skip() == "[":
                streamed = True
                text.pos += 1
                yield from _list(text)
            else:
                rest[key] = text.decode()[0]
        text.pos += 1
    except (ValueError, RecursionError):  # JSONDecodeError included: the rest of the line where it broke is rejected
        yield text.reject_line(text.mark if text.mark is not None else text.pos)
        return
    finally:
        text.mark = None
    if not streamed or rest.get("logEvents") is not None:
        yield from _events(rest, head)


def _list(text: _Text) -> Iterator[Record]:
    """The elements of a list, one record each, up to its `]`."""
    for ev, raw in text.elements():
        if text.dirty and _UNDECODABLE.search(raw):
            yield None, "invalid_utf8", _printable(raw[:RAW_LIMIT])
        elif isinstance(ev, dict):
            yield raw, None, ""  # the event's own text is its JSON: no need to serialise it again
        else:
            yield None, "not_cloudwatch_event", raw[:RAW_LIMIT]


def _expand(obj: Any) -> Iterator[dict[str, Any] | None]:
    """CloudWatch events inside one top-level JSON value; None for a value that holds none."""
    if isinstance(obj, dict) and isinstance(obj.get("events"), list):
        for ev in obj["events"]:
            yield ev if isinstance(ev, dict) else None
    elif isinstance(obj, dict) and isinstance(obj.get("logEvents"), list):
        for ev in obj["logEvents"]:
            if isinstance(ev, dict):
                yield {"logStreamName": obj.get("logStream"), "logGroupName": obj.get("logGroup"), **ev}
            else:
                yield None
    elif isinstance(obj, dict) and "message" in obj:
        yield obj
    else:
        yield None


def _printable(text: str) -> str:
    return text.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="replace")


def _bad(raw: str) -> str:
    return "invalid_utf8" if _UNDECODABLE.search(raw) else "malformed_json"

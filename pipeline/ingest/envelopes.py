"""Recognising the envelope a file was shipped in, and the SQL that unwraps each one."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any, Literal

from pipeline.core.assets import sql_text
from pipeline.core.vocabulary import ENVELOPES, Envelope

Detected = Envelope | Literal["unknown"]  # "unknown": JSON of no known shape, every record rejected
JSON_ENVELOPES = frozenset(ENVELOPES) - {"text"}


def _classify(record: dict[str, Any]) -> Detected:
    if record.get("schema") == "migrate-lens/v1":
        return "events"
    if "kubernetes" in record or "logtag" in record or "_p" in record:
        return "kubernetes"  # Fluentd/Fluent Bit CRI records carry logtag/_p even without the k8s filter
    if "line" in record and ("labels" in record or "timestamp" in record):
        return "loki"
    if {"events", "logEvents", "logStreamName", "ingestionTime"} & record.keys():
        return "cloudwatch"
    if "msg" in record and ({"time", "level"} & record.keys()):
        return "slog"
    if "log" in record:
        return "docker"
    return "unknown"


def detect(head: bytes) -> Detected:
    """Guess the envelope from the first bytes of a (decompressed) file."""
    text = head[:262144].decode("utf-8", errors="replace").lstrip("\ufeff")
    stripped = text.lstrip()
    if not stripped:
        return "text"
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()][:50]
    json_seen = False
    for ln in lines:
        if not ln.startswith("{"):
            continue
        try:
            record = json.loads(ln)
        except (ValueError, RecursionError):  # nested past Python's recursion limit: not a record we know
            continue
        json_seen = True
        if isinstance(record, dict):
            kind = _classify(record)
            if kind != "unknown":
                return kind
    # A pretty-printed document: `aws logs filter-log-events` output is the usual one.
    if stripped.startswith("{") and not json_seen and any(
        key in text for key in ('"events"', '"logEvents"', '"logStreamName"')
    ):
        return "cloudwatch"
    if json_seen or (lines and sum(ln.startswith(("{", "[")) for ln in lines) > len(lines) / 2):
        return "unknown"
    return "text"


def envelope_sql(envelope: str) -> str:
    """The SELECT that unwraps `typed_batch` rows of this envelope into the common staging columns."""
    return sql_text(f"ingest/envelope_{envelope}")


def _expand(obj: Any) -> Iterator[dict[str, Any] | None]:
    """CloudWatch events inside one top-level JSON value; None for a value that holds none."""
    if isinstance(obj, dict) and isinstance(obj.get("events"), list):
        for ev in obj["events"]:
            yield ev if isinstance(ev, dict) else None
    elif isinstance(obj, dict) and isinstance(obj.get("logEvents"), list):
        for ev in obj["logEvents"]:
            if isinstance(ev, dict):
                ev = {"logStreamName": obj.get("logStream"), "logGroupName": obj.get("logGroup"), **ev}
                yield ev
            else:
                yield None
    elif isinstance(obj, dict) and "message" in obj:
        yield obj
    else:
        yield None


def cloudwatch_records(text: str) -> Iterator[tuple[str | None, str | None, str]]:
    """Split CloudWatch output into one JSON event each: (event_json, reject_reason, raw).

    Handles pretty-printed `filter-log-events` documents, one event per line, and subscription payloads,
    including Firehose's concatenation with no separator. Text that is not JSON is rejected line by line.
    """
    decoder = json.JSONDecoder()
    pos, end = 0, len(text)
    while pos < end:
        newlines = 0
        while pos < end and text[pos] in " \t\r\n":
            if text[pos] == "\n":
                newlines += 1
                if newlines > 1:  # a blank line between values is a record of its own in JSON-lines files
                    yield None, "empty_line", ""
            pos += 1
        if pos >= end:
            break
        try:
            obj, stop = decoder.raw_decode(text, pos)
        except (ValueError, RecursionError):
            nl = text.find("\n", pos)
            stop = end if nl < 0 else nl + 1
            yield None, _bad(text[pos:stop]), _printable(text[pos:stop].rstrip("\r\n"))
            pos = stop
            continue
        raw = text[pos:stop]
        if _has_undecodable(raw):
            yield None, "invalid_utf8", _printable(raw[:8192])
        else:
            for ev in _expand(obj):
                if ev is None:
                    reason = "json_array" if isinstance(obj, list) else "not_cloudwatch_event"
                    yield None, reason, raw[:8192]
                else:
                    yield json.dumps(ev, ensure_ascii=False), None, ""
        pos = stop


# The file was decoded with surrogateescape: bytes that are not UTF-8 became lone surrogates.
_UNDECODABLE = re.compile("[\udc80-\udcff]")


def _has_undecodable(text: str) -> bool:
    return _UNDECODABLE.search(text) is not None


def _printable(text: str) -> str:
    return text.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="replace")


def _bad(raw: str) -> str:
    return "invalid_utf8" if _has_undecodable(raw) else "malformed_json"

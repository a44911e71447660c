"""Recognising the envelope a file was shipped in, and the SQL that unwraps each one."""

from __future__ import annotations

import json
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

"""Recognising the envelope a file was shipped in, and the SQL that unwraps each one."""

from __future__ import annotations

import json
from typing import Any, Literal

from pipeline.core.assets import sql_text
from pipeline.core.vocabulary import ENVELOPES, Envelope

Detected = Envelope | Literal["unknown"]  # "unknown": JSON of no known shape, every record rejected
JSON_ENVELOPES = frozenset(ENVELOPES) - {"text"}


def _export(record: dict[str, Any]) -> Detected:
    """The platform exports (Elastic, Splunk, Google Cloud Logging, Datadog), or `unknown`."""
    keys = record.keys()
    if isinstance(record.get("hits"), dict) or ("_source" in keys and ("_index" in keys or "_id" in keys)):
        return "elastic"  # a `_search` / scroll page, or one hit per line
    # ECS (Filebeat, Elastic Agent): `message` and `@timestamp`, objects where Fluent Bit has strings (`log`
    # is `{"file":…,"offset":…}`, `kubernetes.pod` is `{"name":…}`), often an `ecs` version.
    if "message" in keys and "@timestamp" in keys and not isinstance(record.get("log"), str) and (
            {"ecs", "agent", "data_stream", "event", "input"} & keys
            or any(isinstance(record.get(k), dict) for k in ("log", "kubernetes", "container", "host", "service"))):
        return "elastic"
    if isinstance(record.get("result"), dict) or isinstance(record.get("results"), list) or "_raw" in keys:
        return "splunk"  # search export JSON lines, or a results document
    if ({"textPayload", "jsonPayload", "logName"} & keys and ("resource" in keys or "timestamp" in keys)) or (
            isinstance(record.get("entries"), list)):
        return "gcp"  # LogEntry, or an entries:list response
    if "message" in keys and "date" in keys and ({"service", "host", "attributes", "tags", "status"} & keys):
        return "datadog"
    return "unknown"


def _classify(record: dict[str, Any]) -> Detected:
    if record.get("schema") == "migrate-lens/v1":
        return "events"
    if (kind := _export(record)) != "unknown":  # ECS documents carry `kubernetes.*` too: before Fluent Bit
        return kind
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


_DOCUMENT_KEYS: tuple[tuple[Envelope, tuple[str, ...]], ...] = (
    ("elastic", ('"_source"', '"hits"')),
    ("gcp", ('"textPayload"', '"jsonPayload"', '"logName"')),
    ("splunk", ('"_raw"', '"results"')),
)


def _splunk_csv(first: str) -> bool:
    """A Splunk CSV export: a header row naming `_raw` (`"_serial","_time",…,"_raw"`)."""
    return not first.startswith(("{", "[")) and "_raw" in (f.strip().strip('"') for f in first.split(","))


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
    # A pretty-printed document: `aws logs filter-log-events` output is the usual one; an Elasticsearch page
    # (`hits`), `gcloud logging read --format=json` (a list of LogEntry), a Splunk results document.
    if not json_seen and stripped.startswith(("{", "[")):
        if stripped.startswith("{") and any(key in text for key in ('"events"', '"logEvents"', '"logStreamName"')):
            return "cloudwatch"
        for kind, keys in _DOCUMENT_KEYS:
            if any(key in text for key in keys):
                return kind
    if _splunk_csv(lines[0] if lines else ""):
        return "splunk"
    if json_seen or (lines and sum(ln.startswith(("{", "[")) for ln in lines) > len(lines) / 2):
        return "unknown"
    return "text"


def envelope_sql(envelope: str) -> str:
    """The SELECT that unwraps `typed_batch` rows of this envelope into the common staging columns."""
    return sql_text(f"ingest/envelope_{envelope}")

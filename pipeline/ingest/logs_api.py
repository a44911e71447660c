"""Pulling from CloudWatch Logs directly: `cloudwatch://LOG_GROUP[?prefix=STREAM_PREFIX]`, with FilterLogEvents.

Each stream with new events becomes one source, the window of events read this time (JSON lines in the
`cloudwatch` envelope), named `cloudwatch:///ecs/migrate?stream=…&from=…&to=…`, so every pulled event is
accounted for in `ingested_sources` like a file's records. Incremental: the window's fingerprint records the
stream's last event time and the newest ingestion time seen (`cwl1:<stream id>:<last ms>:<ingested ms>`),
so no table of its own is needed. The next run skips a stream that ingested nothing since, and asks again
from `ingest.cloudwatch_lookback_seconds` before the last event (events that arrived late); an event of that
overlap ingested well before the last pull (it was read then) is dropped, the rest deduplicated by eventId
within the pull and by line identity in the warehouse; an event of it refused before (its record names its
eventId) counts as a duplicate, not as a second reject.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import duckdb

from pipeline.core.errors import SourceError
from pipeline.core.redact import redact
from pipeline.ingest.sources import Source

PREFIX = "cloudwatch://"
_STATE = "cwl1"
# botocore's standard retry mode: throttling and transient errors retried with backoff, 4 attempts.
_CLIENT = {"connect_timeout": 5, "read_timeout": 60, "retries": {"max_attempts": 4, "mode": "standard"}}


class _Window:
    """The bytes of one pulled window, opened like a file (fsspec's `open(path, "rb")`)."""

    protocol = "cloudwatch"

    def __init__(self, data: bytes) -> None:
        self.data = data

    def open(self, path: str, mode: str = "rb") -> io.BytesIO:
        return io.BytesIO(self.data)


@dataclass(frozen=True)
class Pulled(Source):
    """One stream's window of events; its fingerprint is the stream's incremental state."""

    state: str = ""

    def fingerprint(self) -> str:
        return self.state


@dataclass
class Pull:
    sources: list[Source] = field(default_factory=list)
    skipped: int = 0  # streams with nothing new
    failed: list[str] = field(default_factory=list)


def _stream_id(group: str, stream: str) -> str:
    return hashlib.sha256(f"{group}\0{stream}".encode()).hexdigest()[:16]


def known(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[int, int]]:
    """Per stream id: (last event ms, newest ingestion ms) over every window already stored."""
    state: dict[str, tuple[int, int]] = {}
    for (fp,) in con.execute("SELECT fingerprint FROM ingested_sources WHERE starts_with(fingerprint, ?)",
                             [_STATE + ":"]).fetchall():
        _, sid, last, ingested = fp.split(":")
        old = state.get(sid, (0, 0))
        state[sid] = (max(old[0], int(last)), max(old[1], int(ingested)))
    return state


def _group(spec: str) -> tuple[str, str]:
    parts = urlsplit(spec)
    group = (parts.netloc + parts.path) if parts.netloc else parts.path
    prefix = parse_qs(parts.query).get("prefix", [""])[0]
    if not group or set(parse_qs(parts.query)) - {"prefix"}:
        raise SourceError(f"{redact(spec)}: not a CloudWatch Logs source (use cloudwatch://LOG_GROUP or "
                          "cloudwatch:///group/with/slashes?prefix=STREAM_PREFIX)")
    return group, prefix


def _client() -> Any:
    try:
        import boto3
        from botocore.config import Config as BotoConfig
    except ImportError:  # pragma: no cover - boto3 comes with s3fs
        raise SourceError("cloudwatch:// needs boto3 (pip install boto3)") from None
    # a session of its own: the environment is read now, not when some earlier client was made
    return boto3.session.Session().client("logs", config=BotoConfig(**_CLIENT))  # type: ignore[arg-type]


def _error(spec: str, group: str, e: Exception) -> SourceError:
    """One line naming the thing and the fix, for what botocore raises."""
    code = (getattr(e, "response", None) or {}).get("Error", {}).get("Code", "")
    name = type(e).__name__
    where = redact(spec)
    if name in ("NoCredentialsError", "PartialCredentialsError"):
        return SourceError(f"{where}: no AWS credentials found (set AWS_PROFILE, or AWS_ACCESS_KEY_ID and "
                           "AWS_SECRET_ACCESS_KEY, or run with an instance or task role)")
    if name == "NoRegionError":
        return SourceError(f"{where}: no AWS region (set AWS_REGION or AWS_DEFAULT_REGION)")
    if code == "ResourceNotFoundException":
        return SourceError(f"{where}: log group {group!r} does not exist (check the name and AWS_REGION)")
    if code in ("AccessDeniedException", "AccessDenied", "UnrecognizedClientException", "InvalidSignatureException",
                "ExpiredTokenException"):
        return SourceError(f"{where}: access denied to log group {group!r} ({code}; the credentials need "
                           "logs:DescribeLogStreams and logs:FilterLogEvents on it)")
    text = redact(str(e).splitlines()[0] if str(e) else name)
    if code:
        return SourceError(f"{where}: CloudWatch Logs refused the request ({code}: {text})")
    return SourceError(f"{where}: cannot reach CloudWatch Logs ({text}); check AWS_ENDPOINT_URL, the region and "
                       "the network")


def _streams(client: Any, group: str, prefix: str) -> list[dict[str, Any]]:
    kwargs: dict[str, Any] = {"logGroupName": group}
    if prefix:
        kwargs["logStreamNamePrefix"] = prefix
    found = []
    for page in client.get_paginator("describe_log_streams").paginate(**kwargs):
        found.extend(page.get("logStreams", []))
    return found


def _events(client: Any, group: str, stream: str, start: int) -> list[dict[str, Any]]:
    """Every event of one stream from `start` (ms), each eventId once."""
    seen: set[str] = set()
    events = []
    for page in client.get_paginator("filter_log_events").paginate(logGroupName=group, logStreamNames=[stream],
                                                                     startTime=start):
        for ev in page.get("events", []):
            if ev.get("eventId") in seen:
                continue
            seen.add(ev.get("eventId"))
            events.append(ev)
    return events


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _window(spec: str, group: str, stream: str, events: list[dict[str, Any]]) -> Pulled:
    first = min(int(e["timestamp"]) for e in events)
    last = max(int(e["timestamp"]) for e in events)
    ingested = max(int(e.get("ingestionTime") or 0) for e in events)
    data = "".join(json.dumps({"logGroupName": group, "logStreamName": stream, "timestamp": e["timestamp"],
                               "ingestionTime": e.get("ingestionTime"), "eventId": e.get("eventId"),
                               "message": e.get("message")}, ensure_ascii=False) + "\n" for e in events).encode()
    base = PREFIX + (group if group.startswith("/") else "/" + group)
    windows = f"{base}?stream={quote(stream, safe='/')}&from="  # every window of this stream starts so
    uri = f"{windows}{_iso(first)}&to={_iso(last)}"
    return Pulled(uri=uri, path=uri, size=len(data), modified=datetime.fromtimestamp(last / 1000, UTC),
                  etag=None, compression=None, fs=_Window(data), envelope="cloudwatch", rereads=windows,
                  state=f"{_STATE}:{_stream_id(group, stream)}:{last}:{ingested}")


def pull(spec: str, state: dict[str, tuple[int, int]], *, since: datetime | None, lookback_ms: int) -> Pull:
    """The new events of every stream of the group (under the prefix), one source per stream."""
    group, prefix = _group(spec)
    out = Pull()
    try:
        client = _client()
        streams = _streams(client, group, prefix)
    except SourceError:
        raise
    except Exception as e:  # noqa: BLE001 - botocore's errors: credentials, access, a missing group, the network
        raise _error(spec, group, e) from None
    floor = int(since.timestamp() * 1000) if since else 0
    for info in sorted(streams, key=lambda s: s["logStreamName"]):
        stream = info["logStreamName"]
        last, ingested = state.get(_stream_id(group, stream), (None, None))
        if last is not None and int(info.get("lastIngestionTime") or 0) <= (ingested or 0):
            out.skipped += 1
            continue
        start = max(floor, last - lookback_ms) if last is not None else floor
        try:
            events = _events(client, group, stream, start)
        except Exception as e:  # noqa: BLE001 - one stream that cannot be read is retried next run
            out.failed.append(f"{_error(spec, group, e)} (stream {stream!r}; retried next run)")
            continue
        if last is not None:  # the overlap already read: at or before the last event, ingested before that pull
            events = [e for e in events if int(e["timestamp"]) > last
                      or int(e.get("ingestionTime") or 0) > (ingested or 0) - lookback_ms]
        if events:
            out.sources.append(_window(spec, group, stream, events))
        else:
            out.skipped += 1
    return out

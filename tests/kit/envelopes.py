"""Each shipper's envelope around one physical migrate line, as that shipper writes it (docs/contract.md §2,
docs/log-format.md §6), plus the random identifiers they carry and deterministic file writing.

The line builders return one record without its newline. JSON escaping follows the shipper:
Go's encoding/json (Docker, logcli) escapes `<`, `>`, `&` and keeps UTF-8; Fluent Bit writes non-ASCII as
`\\uXXXX`; slog, jq and the migrate-lens wrapper write plain UTF-8.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import random
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .gofmt import MS, NS, US, iso_ms, rfc3339nano, to_ns

# ----------------------------------------------------------------------------------------------- JSON flavours


# One encoder each, built once: json.dumps with options builds a new encoder per call (a corpus has millions).
_GO = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_GO_SORTED = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True)
_PLAIN = _GO
_FLUENT_BIT = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"))


def go_json(obj: Any, sort_keys: bool = False) -> str:
    """Go encoding/json: compact, UTF-8 kept, `<` `>` `&` as `\\u003c` `\\u003e` `\\u0026`."""
    s = (_GO_SORTED if sort_keys else _GO).encode(obj)
    return s.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def plain_json(obj: Any) -> str:
    """Compact, UTF-8 kept, no HTML escaping (Go slog, `jq -c`, Python wrappers)."""
    return _PLAIN.encode(obj)


def fluentbit_json(obj: Any) -> str:
    """Fluent Bit `json_lines`: compact, non-ASCII as `\\uXXXX` (`µ` is `\\u00b5`)."""
    return _FLUENT_BIT.encode(obj)


# ------------------------------------------------------------------------------------------------ identifiers

K8S_ALNUM = "bcdfghjklmnpqrstvwxz2456789"  # the alphabet of Kubernetes' generated name suffixes


def hex_id(rng: random.Random, n: int) -> str:
    """`n` hex digits: a Docker container id (64), an ECS task id (32), an image digest (64)."""
    return f"{rng.getrandbits(4 * n):0{n}x}"


def uuid4(rng: random.Random) -> str:
    h = hex_id(rng, 32)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[rng.randrange(4)]}{h[17:20]}-{h[20:]}"


def k8s_suffix(rng: random.Random, n: int = 5) -> str:
    return "".join(rng.choice(K8S_ALNUM) for _ in range(n))


def digits(rng: random.Random, n: int) -> str:
    """A number of `n` digits with no leading zero: a CloudWatch eventId is 56 of them."""
    return str(rng.randrange(1, 10)) + "".join(str(rng.randrange(10)) for _ in range(n - 1))


def delivered(rng: random.Random, lines: Iterable[tuple[int, str]]) -> list[tuple[int, str]]:
    """Shipper receive times: a few tens of microseconds after each write, in write order."""
    out, last = [], 0
    for ns, text in lines:
        last = max(ns + int(rng.uniform(15, 180) * US), last + int(rng.uniform(1, 6) * US))
        out.append((last, text))
    return out


# ------------------------------------------------------------------------------------------------- envelopes


def docker_line(text: str, t: int, *, stream: str = "stderr", partial: bool = False, **extra: Any) -> str:
    """Docker json-file (`<id>-json.log`): `log` keeps its newline, except in a piece of a line over 16 KiB."""
    return go_json({"log": text if partial else text + "\n", "stream": stream, "time": rfc3339nano(t), **extra})


def kubernetes_meta(pod: str, namespace: str, *, pod_id: str, labels: dict[str, str], host: str, docker_id: str,
                    image: str, image_hash: str | None = None, container: str = "migrate") -> dict[str, Any]:
    """The `kubernetes` object of Fluent Bit's kubernetes filter, keys in the filter's order."""
    meta: dict[str, Any] = {"pod_name": pod, "namespace_name": namespace, "pod_id": pod_id, "labels": labels,
                            "host": host, "container_name": container, "docker_id": docker_id}
    if image_hash is not None:
        meta["container_hash"] = image_hash
    meta["container_image"] = image
    return meta


def fluent_bit_line(text: str, t: int, kubernetes: dict[str, Any] | str, *, stream: str = "stderr",
                    partial: bool = False, **extra: Any) -> str:
    """Fluent Bit `tail` + cri parser + kubernetes filter, `json_lines` output: `log` without newline, `date` as
    epoch seconds with 6 decimals. `kubernetes` may be passed already serialised (a benchmark reuses it)."""
    ns = to_ns(t)
    sec, frac = divmod(ns, NS)
    us = round(frac / 1000)
    if us == 1_000_000:
        sec, us = sec + 1, 0
    kube = kubernetes if isinstance(kubernetes, str) else fluentbit_json(kubernetes)
    tail = "".join(f",{fluentbit_json(k)}:{fluentbit_json(v)}" for k, v in extra.items())
    return (f'{{"date":{sec}.{us:06d},"time":"{rfc3339nano(ns)}","stream":"{stream}",'
            f'"_p":"{"P" if partial else "F"}","log":{fluentbit_json(text)},"kubernetes":{kube}{tail}}}')


def cri_line(text: str, t: int, *, stream: str = "stderr", partial: bool = False) -> str:
    """containerd's node file `/var/log/pods/…/0.log`: `TS stderr F msg`, `P` for a piece of a long line."""
    return f"{rfc3339nano(t)} {stream} {'P' if partial else 'F'} {text}"


def loki_line(text: str, t: int, labels: dict[str, str], *, offset_min: int = 0) -> str:
    """`logcli query --output=jsonl`: keys sorted, timestamp in logcli's `--timezone`."""
    return go_json({"labels": labels, "line": text, "timestamp": rfc3339nano(t, offset_min)}, sort_keys=True)


def cloudwatch_event(stream: str, t: int, message: str, *, ingestion_ms: int, event_id: str) -> dict[str, Any]:
    """One `filter-log-events` event (epoch ms)."""
    ms = to_ns(t) // MS
    return {"logStreamName": stream, "timestamp": ms, "message": message, "ingestionTime": ingestion_ms,
            "eventId": event_id}


def filter_log_events(events: list[dict[str, Any]], searched: list[dict[str, Any]] | None = None) -> str:
    """`aws logs filter-log-events` output: the AWS CLI pretty-prints with indent 4."""
    return json.dumps({"events": events, "searchedLogStreams": searched or []}, indent=4, ensure_ascii=False) + "\n"


def subscription_payload(log_group: str, stream: str, events: list[dict[str, Any]], *,
                         filters: tuple[str, ...] = ("to-s3",), owner: str = "123456789012") -> dict[str, Any]:
    """A subscription-filter payload (what Lambda and Firehose receive, before gzip): one stream's events."""
    return {"messageType": "DATA_MESSAGE", "owner": owner, "logGroup": log_group, "logStream": stream,
            "subscriptionFilters": list(filters),
            "logEvents": [{"id": e["eventId"], "timestamp": e["timestamp"], "message": e["message"]} for e in events]}


def s3_export_line(t: int, message: str) -> str:
    """CloudWatch `create-export-task` objects are gzip text, not JSON: `2026-11-12T10:00:00.123Z message`."""
    return f"{iso_ms(t)} {message}"


def slog_line(t: int, level: str, msg: str, *, offset_min: int = 0, **attrs: Any) -> str:
    """Go `log/slog` JSONHandler: time, level, msg, then the attributes in call order."""
    return plain_json({"time": rfc3339nano(t, offset_min), "level": level, "msg": msg, **attrs})


def event_line(t: int, run_id: str, event: str, meta: dict[str, str] | None = None, **fields: Any) -> str:
    """A `migrate-lens/v1` record: `run_start` (command, args), `line` (line), `run_end` (exit_code)."""
    return plain_json({"schema": "migrate-lens/v1", "ts": iso_ms(t), "run_id": run_id, **(meta or {}),
                       "event": event, **fields})


def bare_text(lines: Iterable[str]) -> str:
    """migrate's stderr saved to a file: one physical line each."""
    return "".join(line + "\n" for line in lines)


# ------------------------------------------------------------------------------------------------------ files


def gzip_bytes(data: bytes, mtime_ns: int = 0) -> bytes:
    """gzip with a fixed header (no file name, the given mtime): the same input gives the same bytes."""
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=mtime_ns // NS) as f:
        f.write(data)
    return buf.getvalue()


def write_file(path: Path, data: bytes | str, mtime_ns: int | None = None) -> Path:
    """Write `data`, creating folders; `mtime_ns` sets the file's mtime (bare text takes its time from it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    if mtime_ns is not None:
        os.utime(path, ns=(mtime_ns, mtime_ns))
    return path


def write_lines(path: Path, lines: Iterable[str], mtime_ns: int | None = None) -> Path:
    """One record per line, each ending in `\\n`."""
    return write_file(path, "".join(line + "\n" for line in lines), mtime_ns)

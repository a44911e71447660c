"""Platform exports around real migrate lines, as each platform writes them (docs/log-format.md §6): Elastic /
OpenSearch ECS documents and `_search` pages, Splunk search exports (JSON lines, CSV), Google Cloud Logging
LogEntry, Datadog log archives. Field names and nesting follow each platform's documented export shapes."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from datetime import datetime
from typing import Any

from .envelopes import plain_json
from .gofmt import iso_ms, rfc3339nano, to_ns


def _id(*parts: object, n: int = 20) -> str:
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:n]


# ------------------------------------------------------------------------------------------------- Elastic


def ecs_doc(message: str, t: datetime, *, pod: str, namespace: str = "shop", container: str = "migrate",
            labels: dict[str, str] | None = None, node: str = "ip-10-0-3-17.ec2.internal", **extra: Any) -> dict:
    """A Filebeat / Elastic Agent `container` input document with the kubernetes provider's metadata."""
    cid = _id(pod, container, n=64)
    return {
        "@timestamp": iso_ms(t),
        "log": {"offset": int(to_ns(t) % 100_000), "file": {
            "path": f"/var/log/containers/{pod}_{namespace}_{container}-{cid}.log"}},
        "stream": "stderr",
        "message": message,
        "input": {"type": "container"},
        "ecs": {"version": "8.0.0"},
        "host": {"name": node, "hostname": node},
        "agent": {"type": "filebeat", "version": "8.15.3", "name": node},
        "container": {"id": cid, "runtime": "containerd", "image": {"name": "migrate/migrate:v4.17.1"}},
        "kubernetes": {"pod": {"name": pod, "uid": _id(pod, n=32)}, "namespace": namespace,
                       "container": {"name": container}, "node": {"name": node},
                       "labels": labels if labels is not None else {"job-name": "schema-migrate"}},
        **extra,
    }


def es_hit(doc: dict, index: str = ".ds-logs-kubernetes.container_logs-default-2026.11.21-000001") -> dict:
    return {"_index": index, "_id": _id(json.dumps(doc, sort_keys=True)), "_score": None, "_source": doc,
            "sort": [doc["@timestamp"]]}


def es_page(docs: list[dict], *, total: int, scroll_id: str | None = None) -> str:
    """A `_search` (or scroll) response, pretty-printed as `?pretty` / Kibana Dev Tools give it."""
    page: dict[str, Any] = {}
    if scroll_id:
        page["_scroll_id"] = scroll_id
    page |= {"took": 7, "timed_out": False, "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
             "hits": {"total": {"value": total, "relation": "eq"}, "max_score": None,
                      "hits": [es_hit(d) for d in docs]}}
    return json.dumps(page, indent=2, ensure_ascii=False) + "\n"


# -------------------------------------------------------------------------------------------------- Splunk


def splunk_time(t: datetime) -> str:
    """Splunk's `_time` in exports: ISO 8601, milliseconds, the search's zone offset."""
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}+00:00"


def splunk_result(raw: str, t: datetime, *, source: str, host: str = "ip-10-0-3-17",
                  sourcetype: str = "kube:container:migrate", **fields: str) -> dict:
    return {"_raw": raw, "_time": splunk_time(t), "host": host, "index": "k8s", "linecount": str(raw.count("\n") + 1),
            "source": source, "sourcetype": sourcetype, "splunk_server": "idx-1", **fields}


def splunk_json_lines(results: list[dict]) -> list[str]:
    """`splunk search … -output json` / the export endpoint with `output_mode=json`: one result per line."""
    out = []
    for i, r in enumerate(results):
        rec: dict[str, Any] = {"preview": False, "offset": i}
        if i == len(results) - 1:
            rec["lastrow"] = True
        out.append(plain_json({**rec, "result": r}))
    return out


def splunk_csv(results: list[dict]) -> str:
    """A CSV export: every field quoted, `_raw` last; a multi-line `_raw` stays one quoted field."""
    cols = ["_serial", "_time", "source", "sourcetype", "host", "index", "splunk_server", "_raw"]
    buf = io.StringIO()
    w = csv.writer(buf, quoting=csv.QUOTE_ALL, lineterminator="\n")
    w.writerow(cols)
    for i, r in enumerate(results):
        w.writerow([str(i), *(r.get(c, "") for c in cols[1:])])
    return buf.getvalue()


def splunk_events(lines: list[str], times: list[datetime], has_date: list[bool]) -> list[tuple[str, datetime]]:
    """Splunk's default line merging (SHOULD_LINEMERGE, BREAK_ONLY_BEFORE_DATE): a line with a date starts an
    event, every other line joins the one before (up to MAX_EVENTS = 256 lines)."""
    events: list[tuple[list[str], datetime]] = []
    for line, t, dated in zip(lines, times, has_date, strict=True):
        if not events or dated or len(events[-1][0]) >= 256:
            events.append(([line], t))
        else:
            events[-1][0].append(line)
    return [("\n".join(ls), t) for ls, t in events]


# -------------------------------------------------------------------------------------------- Google Cloud


def gcp_entry(t: datetime, *, pod: str, namespace: str = "shop", container: str = "migrate",
              text: str | None = None, json_payload: dict | None = None, labels: dict[str, str] | None = None) -> dict:
    """A GKE container LogEntry as a Cloud Logging sink writes it (textPayload keeps the newline)."""
    entry: dict[str, Any] = {"insertId": _id(pod, to_ns(t), text, n=16)}
    if json_payload is not None:
        entry["jsonPayload"] = json_payload
    else:
        entry["textPayload"] = text
    entry |= {
        "resource": {"type": "k8s_container", "labels": {
            "project_id": "shop-prod-4821", "location": "europe-west1", "cluster_name": "shop",
            "namespace_name": namespace, "pod_name": pod, "container_name": container}},
        "timestamp": rfc3339nano(t),
        "severity": "ERROR",
        "labels": labels if labels is not None else {
            "compute.googleapis.com/resource_name": "gke-shop-default-pool-1a2b3c4d-x7kq",
            "k8s-pod/batch_kubernetes_io/job-name": "schema-migrate"},
        "logName": "projects/shop-prod-4821/logs/stderr",
        "receiveTimestamp": rfc3339nano(t),
    }
    return entry


# ------------------------------------------------------------------------------------------------- Datadog


def datadog_record(message: str, t: datetime, *, pod: str, namespace: str = "shop", container: str = "migrate",
                   service: str | None = None, tags: list[str] | None = None, attributes: dict | None = None) -> dict:
    """One line of a Datadog log archive (`archive_….json.gz`)."""
    base_tags = [f"pod_name:{pod}", f"kube_namespace:{namespace}", f"kube_container_name:{container}",
                 "kube_job:schema-migrate", "source:migrate"]
    rec: dict[str, Any] = {"_id": _id(pod, to_ns(t), message, n=32), "date": iso_ms(t),
                           "host": "i-0a1b2c3d4e5f67890", "source": "migrate", "status": "error", "message": message}
    if service is not None:
        rec["service"] = service
    rec["attributes"] = attributes if attributes is not None else {"stream": "stderr"}
    rec["tags"] = (tags or []) + base_tags
    return rec

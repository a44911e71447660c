"""The platform exports: a real capture exported from Elastic, Splunk, Google Cloud Logging or Datadog says what
the bare capture says.

Each `wrap_*` below exports a real golang-migrate capture (tests/fixtures/real-migrate-logs) the way that
platform holds it: Splunk merges lines without a date into one event, Filebeat's and Datadog's multi-line
rules join an error with its SQL body, GKE writes one LogEntry per line; search pages are pretty-printed and
concatenated, archives gzipped. Multi-line messages must come back as the physical lines migrate printed.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from pipeline.api import ingest
from pipeline.core.config import Config
from pipeline.ingest.envelopes import detect
from pipeline.warehouse import connect
from tests.conftest import rows
from tests.kit.captures import VERBOSE_PREFIX, Capture, capture, stamps
from tests.kit.envelopes import fluent_bit_line, gzip_bytes, plain_json, write_file, write_lines
from tests.kit.exports import (datadog_record, ecs_doc, es_page, gcp_entry, splunk_csv, splunk_events,
                               splunk_json_lines, splunk_result)
from tests.test_envelopes import REPRESENTATIVE, _by_source, kube

# --------------------------------------------------------------------------------------------------- wrappers


def _pod(cap: Capture, form: str) -> str:
    return f"schema-migrate-{cap.tag}{form}"


def _error_tail_joined(cap: Capture) -> list[tuple[str, datetime]]:
    """An agent's multi-line rule: the first `error:` line and every line after it are one message."""
    times = stamps(cap)
    out: list[tuple[str, datetime]] = []
    for i, (line, t) in enumerate(zip(cap.lines, times)):
        if VERBOSE_PREFIX.sub("", line).startswith("error: "):
            return out + [("\n".join(cap.lines[i:]), t)]
        out.append((line, t))
    return out


def wrap_elastic_ndjson(cap: Capture, dest: Path) -> Path:
    """Documents exported as NDJSON of `_source` (elasticdump --sourceOnly), Filebeat multiline joined."""
    pod = _pod(cap, "e")
    return write_lines(dest / f"ecs-{cap.name}.ndjson",
                       [plain_json(ecs_doc(m, t, pod=pod)) for m, t in _error_tail_joined(cap)])


def wrap_elastic_pages(cap: Capture, dest: Path) -> Path:
    """`_search?scroll=1m` then `_search/scroll` responses saved one after another, four hits a page."""
    pod = _pod(cap, "p")
    docs = [ecs_doc(line, t, pod=pod) for line, t in zip(cap.lines, stamps(cap))]
    pages = [es_page(docs[i:i + 4], total=len(docs), scroll_id="FGluY2x1ZGVfY29udGV4dF91dWlkDXF1ZXJ5QW5kRmV0Y2gB")
             for i in range(0, max(len(docs), 1), 4)]
    return write_file(dest / f"search-{cap.name}.json", "".join(pages))


def _splunk_events(cap: Capture, form: str) -> list[dict]:
    pod = _pod(cap, form)
    dated = [bool(VERBOSE_PREFIX.match(line)) for line in cap.lines]
    source = f"/var/log/containers/{pod}_shop_migrate-{cap.cid}.log"
    return [splunk_result(raw, t, source=source)
            for raw, t in splunk_events(list(cap.lines), stamps(cap), dated)]


def wrap_splunk_json(cap: Capture, dest: Path) -> Path:
    return write_lines(dest / f"splunk-{cap.name}.json", splunk_json_lines(_splunk_events(cap, "j")))


def wrap_splunk_csv(cap: Capture, dest: Path) -> Path:
    return write_file(dest / f"splunk-{cap.name}.csv", splunk_csv(_splunk_events(cap, "c")))


def wrap_splunk_docker_driver(cap: Capture, dest: Path) -> Path:
    """Docker's `splunk` logging driver (inline format): an event per line, `_raw` the driver's own JSON."""
    return write_lines(dest / f"splunk-driver-{cap.name}.json", splunk_json_lines([
        splunk_result(json.dumps({"line": line, "source": "stderr", "tag": cap.cid[:12]}), t, source="stderr",
                      sourcetype="httpevent") for line, t in zip(cap.lines, stamps(cap))]))


def wrap_gcp_sink(cap: Capture, dest: Path) -> Path:
    """A Cloud Logging sink to Cloud Storage: hourly JSON-lines files, one LogEntry per line printed."""
    pod = _pod(cap, "g")
    return write_lines(dest / f"stderr-{cap.name}" / "2026/11/21/23:00:00_23:59:59_S0.json",
                       [plain_json(gcp_entry(t, pod=pod, text=line + "\n")) for line, t in zip(cap.lines, stamps(cap))])


def wrap_gcp_gcloud(cap: Capture, dest: Path) -> Path:
    """`gcloud logging read --format=json`: one pretty-printed array, newest first; an app's structured
    `jsonPayload` holds the error whole."""
    pod = _pod(cap, "r")
    entries = [gcp_entry(t, pod=pod, json_payload={"message": m, "component": "migrate"})
               for m, t in _error_tail_joined(cap)]
    return write_file(dest / f"gcloud-{cap.name}.json", json.dumps(entries[::-1], indent=2) + "\n")


def wrap_datadog(cap: Capture, dest: Path) -> Path:
    """A log archive object: gzip'd JSON lines, the agent's multi-line aggregation applied."""
    pod = _pod(cap, "d")
    lines = [plain_json(datadog_record(m, t, pod=pod)) for m, t in _error_tail_joined(cap)]
    return write_file(dest / "dt=20261121" / "hour=23" / f"archive_{cap.tag}.json.gz",
                      gzip_bytes("".join(line + "\n" for line in lines).encode()))


WRAPPERS: dict[str, tuple[Callable[[Capture, Path], Path], str]] = {
    "elastic-ndjson": (wrap_elastic_ndjson, "elastic"),
    "elastic-search-pages": (wrap_elastic_pages, "elastic"),
    "splunk-json": (wrap_splunk_json, "splunk"),
    "splunk-csv": (wrap_splunk_csv, "splunk"),
    "splunk-docker-driver": (wrap_splunk_docker_driver, "splunk"),
    "gcp-sink": (wrap_gcp_sink, "gcp"),
    "gcp-gcloud-read": (wrap_gcp_gcloud, "gcp"),
    "datadog-archive": (wrap_datadog, "datadog"),
}


def _ingest(con: duckdb.DuckDBPyConnection, *paths: Path | str, **kw):
    kw.setdefault("config", Config())
    return ingest(con, [str(p) for p in paths], progress=False, **kw)


@pytest.fixture(scope="module")
def compared(tmp_path_factory: pytest.TempPathFactory):
    """(bare events by source, exported events by source, {(wrapper, capture): file}, exported warehouse)."""
    root = tmp_path_factory.mktemp("exports")
    bare = connect(root / "bare.duckdb")
    _ingest(bare, *(capture(n).bare for n in REPRESENTATIVE))
    files = {(w, n): helper(capture(n), root / w) for w, (helper, _) in WRAPPERS.items() for n in REPRESENTATIVE}
    con = connect(root / "exported.duckdb")
    _ingest(con, *files.values())
    yield _by_source(bare), _by_source(con), files, con
    bare.close()
    con.close()


@pytest.mark.parametrize(("wrapper", "name"), [(w, n) for w in WRAPPERS for n in REPRESENTATIVE])
def test_exported_capture_yields_the_same_events_and_run_as_the_bare_capture(wrapper, name, compared):
    bare, got, files, _ = compared
    want_events, want_runs = bare[str(capture(name).bare)]
    got_events, got_runs = got[str(files[wrapper, name])]
    assert [e[:3] for e in got_events] == [e[:3] for e in want_events]  # kind, version, direction
    assert [e[6] for e in got_events] == [e[6] for e in want_events]  # error_text: the whole multi-line error
    for g, w in zip(got_events, want_events):
        if g[0] == "applied":
            assert g[3] == pytest.approx(w[3], abs=1.0), (g, w)
    assert got_runs == want_runs and len(got_runs) == 1


@pytest.mark.parametrize("wrapper", list(WRAPPERS))
def test_each_export_is_detected_and_every_record_is_kept(wrapper, compared):
    *_, files, con = compared
    sources = [str(files[wrapper, n]) for n in REPRESENTATIVE]
    assert rows(con, "SELECT DISTINCT format, rejected, duplicates FROM ingested_sources WHERE source_uri IN "
                     "(SELECT unnest(?::VARCHAR[]))", [sources]) == [(WRAPPERS[wrapper][1], 0, 0)]
    # one stored line per physical line migrate printed, however the platform grouped them
    printed = sum(len(capture(n).lines) for n in REPRESENTATIVE)
    assert rows(con, "SELECT count(*) FROM log_lines WHERE source_uri IN (SELECT unnest(?::VARCHAR[]))",
                [sources]) == [(printed,)]


@pytest.mark.parametrize(("wrapper", "prefix"), [("elastic-ndjson", "ecs:shop/"), ("splunk-json", "splunk:ip-10-0-3-17:"),
                                                 ("gcp-sink", "gcp:shop/"), ("datadog-archive", "dd:shop/")])
def test_stream_key_is_the_pod_and_container_the_platform_names(wrapper, prefix, compared):
    *_, files, con = compared
    cap = capture("0012_up")
    (key,) = rows(con, "SELECT DISTINCT stream_key FROM log_lines WHERE source_uri = ?", [str(files[wrapper, "0012_up"])])[0]
    assert key.startswith(prefix) and _pod(cap, {"elastic-ndjson": "e", "splunk-json": "j", "gcp-sink": "g",
                                                  "datadog-archive": "d"}[wrapper]) in key
    assert key.endswith(("/migrate", ".log"))


# ------------------------------------------------------------------------------------------- detection, force


def test_ecs_documents_with_kubernetes_fields_are_elastic_not_fluent_bit():
    cap = capture("0012_up")
    doc = plain_json(ecs_doc(cap.lines[0], cap.start, pod="p"))
    fluent = fluent_bit_line(cap.lines[0], cap.start, kube("p"))
    assert (detect(doc.encode()), detect(fluent.encode())) == ("elastic", "kubernetes")


@pytest.mark.parametrize(("envelope", "record"), [
    ("elastic", {"@timestamp": "2026-11-21T23:50:37.101Z", "message": "1/u create_users_table (12.5ms)"}),
    ("datadog", {"date": "2026-11-21T23:50:37.101Z", "message": "1/u create_users_table (12.5ms)"}),
    ("gcp", {"timestamp": "2026-11-21T23:50:37.101Z", "jsonPayload": {"message": "1/u create_users_table (12.5ms)"}}),
    ("splunk", {"result": {"_time": "2026-11-21T23:50:37.101+00:00", "_raw": "1/u create_users_table (12.5ms)",
                           "log": "decoy"}}),
])
def test_format_option_forces_each_export(envelope, record, load, warehouse, tmp_path):
    path = write_lines(tmp_path / "export.jsonl", [plain_json(record)])
    load(path, envelope=envelope)
    assert rows(warehouse, "SELECT format, lines, rejected FROM ingested_sources") == [(envelope, 1, 0)]
    assert rows(warehouse, "SELECT kind, version, duration_ms FROM migrate_events") == [("applied", 1, 12.5)]


# ------------------------------------------------------------------------------------------------- metadata

LABELLED = ("staging", "orders", "tenant_042")


def _labelled(platform: str, dest: Path) -> Path:
    cap = capture("0012_up")
    pairs = list(zip(cap.lines, stamps(cap)))
    if platform == "elastic":
        labels = {"environment": "staging", "app": "orders", "tenant": "tenant_042"}
        return write_lines(dest / "ecs.ndjson", [plain_json(ecs_doc(m, t, pod="m", labels=labels)) for m, t in pairs])
    if platform == "splunk":
        return write_lines(dest / "splunk.json", splunk_json_lines([
            splunk_result(m, t, source="stderr", env="staging", app="orders", db="tenant_042") for m, t in pairs]))
    if platform == "gcp":
        labels = {"k8s-pod/env": "staging", "k8s-pod/app": "orders", "k8s-pod/tenant": "tenant_042"}
        return write_lines(dest / "gcp.json", [plain_json(gcp_entry(t, pod="m", text=m, labels=labels)) for m, t in pairs])
    return write_lines(dest / "dd.json", [plain_json(datadog_record(m, t, pod="m", service="orders",
                                                                    tags=["env:staging", "tenant:tenant_042"]))
                                          for m, t in pairs])


@pytest.mark.parametrize("platform", ["elastic", "splunk", "gcp", "datadog"])
def test_env_service_database_come_from_the_platform_fields(platform, load, warehouse, tmp_path):
    load(_labelled(platform, tmp_path))
    assert rows(warehouse, "SELECT DISTINCT env, service, database FROM log_lines") == [LABELLED]
    assert rows(warehouse, "SELECT env, service, database, outcome FROM runs") == [(*LABELLED, "success")]


@pytest.mark.parametrize(("service", "expected"), [
    ("orders", "orders"),                           # a plain string, as some shippers write it
    ({"name": "orders", "environment": "x"}, "orders"),  # the ECS object
    ({"environment": "x"}, "unknown"),              # an object without a name is no service name
])
def test_ecs_service_is_read_as_an_object_or_a_plain_string(service, expected, load, warehouse, tmp_path):
    cap = capture("0012_up")
    load(write_lines(tmp_path / "ecs.ndjson", [plain_json(ecs_doc(m, t, pod="m", labels={}, service=service))
                                                for m, t in zip(cap.lines, stamps(cap))]))
    assert rows(warehouse, "SELECT DISTINCT service FROM log_lines") == [(expected,)]


@pytest.mark.parametrize("platform", ["elastic", "gcp", "datadog"])
def test_two_pods_in_one_export_are_two_runs(platform, load, warehouse, tmp_path):
    up, down = capture("0012_up"), capture("0019_down_prompt_yes")
    recs = []
    for cap, pod, shift in ((up, "aaaaa", 0), (down, "bbbbb", 1500)):
        for line, t in zip(cap.lines, stamps(cap)):
            t = up.start + (t - cap.start) + timedelta(microseconds=shift)
            rec = {"elastic": lambda: ecs_doc(line, t, pod=pod), "gcp": lambda: gcp_entry(t, pod=pod, text=line),
                   "datadog": lambda: datadog_record(line, t, pod=pod)}[platform]()
            recs.append((t, plain_json(rec)))
    load(write_lines(tmp_path / "mixed.json", [r for _, r in sorted(recs)]))
    assert sorted(rows(warehouse, "SELECT command, applied, outcome FROM runs")) == [
        ("down", 8, "success"), ("up", 6, "success")]


# ------------------------------------------------------------------------------------------------ bad input


def test_a_search_page_larger_than_a_read_block_is_streamed(load, warehouse, tmp_path, monkeypatch):
    monkeypatch.setattr("pipeline.ingest.sources.READ_BLOCK", 4096)
    cap = capture("0033_up_syntax_error")
    docs = [ecs_doc(line, t + timedelta(hours=run), pod="big")  # 30 runs an hour apart: ~90 KiB, one page
            for run in range(30) for line, t in zip(cap.lines, stamps(cap))]
    result = load(write_file(tmp_path / "page.json", es_page(docs, total=len(docs))))
    assert (result.lines, result.stored, result.rejected) == (len(docs), len(docs), 0)
    assert rows(warehouse, "SELECT count(*), min(outcome), max(outcome), sum(applied) FROM runs") == [
        (30, "failed", "failed", 0)]


def test_pages_and_records_of_the_wrong_shape_are_rejected_with_a_reason(load, warehouse, tmp_path):
    cap = capture("0012_up")
    good = [ecs_doc(line, t, pod="w") for line, t in zip(cap.lines, stamps(cap))]
    text = (es_page(good[:3], total=6)
            + json.dumps({"took": 1, "hits": {"hits": {"not": "a list"}}}) + "\n"  # a page of another shape
            + json.dumps({"hits": {"hits": [{"_index": "logs", "_id": "x", "fields": {}}]}}) + "\n"  # no _source
            + json.dumps({"hits": {"hits": [42, {"_index": "l", "_source": good[3]}]}}) + "\n"
            + "\n".join(json.dumps(d) for d in good[4:]) + "\n"  # NDJSON in the same file
            + json.dumps({"@timestamp": "2026-11-21T23:50:40Z", "log": {"level": "info"}}) + "\n"  # no message
            + '{"hits": {"hits": [\n')  # cut off
    result = load(write_file(tmp_path / "mixed.json", text))
    assert rows(warehouse, "SELECT line_no, reason FROM rejects ORDER BY line_no") == [
        (4, "unexpected_shape"), (5, "unexpected_shape"), (6, "unexpected_shape"), (10, "no_message"),
        (11, "malformed_json")]
    assert (result.lines, result.stored, result.rejected) == (11, 6, 5)
    assert rows(warehouse, "SELECT outcome, applied FROM runs") == [("success", 6)]


@pytest.mark.parametrize(("platform", "record", "reason"), [
    ("splunk", {"preview": False, "result": {"_time": "2026-11-21T23:50:37.101+00:00", "host": "h"}}, "no_message"),
    ("gcp", {"timestamp": "2026-11-21T23:50:37Z", "logName": "projects/p/logs/x",
             "protoPayload": {"@type": "type.googleapis.com/google.cloud.audit.AuditLog"}}, "no_message"),
    ("datadog", {"date": "2026-11-21T23:50:37.101Z", "service": "x", "host": "h"}, "no_message"),
    ("datadog", {"date": "not a date", "service": "x", "message": "no change"}, "bad_time"),
    ("splunk", {"result": {"_raw": "no change"}}, "no_time"),
])
def test_an_export_record_without_message_or_time_is_rejected(platform, record, reason, load, warehouse, tmp_path):
    cap = capture("0012_up")
    base = splunk_json_lines([splunk_result(cap.lines[0], cap.start, source="s")]) if platform == "splunk" else [
        plain_json(gcp_entry(cap.start, pod="p", text=cap.lines[0]) if platform == "gcp"
                   else datadog_record(cap.lines[0], cap.start, pod="p"))]
    load(write_lines(tmp_path / "export.json", [*base, plain_json(record)]))
    assert rows(warehouse, "SELECT format, lines, rejected FROM ingested_sources") == [(platform, 2, 1)]
    assert rows(warehouse, "SELECT line_no, reason FROM rejects") == [(2, reason)]


def test_splunk_csv_rows_that_break_are_rejected_and_the_rest_kept(load, warehouse, tmp_path):
    cap = capture("0012_up")
    text = splunk_csv([splunk_result(line, t, source="s") for line, t in zip(cap.lines, stamps(cap))])
    head, *body = text.splitlines(keepends=True)
    text = head + "".join(body[:3]) + '"9","x"\n' + "".join(body[3:]) + '"10","2026-11-21T23:50:40.000+00:00","s","t","h","k8s","i","open\n'
    result = load(write_file(tmp_path / "export.csv", text))
    assert rows(warehouse, "SELECT line_no, reason FROM rejects ORDER BY 1") == [(4, "malformed_csv"), (8, "malformed_csv")]
    assert (result.lines, result.stored) == (8, 6)
    assert rows(warehouse, "SELECT outcome, applied FROM runs") == [("success", 6)]


def test_a_truncated_datadog_archive_keeps_the_lines_before_the_damage(load, warehouse, tmp_path):
    cap = capture("0017_verbose_up")
    data = "".join(plain_json(datadog_record(line, t, pod="t")) + "\n" for line, t in zip(cap.lines, stamps(cap)))
    packed = gzip_bytes(data.encode())
    result = load(write_file(tmp_path / "archive.json.gz", packed[: len(packed) * 2 // 3]))
    kept = rows(warehouse, "SELECT count(*) FROM log_lines")[0][0]
    assert 0 < kept < len(cap.lines) and result.damaged == 1
    reasons = [r for (r,) in rows(warehouse, "SELECT reason FROM rejects ORDER BY line_no")]
    assert reasons[-1] == "truncated_compressed_stream" and set(reasons[:-1]) <= {"truncated_record"}
    assert gzip.decompress(packed).decode() == data


def test_reingesting_unchanged_exports_adds_nothing(load, warehouse, tmp_path):
    files = [helper(capture("0033_up_syntax_error"), tmp_path / w) for w, (helper, _) in WRAPPERS.items()]
    first = load(*files)
    again = load(*files)
    assert (first.sources, first.rejected) == (len(files), 0)
    assert (again.sources, again.skipped, again.lines) == (0, len(files), 0)
    assert rows(warehouse, "SELECT count(*) FROM runs") == [(len(files),)]


def test_nested_lists_and_pages_deeper_than_an_export_are_rejected_not_a_crash(load, warehouse, tmp_path):
    deep = "[" * 900 + "]" * 900
    inner = {"hits": {"hits": [{"_index": "l", "_source": {"@timestamp": "2026-11-21T23:50:37Z", "message": "x"}}]}}
    text = "\n".join([deep, json.dumps([[1, 2], {"_index": "l"}]), json.dumps({"hits": {"hits": [inner]}}),
                      json.dumps({"@timestamp": "2026-11-21T23:50:37.101Z", "message": "no change", "ecs": {}})]) + "\n"
    result = load(write_file(tmp_path / "deep.json", text), envelope="elastic")
    assert result.failed == () and (result.lines, result.stored) == (result.rejected + 1, 1)
    assert {r for (r,) in rows(warehouse, "SELECT DISTINCT reason FROM rejects")} <= {
        "unexpected_shape", "malformed_json", "no_message"}

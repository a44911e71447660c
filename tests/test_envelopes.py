"""The seven envelopes: a real capture wrapped in any of them says what the bare capture says.

Each `wrap_*` helper below ships a real golang-migrate capture (tests/fixtures/real-migrate-logs) the way
that shipper does (docs/log-format.md §6): one record per physical line, envelope times a few
milliseconds apart (tracking the `-verbose` prefix when the capture has one), stream and pod metadata.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from pipeline.api import ingest
from pipeline.core.config import Config, IngestConfig
from pipeline.warehouse import connect
from tests.conftest import rows
from tests.kit.captures import STEP, VERBOSE_PREFIX, Capture, capture, stamps
from tests.kit.envelopes import (
    cloudwatch_event,
    cri_line,
    docker_line,
    event_line,
    filter_log_events,
    fluent_bit_line,
    gzip_bytes,
    kubernetes_meta,
    loki_line,
    plain_json,
    s3_export_line,
    slog_line,
    subscription_payload,
    write_file,
    write_lines,
)
from tests.kit.gofmt import MS, rfc3339nano, to_ns

REPRESENTATIVE = [
    "0012_up",
    "0017_verbose_up",
    "0019_down_prompt_yes",
    "0026_goto_42_missing",
    "0033_up_syntax_error",
    "0035_up_dirty",
    "0043_up_collision",
    "0050_verbose_up_concurrently_fails",
    "0056_down_1_fails",
    "0078_malformed_dsn",
    "0089_holder_verbose_up_slow",
    "0147_cycle08_down_8",
]

CET = 60  # logcli and slog print local time: Europe in November, +01:00


# --------------------------------------------------------------------------------------------------- wrappers


def kube(pod: str, labels: dict | None = None) -> dict:
    """The kubernetes filter's metadata of a `schema-migrate` Job pod in namespace `shop`."""
    return kubernetes_meta(pod, "shop", pod_id="3f1c9a52-6a0e-4b8e-9d55-" + hashlib.md5(pod.encode()).hexdigest()[:12],
                           labels=labels if labels is not None else {"batch.kubernetes.io/job-name": "schema-migrate"},
                           host="ip-10-0-3-17.ec2.internal", docker_id=hashlib.sha256(pod.encode()).hexdigest(),
                           image="docker.io/migrate/migrate:v4.17.1")


def loki_labels(pod: str) -> dict:
    return {"container": "migrate", "job": "shop/schema-migrate", "namespace": "shop", "pod": pod,
            "stream": "stderr"}


def wrap_docker(cap: Capture, dest: Path) -> Path:
    """/var/lib/docker/containers/<id>/<id>-json.log: `log` keeps its newline (`<empty>` is `\\u003cempty\\u003e`)."""
    return write_lines(dest / "containers" / cap.cid / f"{cap.cid}-json.log",
                       [docker_line(line, t) for line, t in zip(cap.lines, stamps(cap))])


def wrap_kubernetes(cap: Capture, dest: Path) -> Path:
    """Fluent Bit `tail` + cri parser + kubernetes filter, `json_lines` output: `log` without newline."""
    meta = kube(f"schema-migrate-{cap.tag}")
    return write_lines(dest / f"fluent-bit-{cap.name}.jsonl",
                       [fluent_bit_line(line, t, meta) for line, t in zip(cap.lines, stamps(cap))])


def wrap_loki(cap: Capture, dest: Path) -> Path:
    """`logcli query --forward --output=jsonl`: keys sorted, timestamp in the local zone."""
    labels = loki_labels(f"schema-migrate-{cap.tag}")
    return write_lines(dest / f"loki-{cap.name}.jsonl",
                       [loki_line(line, t, labels, offset_min=CET) for line, t in zip(cap.lines, stamps(cap))])


def _cw_stream(cap: Capture, form: str) -> str:
    """`prefix/container/task-id`; one task per capture and export form, so the forms never overlap."""
    return f"migrate/migrate/{hashlib.sha256((cap.name + form).encode()).hexdigest()[:32]}"


def _cw_events(cap: Capture, stream: str) -> list[dict]:
    events = []
    for i, (line, t) in enumerate(zip(cap.lines, stamps(cap))):
        ms = to_ns(t) // MS
        events.append(cloudwatch_event(stream, t, line, ingestion_ms=ms + 412,
                                       event_id=f"{ms}{i:06d}{int(cap.tag, 16):08d}"))
    return events


def wrap_loki_raw_cri(cap: Capture, dest: Path) -> Path:
    """Promtail without a `cri` stage: `line` is the node file's CRI line, P/F tag included."""
    labels = loki_labels(f"schema-migrate-{hashlib.sha256((cap.name + 'raw').encode()).hexdigest()[:5]}")
    return write_lines(dest / f"loki-raw-{cap.name}.jsonl",
                       [loki_line(line, t, labels, offset_min=CET) for t, line in _cri_lines(cap)])


def wrap_cloudwatch_filter(cap: Capture, dest: Path) -> Path:
    """`aws logs filter-log-events` output: one pretty-printed document with an `events` list."""
    stream = _cw_stream(cap, "filter")
    text = filter_log_events(_cw_events(cap, stream), [{"logStreamName": stream, "searchedCompletely": True}])
    return write_file(dest / f"filter-log-events-{cap.name}.json", text)


def wrap_cloudwatch_lines(cap: Capture, dest: Path) -> Path:
    """One CloudWatch event per line (`jq -c '.events[]'`)."""
    return write_lines(dest / f"cw-events-{cap.name}.jsonl",
                       [plain_json(ev) for ev in _cw_events(cap, _cw_stream(cap, "lines"))])


def _subscription(cap: Capture, events: list[dict], form: str) -> bytes:
    payload = subscription_payload("/ecs/schema-migrate", _cw_stream(cap, form), events, filters=("to-firehose",))
    return gzip_bytes(plain_json(payload).encode())


def wrap_cloudwatch_subscription(cap: Capture, dest: Path) -> Path:
    """A subscription-filter payload as Lambda receives it: one gzip'd JSON document."""
    return write_file(dest / f"subscription-{cap.name}.json.gz",
                      _subscription(cap, _cw_events(cap, _cw_stream(cap, "lambda")), "lambda"))


def wrap_cloudwatch_firehose(cap: Capture, dest: Path) -> Path:
    """Firehose to S3: payloads of up to 3 events each, gzip'd one by one and concatenated (`}{` inside)."""
    events = _cw_events(cap, _cw_stream(cap, "firehose"))
    members = [_subscription(cap, events[i : i + 3], "firehose") for i in range(0, max(len(events), 1), 3)]
    return write_file(dest / f"firehose-{cap.name}.json.gz", b"".join(members))


def wrap_cloudwatch_container_insights(cap: Capture, dest: Path) -> Path:
    """EKS Container Insights: Fluent Bit ships the whole record, so `message` is JSON to decode again."""
    pod = f"schema-migrate-{cap.tag}"
    stream = f"ip-10-0-3-17.ec2.internal-application.var.log.containers.{pod}_shop_migrate-{cap.cid}.log"
    meta = kube(pod)
    return write_lines(dest / f"container-insights-{cap.name}.jsonl", [
        plain_json({**ev, "message": fluent_bit_line(ev["message"], t, meta)})
        for ev, t in zip(_cw_events(cap, stream), stamps(cap))
    ])


def wrap_slog(cap: Capture, dest: Path) -> Path:
    """A Go program embedding migrate: its Logger.Printf lines as `msg`, the returned error once in `error`.

    The fatal error (its first `error:` line up to the end, SQL body included) is what `m.Up()` returns;
    a non-fatal logErr glued in front of it (`error: Xerror: X`) went through Printf first.
    """
    records: list[str] = []
    times = stamps(cap)
    for i, (line, t) in enumerate(zip(cap.lines, times)):
        msg = VERBOSE_PREFIX.sub("", line)
        if msg.startswith("error: "):
            glued = re.fullmatch(r"error: (.*)error: \1", msg)
            if glued:
                records.append(slog_line(t, "INFO", f"error: {glued[1]}", offset_min=CET))
            err = "\n".join([glued[1] if glued else msg[len("error: "):], *cap.lines[i + 1 :]])
            records.append(slog_line(times[-1], "ERROR", "migrate failed", offset_min=CET, error=err,
                                     component="migrate"))
            break
        records.append(slog_line(t, "INFO", msg, offset_min=CET, component="migrate"))
    return write_lines(dest / f"app-{cap.name}.jsonl", records)


def _cri_lines(cap: Capture) -> list[tuple[datetime, str]]:
    """containerd's node file lines; the longest line is cut into a P and an F piece."""
    longest = max(range(len(cap.lines)), key=lambda i: len(cap.lines[i]))
    out = []
    for i, (line, t) in enumerate(zip(cap.lines, stamps(cap))):
        if i == longest and len(line) >= 2:
            cut = len(line) // 2
            piece_end = t + timedelta(microseconds=40)
            out += [(t, cri_line(line[:cut], t, partial=True)), (piece_end, cri_line(line[cut:], piece_end))]
        else:
            out.append((t, cri_line(line, t)))
    return out


def wrap_text_cri(cap: Capture, dest: Path) -> Path:
    """containerd's node file /var/log/pods/…/migrate/0.log, a long line cut into a P and an F piece."""
    return write_lines(dest / "pods" / f"shop_schema-migrate-{cap.tag}_{cap.cid[:8]}" / "migrate" / "0.log",
                       [line for _, line in _cri_lines(cap)])


def wrap_text_s3_export(cap: Capture, dest: Path) -> Path:
    """CloudWatch `create-export-task` objects: gzip text, `2026-11-21T23:50:37.101Z message` per event."""
    text = "".join(s3_export_line(t, line) + "\n" for line, t in zip(cap.lines, stamps(cap)))
    return write_file(dest / "exportedlogs" / _cw_stream(cap, "s3") / f"{cap.name}-000000.gz", gzip_bytes(text.encode()))


def events_records(cap: Capture, *, run_id: str, exit_code: int | None = None, **meta: str) -> list[str]:
    """A wrapper's migrate-lens/v1 stream: run_start, one `line` per physical line, run_end."""
    times = stamps(cap)
    start = (times[0] if times else cap.start) - timedelta(milliseconds=40)
    end = (times[-1] if times else cap.start) + timedelta(milliseconds=9)
    return [
        event_line(start, run_id, "run_start", meta, command=cap.command, args=list(cap.args)),
        *(event_line(t, run_id, "line", meta, line=line) for line, t in zip(cap.lines, times)),
        event_line(end, run_id, "run_end", meta, exit_code=cap.exit_code if exit_code is None else exit_code),
    ]


def wrap_events(cap: Capture, dest: Path) -> Path:
    return write_lines(dest / f"events-{cap.name}.jsonl",
                       events_records(cap, run_id=f"run-{cap.name}", env="prod", service="billing", database="tenant_017"))


# Shippers beyond the brief's eleven forms, checked on fewer captures (one of each shape) to keep the file fast.
EXTRA_WRAPPERS = {"loki-raw-cri", "cloudwatch-container-insights"}
SHAPES = ["0012_up", "0026_goto_42_missing", "0033_up_syntax_error", "0050_verbose_up_concurrently_fails"]


def captures_for(wrapper: str) -> list[str]:
    return SHAPES if wrapper in EXTRA_WRAPPERS else REPRESENTATIVE


# name -> (helper, the format auto-detection must pick)
WRAPPERS: dict[str, tuple[Callable[[Capture, Path], Path], str]] = {
    "docker": (wrap_docker, "docker"),
    "kubernetes-fluent-bit": (wrap_kubernetes, "kubernetes"),
    "loki-logcli": (wrap_loki, "loki"),
    "loki-raw-cri": (wrap_loki_raw_cri, "loki"),
    "cloudwatch-filter-log-events": (wrap_cloudwatch_filter, "cloudwatch"),
    "cloudwatch-event-per-line": (wrap_cloudwatch_lines, "cloudwatch"),
    "cloudwatch-subscription-gz": (wrap_cloudwatch_subscription, "cloudwatch"),
    "cloudwatch-firehose": (wrap_cloudwatch_firehose, "cloudwatch"),
    "cloudwatch-container-insights": (wrap_cloudwatch_container_insights, "cloudwatch"),
    "slog": (wrap_slog, "slog"),
    "text-cri": (wrap_text_cri, "text"),
    "text-s3-export": (wrap_text_s3_export, "text"),
    "events": (wrap_events, "events"),
}


# ---------------------------------------------------------------------------------------- shared warehouses


def _ingest(con: duckdb.DuckDBPyConnection, *paths: Path | str, **kw):
    kw.setdefault("config", Config())
    return ingest(con, [str(p) for p in paths], progress=False, **kw)


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory):
    """One warehouse holding every representative capture as the bare text it was captured as."""
    con = connect(tmp_path_factory.mktemp("bare") / "bare.duckdb")
    _ingest(con, *(capture(n).bare for n in REPRESENTATIVE))
    yield con
    con.close()


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory):
    """One warehouse holding every representative capture in every wrapper: (warehouse, {(wrapper, capture): file}).

    Loaded in one ingest (each file is its own stream, so nothing collides); a separate warehouse from `bare`.
    """
    root = tmp_path_factory.mktemp("shipped")
    files = {(w, n): helper(capture(n), root / w) for w, (helper, _) in WRAPPERS.items() for n in captures_for(w)}
    con = connect(root / "warehouse.duckdb")
    _ingest(con, *files.values())
    yield con, files
    con.close()


def _streams(con: duckdb.DuckDBPyConnection, source: Path) -> list[str]:
    return [r[0] for r in rows(con, "SELECT DISTINCT stream_key FROM log_lines WHERE source_uri = ?", [str(source)])]


def _events(con: duckdb.DuckDBPyConnection, source: Path) -> list[tuple]:
    return rows(con, """
        SELECT kind, version, direction, own_ms, verbose_mode,
               row_number() OVER (PARTITION BY run_id, kind = 'applied' ORDER BY seq) AS applied_pos
        FROM migrate_events WHERE stream_key IN (SELECT unnest(?::VARCHAR[])) ORDER BY seq
    """, [_streams(con, source)])


def _runs(con: duckdb.DuckDBPyConnection, source: Path) -> list[tuple]:
    return rows(con, "SELECT outcome, applied, error_class FROM runs WHERE stream_key IN (SELECT unnest(?::VARCHAR[]))",
                [_streams(con, source)])


def _by_source(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[list[tuple], list[tuple]]]:
    """`_events` and `_runs` of every source at once (what the 156 comparisons read)."""
    out: dict[str, tuple[list[tuple], list[tuple]]] = {}
    for uri, *event in rows(con, """
        WITH src AS (SELECT DISTINCT source_uri, stream_key FROM log_lines)
        SELECT source_uri, kind, version, direction, own_ms, verbose_mode,
               row_number() OVER (PARTITION BY run_id, kind = 'applied' ORDER BY seq), error_text
        FROM migrate_events JOIN src USING (stream_key) ORDER BY source_uri, seq
    """):
        out.setdefault(uri, ([], []))[0].append(tuple(event))
    for uri, *run in rows(con, """
        WITH src AS (SELECT DISTINCT source_uri, stream_key FROM log_lines)
        SELECT source_uri, outcome, applied, error_class FROM runs JOIN src USING (stream_key)
    """):
        out.setdefault(uri, ([], []))[1].append(tuple(run))
    return out


@pytest.fixture(scope="module")
def compared(bare, shipped) -> tuple[dict, dict]:
    return _by_source(bare), _by_source(shipped[0])


# ------------------------------------------------------------------------------------------------- the tests



def _equivalence_cases() -> list:
    cases = []
    for w in WRAPPERS:
        for n in captures_for(w):
            marks = []
            cases.append(pytest.param(w, n, marks=marks, id=f"{w}-{n}"))
    return cases


@pytest.mark.parametrize(("wrapper", "name"), _equivalence_cases())
def test_wrapped_capture_yields_the_same_events_and_run_as_the_bare_capture(wrapper, name, shipped, compared):
    files = shipped[1]
    want_events, want_runs = compared[0][str(capture(name).bare)]
    got_events, got_runs = compared[1][str(files[wrapper, name])]

    assert [e[:3] for e in got_events] == [e[:3] for e in want_events]  # kind, version, direction
    assert [e[6] for e in got_events] == [e[6] for e in want_events]  # error_text: the whole multi-line error
    assert sum(e[0] == "applied" for e in got_events) == sum(e[0] == "applied" for e in want_events)
    for got, want in zip(got_events, want_events):
        if got[0] == "applied":
            # Past the 10th script of a default-mode run own_ms comes from arrival times, which bare text
            # lacks; no representative capture gets there, so own_ms must agree for every script.
            assert got[4] or got[5] <= 10, "a default-mode run past the -prefetch window needs its own check"
            assert got[3] == pytest.approx(want[3], abs=1.0), (got, want)
    assert len(got_runs) == len(want_runs) == 1
    assert got_runs == want_runs


@pytest.mark.parametrize("wrapper", list(WRAPPERS))
def test_auto_detection_records_each_envelope_format(wrapper, shipped):
    con, files = shipped
    got = rows(con, "SELECT DISTINCT format, rejected, duplicates FROM ingested_sources WHERE source_uri IN "
                    "(SELECT unnest(?::VARCHAR[]))", [[str(files[wrapper, n]) for n in captures_for(wrapper)]])
    assert got == [(WRAPPERS[wrapper][1], 0, 0)]


@pytest.mark.parametrize(("name", "origin"), [("0012_up", "mtime"), ("0017_verbose_up", "verbose")])
def test_bare_text_is_timed_by_the_verbose_prefix_else_by_the_file_mtime(name, origin, bare):
    source = capture(name).bare
    assert rows(bare, "SELECT format FROM ingested_sources WHERE source_uri = ?", [str(source)]) == [("text",)]
    got = rows(bare, "SELECT DISTINCT ts_origin, ts FROM log_lines WHERE source_uri = ?", [str(source)])
    if origin == "mtime":
        mtime = datetime.fromtimestamp(source.stat().st_mtime, UTC).replace(tzinfo=None)
        assert got == [("mtime", mtime)]
    else:
        assert got == [("verbose", datetime(2026, 11, 21, 23, 50, 38))]


# Fluentd with containerd and no kubernetes filter: {"time","stream","logtag","log"} and `log` has no newline.
# Nothing in it says Kubernetes, so detection takes it for Docker (whose newline-less `log` is a 16 KiB piece).
@pytest.mark.parametrize("how", ["argument", "config"])
def test_forced_format_overrides_detection(how, load, warehouse, tmp_path):
    cap = capture("0012_up")
    path = write_lines(tmp_path / "fluentd-containerd.jsonl",
                       [json.dumps({"time": rfc3339nano(t), "stream": "stderr", "logtag": "F", "log": line})
                        for line, t in zip(cap.lines, stamps(cap))])
    if how == "argument":
        load(path, envelope="kubernetes")
    else:
        load(path, config=Config(ingest=IngestConfig(format="kubernetes")))
    assert rows(warehouse, "SELECT format FROM ingested_sources") == [("kubernetes",)]
    assert rows(warehouse, "SELECT outcome, applied FROM runs") == [("success", 6)]
    assert rows(warehouse, "SELECT count(*) FROM migrate_events WHERE kind = 'applied'") == [(6,)]


def test_forcing_a_json_format_on_bare_text_rejects_every_line(load, warehouse):
    result = load(capture("0012_up").bare, envelope="docker")
    assert (result.lines, result.stored, result.rejected) == (6, 0, 6)
    assert rows(warehouse, "SELECT format, lines, rejected FROM ingested_sources") == [("docker", 6, 6)]
    assert rows(warehouse, "SELECT DISTINCT reason FROM rejects") == [("malformed_json",)]


# ------------------------------------------------------------------------------------------------- metadata

RECORD = {"env": "prod", "service": "billing", "database": "tenant_017"}
LABELS = {"env": "staging", "service": "orders", "database": "tenant_042"}
PATH = "env=dev/service=shipping/database=tenant_099"
DEFAULTS = Config(ingest=IngestConfig(default_env="qa", default_service="cfg-service", default_database="cfg-db"))


def meta_file(envelope: str, dest: Path, record: dict, labels: dict, pod: str = "meta") -> Path:
    """The 0012_up capture in `envelope`, its records carrying `record` fields and `labels` where it has them.

    `pod` names the stream (pod, log stream, run id) so that several such files can share a warehouse.
    """
    cap = capture("0012_up")
    pairs = list(zip(cap.lines, stamps(cap)))
    dest.mkdir(parents=True, exist_ok=True)
    if envelope == "docker":  # `--log-opt labels=…` puts the container's labels under `attrs`
        recs = [docker_line(line, t, **({"attrs": labels} if labels else {}), **record) for line, t in pairs]
        return write_lines(dest / f"{cap.cid}-json.log", recs)
    if envelope == "kubernetes":
        meta = kube(f"schema-migrate-{pod}", labels or None)
        return write_lines(dest / "fluent-bit.jsonl", [fluent_bit_line(line, t, meta, **record) for line, t in pairs])
    if envelope == "loki":
        assert not record, "a logcli line has no fields of its own"
        return write_lines(dest / "loki.jsonl", [loki_line(line, t, {**loki_labels(f"schema-migrate-{pod}"), **labels},
                                                           offset_min=CET)
                                           for line, t in pairs])
    assert not labels, f"{envelope} has no labels"
    if envelope == "cloudwatch":
        return write_lines(dest / "cw.jsonl",
                           [plain_json({**ev, **record}) for ev in _cw_events(cap, f"migrate/migrate/{pod}")])
    if envelope == "slog":
        return write_lines(dest / "app.jsonl", [slog_line(t, "INFO", line, offset_min=CET, **record)
                                          for line, t in pairs])
    if envelope == "events":
        return write_lines(dest / "events.jsonl", events_records(cap, run_id=f"run-{pod}", **record))
    assert envelope == "text" and not record
    return wrap_text_cri(cap, dest)


LEVELS = {
    # level: (envelopes where it applies, record, labels, path, config, expected)
    "record": (("docker", "kubernetes", "cloudwatch", "slog", "events"), RECORD, LABELS, PATH, DEFAULTS,
               ("prod", "billing", "tenant_017")),
    "labels": (("docker", "kubernetes", "loki"), {}, LABELS, PATH, DEFAULTS, ("staging", "orders", "tenant_042")),
    "path": (("docker", "kubernetes", "loki", "cloudwatch", "slog", "text", "events"), {}, {}, PATH, DEFAULTS,
             ("dev", "shipping", "tenant_099")),
    "config": (("docker", "kubernetes", "loki", "cloudwatch", "slog", "text", "events"), {}, {}, "", DEFAULTS,
               ("qa", "cfg-service", "cfg-db")),
    "nothing": (("docker", "kubernetes", "loki", "cloudwatch", "slog", "text", "events"), {}, {}, "", Config(),
                ("unknown", "unknown", "unknown")),
}


@pytest.fixture(scope="module")
def meta(tmp_path_factory: pytest.TempPathFactory):
    """(warehouses by config, {(level, envelope): file}): one file per level and envelope the level applies to."""
    root = tmp_path_factory.mktemp("meta")
    files: dict[tuple[str, str], Path] = {}
    warehouses: dict[int, duckdb.DuckDBPyConnection] = {}
    for config in {id(spec[4]): spec[4] for spec in LEVELS.values()}.values():
        batch = []
        for level, (envs, record, labels, path, cfg, _) in LEVELS.items():
            if cfg is not config:
                continue
            for e in envs:
                files[level, e] = meta_file(e, root / level / e / path, record,
                                            labels if e in ("docker", "kubernetes", "loki") else {}, pod=level)
                batch.append(files[level, e])
        warehouses[id(config)] = connect(root / f"warehouse-{len(warehouses)}.duckdb")
        _ingest(warehouses[id(config)], *batch, config=config)
    yield warehouses, files
    for con in warehouses.values():
        con.close()


@pytest.mark.parametrize(("level", "envelope"), [(lv, e) for lv, spec in LEVELS.items() for e in spec[0]])
def test_metadata_comes_from_record_then_labels_then_path_then_config(level, envelope, meta):
    """Each level is tested with every level below it also saying something different."""
    warehouses, files = meta
    con = warehouses[id(LEVELS[level][4])]
    expected = LEVELS[level][5]
    source = str(files[level, envelope])
    assert rows(con, "SELECT format FROM ingested_sources WHERE source_uri = ?", [source]) == [(envelope,)]
    assert rows(con, "SELECT DISTINCT env, service, database FROM log_lines WHERE source_uri = ?", [source]) == [expected]
    assert rows(con, "SELECT env, service, database FROM runs WHERE stream_key IN "
                     "(SELECT stream_key FROM log_lines WHERE source_uri = ?)", [source]) == [expected]


@pytest.mark.parametrize("envelope", ["kubernetes", "loki"])
@pytest.mark.parametrize(("labels", "expected"), [
    ({"environment": "staging", "service_name": "orders", "db": "tenant_042"}, ("staging", "orders", "tenant_042")),
    ({"app": "orders", "tenant": "tenant_042"}, ("unknown", "orders", "tenant_042")),
    ({"app.kubernetes.io/name": "orders"}, ("unknown", "orders", "unknown")),
])
def test_metadata_label_aliases_are_read(envelope, labels, expected, load, warehouse, tmp_path):
    load(meta_file(envelope, tmp_path, {}, labels))
    assert rows(warehouse, "SELECT DISTINCT env, service, database FROM log_lines") == [expected]


def test_metadata_precedence_is_decided_per_field(load, warehouse, tmp_path):
    """env from the record, service from a label, database from the path, nothing from the config."""
    path = meta_file("kubernetes", tmp_path / "database=tenant_099" / "x", {"env": "prod"}, {"app": "orders"})
    load(path, config=DEFAULTS)
    assert rows(warehouse, "SELECT DISTINCT env, service, database FROM log_lines") == [("prod", "orders", "tenant_099")]


# ------------------------------------------------------------------------------------------------- streams


def _rebased(cap: Capture, start: datetime) -> list[datetime]:
    return [start + (t - cap.start) for t in stamps(cap)]


def test_two_pods_in_one_fluent_bit_file_are_two_runs(load, warehouse, tmp_path):
    up, down = capture("0012_up"), capture("0019_down_prompt_yes")
    t0 = up.start
    recs = [(t, fluent_bit_line(line, t, kube("schema-migrate-aaaaa"))) for line, t in zip(up.lines, _rebased(up, t0))]
    recs += [(t, fluent_bit_line(line, t, kube("schema-migrate-bbbbb")))
             for line, t in zip(down.lines, _rebased(down, t0 + timedelta(microseconds=1500)))]
    load(write_lines(tmp_path / "fluent-bit.jsonl", [r for _, r in sorted(recs, key=lambda x: x[0])]))
    assert sorted(rows(warehouse, "SELECT stream_key, command, applied, outcome FROM runs")) == [
        ("k8s:shop/schema-migrate-aaaaa/migrate", "up", 6, "success"),
        ("k8s:shop/schema-migrate-bbbbb/migrate", "down", 8, "success"),
    ]


def test_one_docker_file_is_one_run_whatever_the_stream_field_says(load, warehouse, tmp_path):
    cap = capture("0012_up")
    recs = [docker_line(line, t, stream="stdout" if i % 2 else "stderr")
            for i, (line, t) in enumerate(zip(cap.lines, stamps(cap)))]
    load(write_lines(tmp_path / f"{cap.cid}-json.log", recs))
    assert rows(warehouse, "SELECT count(*), sum(applied) FROM runs") == [(1, 6)]


@pytest.mark.parametrize(("labels_a", "labels_b"), [
    ({**loki_labels("schema-migrate-aaaaa")}, {**loki_labels("schema-migrate-bbbbb")}),
    ({"job": "shop/migrate-orders"}, {"job": "shop/migrate-billing"}),  # no pod/container/instance: the label set
], ids=["pod-labels", "label-set"])
def test_two_loki_label_sets_are_two_runs(labels_a, labels_b, load, warehouse, tmp_path):
    up = capture("0012_up")
    recs = [(t, loki_line(line, t, labels_a, offset_min=CET)) for line, t in zip(up.lines, stamps(up))]
    recs += [(t + timedelta(microseconds=700), loki_line(line, t + timedelta(microseconds=700), labels_b, offset_min=CET))
             for line, t in zip(up.lines, stamps(up))]
    load(write_lines(tmp_path / "loki.jsonl", [r for _, r in sorted(recs, key=lambda x: x[0])]))
    assert rows(warehouse, "SELECT count(*), count(DISTINCT stream_key), sum(applied) FROM runs") == [(2, 2, 12)]
    assert rows(warehouse, "SELECT DISTINCT outcome FROM runs") == [("success",)]


# ------------------------------------------------------------------------------------------------- events



@pytest.mark.parametrize(("name", "outcome", "command"), [
    ("0002_help_flag", "success", "-help"),  # usage text, but exit 0
    ("0003_no_args", "error", None),  # the same usage text, exit 2
    pytest.param("0102_up_killed_sigterm", "interrupted", "up"),  # SIGTERM (-15), no line
    ("0039_force_8", "success", "force"),  # force prints nothing without -verbose
])
def test_events_run_end_exit_code_decides_what_the_text_cannot(name, outcome, command, load, warehouse, tmp_path):
    cap = capture(name)
    load(write_lines(tmp_path / "events.jsonl", events_records(cap, run_id="run-1", env="prod", service="billing")))
    assert rows(warehouse, "SELECT run_id, outcome, command, exit_code, env, service FROM runs") == [
        ("run-1", outcome, command, cap.exit_code, "prod", "billing")
    ]


@pytest.mark.parametrize(("name", "keep", "exit_code", "expected"), [
    # -verbose, SIGTERM while script 9 runs: the lines stop after `Read and execute 9/u`
    ("0089_holder_verbose_up_slow", 3, -15, (0, True, 9)),
    # default mode, SIGTERM (143) after the last APPLIED line: only the exit code says it was killed
    pytest.param("0012_up", 6, 143, (6, False, None)),
    # the wrapper itself died: run_start and lines, never a run_end
    pytest.param("0012_up", 6, None, (6, False, None)),
], ids=["verbose-killed-mid-script", "default-mode-exit-143", "no-run-end"])
def test_events_run_cut_short_is_interrupted(name, keep, exit_code, expected, load, warehouse, tmp_path):
    """(applied, left_dirty, dirty_version) as expected, and the outcome `interrupted`."""
    cap = capture(name)
    cut = Capture(cap.name, cap.lines[:keep], exit_code if exit_code is not None else 0, cap.start, cap.command, cap.args)
    records = events_records(cut, run_id="run-k")
    load(write_lines(tmp_path / "events.jsonl", records if exit_code is not None else records[:-1]))
    assert rows(warehouse, "SELECT outcome, applied, left_dirty, dirty_version FROM runs") == [("interrupted", *expected)]


def test_events_run_start_args_are_redacted(load, warehouse, tmp_path):
    cap = capture("0012_up")
    leaky = Capture(cap.name, cap.lines, 0, cap.start, "up",
                    ("-path", "/srv/mig/app", "-database", "postgres://appuser:hunter2@db:5432/app", "up"))
    load(write_lines(tmp_path / "events.jsonl", events_records(leaky, run_id="run-r")))
    (attrs,) = rows(warehouse, "SELECT attrs FROM log_lines WHERE record = 'run_start'")[0]
    assert "postgres://appuser:***@db:5432/app" in attrs and "hunter2" not in attrs


# ---------------------------------------------------------------------------------------- pieces and repeats

HUGE = "error: migration failed: syntax error at end of input in line 1: INSERT INTO lookup (code) VALUES " + ", ".join(
    f"('c{i:05d}')" for i in range(2000)) + ","  # one physical line of ~24 KiB
DETAILS = " (details: pq: syntax error at end of input)"


def _pieces(t: datetime) -> list[tuple[str, bool, datetime]]:
    """HUGE cut where the runtime cuts it (16 KiB), then the details line: (text, is_partial, time)."""
    return [(HUGE[:16384], True, t), (HUGE[16384:], False, t), (DETAILS, False, t + STEP)]


def _pieces_file(shipper: str, dest: Path) -> Path:
    t0 = capture("0033_up_syntax_error").start
    parts = _pieces(t0)
    if shipper == "docker":
        return write_lines(dest / "c0ffee-json.log", [docker_line(text, t, partial=partial) for text, partial, t in parts])
    if shipper == "kubernetes":
        meta = kube("schema-migrate-p")
        return write_lines(dest / "fluent-bit.jsonl",
                           [fluent_bit_line(text, t, meta, partial=partial) for text, partial, t in parts])
    cri = [cri_line(text, t, partial=partial) for text, partial, t in parts]
    if shipper == "loki-raw-cri":  # no cri stage in Promtail: `line` is the node file's line
        return write_lines(dest / "loki.jsonl", [loki_line(line, t, loki_labels("schema-migrate-p"), offset_min=CET)
                                                 for line, (_, _, t) in zip(cri, parts)])
    return write_lines(dest / "0.log", cri)


@pytest.mark.parametrize("shipper", ["docker", "kubernetes", "text-cri", "loki-raw-cri"])
def test_a_line_over_16_kib_cut_into_pieces_is_joined_into_one_event(shipper, load, warehouse, tmp_path):
    load(_pieces_file(shipper, tmp_path))
    assert rows(warehouse, "SELECT count(*), count(*) FILTER (WHERE partial) FROM log_lines") == [(3, 1)]
    assert rows(warehouse, "SELECT kind, error_class, sql_line, line_count, error_text FROM migrate_events") == [
        ("migration_failed", "syntax_error", 1, 3, HUGE.removeprefix("error: ") + "\n" + DETAILS)
    ]
    assert rows(warehouse, "SELECT count(*), max(outcome) FROM runs") == [(1, "failed")]


def test_overlapping_loki_exports_store_each_line_once(load, warehouse, tmp_path):
    cap = capture("0033_up_syntax_error")  # 7 lines
    recs = [loki_line(line, t, loki_labels("schema-migrate-x"), offset_min=CET) for line, t in zip(cap.lines, stamps(cap))]
    first = write_lines(tmp_path / "export-1.jsonl", recs[:5])
    second = write_lines(tmp_path / "export-2.jsonl", recs[2:])  # the same window, re-exported: 3 records shared
    result = load(first, second)
    assert (result.lines, result.stored, result.duplicates) == (10, 7, 3)
    assert rows(warehouse, "SELECT source_uri, lines, duplicates FROM ingested_sources ORDER BY 1") == [
        (str(first), 5, 0), (str(second), 5, 3)]
    assert rows(warehouse, "SELECT count(*), count(DISTINCT line_id) FROM log_lines") == [(7, 7)]
    assert rows(warehouse, "SELECT kind, line_count FROM migrate_events") == [("migration_failed", 7)]


def test_identical_lines_at_one_timestamp_in_one_file_are_both_kept_and_overlaps_still_dedupe(load, warehouse, tmp_path):
    t = capture("0043_up_collision").start
    lines = [('error: migration failed: duplicate key value violates unique constraint "t_pkey" in line 2: '
              "INSERT INTO t VALUES (1);"), "INSERT INTO t VALUES (1);", "INSERT INTO t VALUES (1);",
             ' (details: pq: duplicate key value violates unique constraint "t_pkey")']
    recs = [loki_line(line, when, loki_labels("schema-migrate-x"), offset_min=CET)
            for line, when in zip(lines, [t, t + STEP, t + STEP, t + 2 * STEP])]
    whole = write_lines(tmp_path / "export-1.jsonl", recs)
    overlap = write_lines(tmp_path / "export-2.jsonl", recs[1:3])  # the repeated pair again, from a second export
    load(whole, overlap)
    assert rows(warehouse, "SELECT source_uri, lines, duplicates FROM ingested_sources ORDER BY 1") == [
        (str(whole), 4, 0), (str(overlap), 2, 2)]
    assert rows(warehouse, "SELECT count(*) FROM log_lines WHERE message = 'INSERT INTO t VALUES (1);'") == [(2,)]
    (text,) = rows(warehouse, "SELECT error_text FROM migrate_events")[0]
    assert text.count("INSERT INTO t VALUES (1);") == 3  # the head's own statement, then the body twice


# ----------------------------------------------------------------------------------------------- re-ingest

TABLES = ("ingested_sources", "log_lines", "rejects", "migrate_events", "runs")


def _counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    return {t: rows(con, f"SELECT count(*) FROM {t}")[0][0] for t in TABLES}


def test_reingesting_unchanged_files_adds_nothing(load, warehouse, tmp_path):
    files = [helper(capture(n), tmp_path / f"{w}-{n}") for w, (helper, _) in WRAPPERS.items()
             for n in ("0033_up_syntax_error", "0017_verbose_up")]
    first = load(*files)
    before = _counts(warehouse)
    again = load(*files)
    assert (first.sources, first.skipped, first.rejected) == (len(files), 0, 0)
    assert (again.sources, again.skipped, again.lines, again.stored, again.rejected, again.runs) == (0, len(files), 0, 0, 0, 0)
    assert _counts(warehouse) == before
    assert before["runs"] == len(files)


def _changing_docker_file(tmp_path: Path) -> tuple[Path, list[str]]:
    cap = capture("0012_up")
    recs = [docker_line(line, t) for line, t in zip(cap.lines, stamps(cap))]
    path = tmp_path / f"{cap.cid}-json.log"
    path.write_text("".join(r + "\n" for r in recs[:3]) + '{"log":"3/u add_users\n', encoding="utf-8")
    return path, recs[3:]


def test_a_grown_file_is_reread_adding_only_its_new_lines(load, warehouse, tmp_path):
    path, rest = _changing_docker_file(tmp_path)
    load(path)
    old_ids = rows(warehouse, "SELECT line_id FROM log_lines ORDER BY line_no")
    with path.open("a", encoding="utf-8") as f:
        f.write("".join(r + "\n" for r in rest))
    result = load(path)
    assert (result.sources, result.skipped) == (1, 0)
    assert rows(warehouse, "SELECT lines, rejected, duplicates FROM ingested_sources") == [(7, 1, 0)]
    assert rows(warehouse, "SELECT line_no, reason FROM rejects") == [(4, "malformed_json")]
    assert rows(warehouse, "SELECT line_id FROM log_lines ORDER BY line_no")[:3] == old_ids
    assert rows(warehouse, "SELECT count(*) FROM log_lines") == [(6,)]
    assert rows(warehouse, "SELECT applied, outcome FROM runs") == [(6, "success")]


def test_a_grown_file_reports_only_its_appended_lines_as_new(load, warehouse, tmp_path):
    path, rest = _changing_docker_file(tmp_path)
    load(path)
    first_load = rows(warehouse, "SELECT DISTINCT load_id FROM log_lines")
    with path.open("a", encoding="utf-8") as f:
        f.write("".join(r + "\n" for r in rest))
    result = load(path)
    assert result.stored == 3
    assert rows(warehouse, "SELECT DISTINCT load_id FROM log_lines WHERE line_no <= 3") == first_load


def test_verbose_run_killed_before_its_first_script_is_interrupted(load, warehouse, tmp_path):
    path = tmp_path / "killed.log"
    path.write_text("2026/11/21 23:50:44 Start buffering 9/u backfill_user_stats\n"
                    "2026/11/21 23:50:44 Start buffering 10/u rebuild_order_totals\n", encoding="utf-8")
    load(path)
    assert rows(warehouse, "SELECT outcome, applied, left_dirty FROM runs") == [("interrupted", 0, False)]


@pytest.mark.parametrize("name", ["0033_up_syntax_error", "0147_cycle08_down_8"])
@pytest.mark.parametrize("shipping", ["loki-newest-first", "s3-export-unsorted"])
def test_records_out_of_time_order_are_put_back_in_order(shipping, name, bare, load, warehouse, tmp_path):
    """logcli prints newest first unless --forward; AWS says export files are not time-sorted."""
    cap = capture(name)
    if shipping == "loki-newest-first":
        path = wrap_loki(cap, tmp_path)
        path.write_text("".join(reversed(path.read_text(encoding="utf-8").splitlines(keepends=True))), encoding="utf-8")
    else:
        path = wrap_text_s3_export(cap, tmp_path)
        lines = gzip.decompress(path.read_bytes()).splitlines(keepends=True)
        path.write_bytes(gzip_bytes(b"".join(lines[1::2] + lines[::2])))
    load(path)
    assert [e[:4] for e in _events(warehouse, path)] == [e[:4] for e in _events(bare, cap.bare)]
    assert _runs(warehouse, path) == _runs(bare, cap.bare)


def test_slog_msg_keeps_no_newline_from_migrate_printf(load, warehouse, tmp_path):
    """A migrate.Logger adapter `Printf(f, v...) { slog.Info(fmt.Sprintf(f, v...)) }` logs migrate's own `\\n`."""
    cap = capture("0012_up")
    load(write_lines(tmp_path / "app.jsonl", [slog_line(t, "INFO", line + "\n", offset_min=CET)
                                        for line, t in zip(cap.lines, stamps(cap))]))
    assert rows(warehouse, "SELECT DISTINCT right(message, 1) <> chr(10) FROM log_lines") == [(True,)]
    assert rows(warehouse, "SELECT outcome, applied FROM runs") == [("success", 6)]

"""`cloudwatch://LOG_GROUP` pulled with FilterLogEvents from a real CloudWatch Logs API over HTTP on 127.0.0.1
(moto's server mode). Answers moto cannot give (access denied: it does not enforce IAM; a dropped connection)
come from a loopback proxy in front of it (tests/kit/proxy.py)."""

from __future__ import annotations

import json
import socket
import time
import urllib.request
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from moto.server import ThreadedMotoServer

from pipeline.api import ingest
from pipeline.core.config import Config, IngestConfig
from pipeline.core.errors import SourceError
from pipeline.warehouse import connect
from tests.conftest import rows
from tests.kit.captures import capture, stamps
from tests.kit.proxy import Proxy

pytestmark = pytest.mark.slow  # a moto server per test

GROUP = "/ecs/schema-migrate"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def logs(monkeypatch):
    """A moto server on 127.0.0.1, a CloudWatch Logs client on it, and the AWS variables pointing at it."""
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"))  # one state per process
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "eu-west-1", "AWS_ENDPOINT_URL": endpoint}.items():
        monkeypatch.setenv(key, value)
    client = boto3.client("logs", endpoint_url=endpoint)
    client.create_log_group(logGroupName=GROUP)
    yield client, endpoint
    server.stop()


def _put(client, stream: str, name: str, start: datetime) -> list[dict]:
    """A real capture as the awslogs driver ships it: one event per line, times rebased to `start`."""
    cap = capture(name)
    try:
        client.create_log_stream(logGroupName=GROUP, logStreamName=stream)
    except client.exceptions.ResourceAlreadyExistsException:
        pass
    events = [{"timestamp": int((start + (t - cap.start)).timestamp() * 1000), "message": line}
              for line, t in zip(cap.lines, stamps(cap))]
    client.put_log_events(logGroupName=GROUP, logStreamName=stream, logEvents=events)
    return events


def _ingest(con, *specs: str, **kw):
    kw.setdefault("config", Config())
    return ingest(con, list(specs), progress=False, **kw)


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def test_a_log_group_is_read_like_the_bare_captures(logs, tmp_path):
    client, _ = logs
    t0 = _now() - timedelta(minutes=30)
    _put(client, "migrate/migrate/task-a", "0012_up", t0)
    _put(client, "migrate/migrate/task-b", "0033_up_syntax_error", t0 + timedelta(minutes=5))
    _put(client, "other/app/task-c", "0019_down_prompt_yes", t0)
    con = connect(tmp_path / "w.duckdb")
    result = _ingest(con, f"cloudwatch://{GROUP}?prefix=migrate/")
    assert (result.sources, result.lines, result.stored, result.rejected, result.failed) == (2, 13, 13, 0, ())
    assert sorted(rows(con, "SELECT stream_key, outcome, applied, error_class FROM runs")) == [
        (f"cw:{GROUP}:migrate/migrate/task-a", "success", 6, None),
        (f"cw:{GROUP}:migrate/migrate/task-b", "failed", 0, "syntax_error")]
    uris = [u for (u,) in rows(con, "SELECT source_uri FROM ingested_sources WHERE format = 'cloudwatch' ORDER BY 1")]
    assert len(uris) == 2 and uris[0].startswith("cloudwatch:///ecs/schema-migrate?stream=migrate/migrate/task-a&from=")
    bare = connect(tmp_path / "bare.duckdb")
    _ingest(bare, str(capture("0033_up_syntax_error").bare))
    assert rows(con, "SELECT error_text FROM migrate_events WHERE kind = 'migration_failed'") == \
        rows(bare, "SELECT error_text FROM migrate_events WHERE kind = 'migration_failed'")
    con.close()
    bare.close()


def test_next_run_reads_only_what_is_new_including_late_events_and_stores_nothing_twice(logs, tmp_path):
    client, _ = logs
    t0 = _now() - timedelta(minutes=30)
    first_events = _put(client, "migrate/migrate/task-a", "0012_up", t0)
    _put(client, "migrate/migrate/task-b", "0019_down_prompt_yes", t0)
    con = connect(tmp_path / "w.duckdb")
    spec = f"cloudwatch://{GROUP}"
    first = _ingest(con, spec)
    assert (first.sources, first.stored) == (2, 6 + len(capture("0019_down_prompt_yes").lines))
    again = _ingest(con, spec)
    assert (again.sources, again.skipped, again.lines, again.stored) == (0, 2, 0, 0)
    # A later run in stream a, and a line of the first run that reached CloudWatch late (stamped as its last line).
    later = _put(client, "migrate/migrate/task-a", "0013_up_again_nochange", t0 + timedelta(minutes=10))
    last_ms = max(e["timestamp"] for e in first_events)
    client.put_log_events(logGroupName=GROUP, logStreamName="migrate/migrate/task-a",
                          logEvents=[{"timestamp": last_ms, "message": "Closing source and database"}])
    third = _ingest(con, spec)
    assert (third.sources, third.skipped) == (1, 1)
    # every event read is stored or known: the overlap asked again (the first run's lines) counts as duplicate
    assert third.stored == len(later) + 1 and third.lines == third.stored + third.duplicates
    assert third.duplicates == len(first_events)
    assert rows(con, "SELECT count(*), count(DISTINCT line_id) FROM log_lines") == [(first.stored + third.stored,) * 2]
    assert sorted(rows(con, "SELECT outcome, applied FROM runs WHERE stream_key LIKE '%task-a'")) == [("no_change", 0), ("success", 6)]
    fourth = _ingest(con, spec)
    assert (fourth.sources, fourth.stored) == (0, 0)
    con.close()


def test_an_event_refused_before_and_asked_again_in_the_overlap_is_a_duplicate_not_a_second_reject(logs, tmp_path):
    client, _ = logs
    t0 = _now() - timedelta(minutes=30)
    events = _put(client, "migrate/migrate/task-a", "0012_up", t0)
    # the run's first line is stamped before the earliest plausible time: refused (bad_time), with its eventId
    config = Config(ingest=IngestConfig(earliest_time=datetime.fromtimestamp(events[1]["timestamp"] / 1000, UTC)))
    con = connect(tmp_path / "w.duckdb")
    spec = f"cloudwatch://{GROUP}"
    first = _ingest(con, spec, config=config)
    assert (first.lines, first.stored, first.rejected) == (len(events), len(events) - 1, 1)
    [(raw,)] = rows(con, "SELECT raw FROM rejects WHERE reason = 'bad_time'")
    assert json.loads(raw)["message"] == events[0]["message"] and json.loads(raw)["eventId"]
    # one more line a second later: the next pull asks again for the lookback before the last event (all of
    # the first run), a window of its own (another source_uri)
    client.put_log_events(logGroupName=GROUP, logStreamName="migrate/migrate/task-a", logEvents=[
        {"timestamp": max(e["timestamp"] for e in events) + 1000, "message": "Closing source and database"}])
    second = _ingest(con, spec, config=config)
    assert (second.lines, second.stored, second.rejected, second.duplicates) == (len(events) + 1, 1, 0, len(events))
    assert rows(con, "SELECT count(*), count(DISTINCT source_uri) FROM rejects") == [(1, 1)]
    # each event counts once over both windows: stored, or refused once
    assert rows(con, "SELECT count(*), sum(rejected), sum(lines - rejected - duplicates) FROM ingested_sources") == [
        (2, 1, len(events))]
    con.close()


def test_since_bounds_what_is_asked_for(logs, tmp_path):
    client, _ = logs
    now = _now()
    _put(client, "migrate/migrate/old", "0012_up", now - timedelta(hours=3))
    _put(client, "migrate/migrate/new", "0033_up_syntax_error", now - timedelta(minutes=20))
    con = connect(tmp_path / "w.duckdb")
    result = _ingest(con, f"cloudwatch://{GROUP}", since=now - timedelta(hours=1))
    assert (result.sources, result.stored) == (1, 7)
    assert rows(con, "SELECT DISTINCT stream_key FROM log_lines") == [(f"cw:{GROUP}:migrate/migrate/new",)]
    con.close()


def test_a_missing_group_and_missing_credentials_are_one_line_errors(logs, tmp_path, monkeypatch):
    con = connect(tmp_path / "w.duckdb")
    with pytest.raises(SourceError, match=r"^cloudwatch:///ecs/nope: log group '/ecs/nope' does not exist "
                                          r"\(check the name and AWS_REGION\)$"):
        _ingest(con, "cloudwatch:///ecs/nope")
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(SourceError, match=r"^cloudwatch:///ecs/schema-migrate: no AWS credentials found \(set "
                                          r"AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"):
        _ingest(con, f"cloudwatch://{GROUP}")
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{_free_port()}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with pytest.raises(SourceError, match=r"cannot reach CloudWatch Logs .*check AWS_ENDPOINT_URL"):
        _ingest(con, f"cloudwatch://{GROUP}")
    con.close()


def _target(req) -> str:
    return req.headers.get("x-amz-target", "")


def test_access_denied_is_a_one_line_error(logs, tmp_path, monkeypatch):
    _, endpoint = logs

    def deny(req):
        body = json.dumps({"__type": "AccessDeniedException", "message": "User: arn:aws:iam::123456789012:user/ci "
                           "is not authorized to perform: logs:DescribeLogStreams"}).encode()
        return 400, {"Content-Type": "application/x-amz-json-1.1", "x-amzn-ErrorType": "AccessDeniedException"}, body

    with Proxy(endpoint, deny) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        con = connect(tmp_path / "w.duckdb")
        with pytest.raises(SourceError, match=r"^cloudwatch:///ecs/schema-migrate: access denied to log group "
                                              r"'/ecs/schema-migrate' \(AccessDeniedException; the credentials need "
                                              r"logs:DescribeLogStreams and logs:FilterLogEvents on it\)$"):
            _ingest(con, f"cloudwatch://{GROUP}")
        assert any("DescribeLogStreams" in _target(r) for r in proxy.seen)
        con.close()


def test_a_flapping_endpoint_is_retried_and_a_stream_that_stays_down_is_read_next_run(logs, tmp_path, monkeypatch):
    client, endpoint = logs
    t0 = _now() - timedelta(minutes=30)
    _put(client, "migrate/migrate/task-a", "0012_up", t0)
    _put(client, "migrate/migrate/task-b", "0033_up_syntax_error", t0)
    drops = {"a": 0}

    def flap(req):
        if "FilterLogEvents" not in _target(req):
            return None
        if b"task-b" in req.body:
            return "drop"  # stream b's reads never get an answer this run
        drops["a"] += 1
        return "drop" if drops["a"] <= 2 else None  # stream a's first two attempts are cut, the third answers

    con = connect(tmp_path / "w.duckdb")
    with Proxy(endpoint, flap) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        started = time.monotonic()
        broken = _ingest(con, f"cloudwatch://{GROUP}")
        assert time.monotonic() - started < 60
    assert (broken.sources, broken.stored) == (1, 6)
    assert len(broken.failed) == 1 and "stream 'migrate/migrate/task-b'" in broken.failed[0]
    assert "retried next run" in broken.failed[0] and "\n" not in broken.failed[0]
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    healed = _ingest(con, f"cloudwatch://{GROUP}")
    assert (healed.sources, healed.skipped, healed.stored, healed.failed) == (1, 1, 7, ())
    assert sorted(rows(con, "SELECT outcome FROM runs")) == [("failed",), ("success",)]
    con.close()


def test_the_cli_prints_a_missing_group_as_one_error_line(logs, tmp_path):
    from click.testing import CliRunner

    from pipeline.cli import main
    result = CliRunner().invoke(main, ["--db", str(tmp_path / "w.duckdb"), "--no-progress", "ingest",
                                       "cloudwatch:///ecs/nope?prefix=migrate/"])
    assert result.exit_code == 1
    assert result.stderr == ("Error: cloudwatch:///ecs/nope?prefix=migrate/: log group '/ecs/nope' does not exist "
                             "(check the name and AWS_REGION)\n")


def test_lookback_is_configurable_and_described():
    field = IngestConfig.model_fields["cloudwatch_lookback_seconds"]
    assert Config().ingest.cloudwatch_lookback_seconds == 300.0 and "late" in (field.description or "")

"""Object storage through fsspec/s3fs against a real S3 API over HTTP on 127.0.0.1 (moto's server mode)."""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest
import s3fs
from moto.server import ThreadedMotoServer

from pipeline.api import ingest
from pipeline.core.config import Config
from pipeline.core.errors import SourceError
from pipeline.warehouse import connect

from .conftest import SAMPLE_LOGS, rows

pytestmark = pytest.mark.slow  # a moto S3 server per test

# One file per envelope and compression from the demo fleet, uploaded under a date-partitioned prefix.
FILES = {
    "docker/env=dev/service=billing/database=billing": "docker/env=dev/service=billing/database=billing",
    "kubernetes/orders-2026-W45.jsonl": "kubernetes/orders-2026-W45.jsonl",
    "loki/billing-staging-2026-W45.jsonl": "loki/billing-staging-2026-W45.jsonl",
    "loki/billing-staging-2026-W45-rerun.jsonl": "loki/billing-staging-2026-W45-rerun.jsonl",
    "slog/identity-prod.jsonl.zst": "slog/identity-prod.jsonl.zst",
    "text/cloudwatch-export": "text/cloudwatch-export",
    "cloudwatch/env=prod/service=billing/database=tenant_008": "cloudwatch/env=prod/service=billing/database=tenant_008",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def s3(monkeypatch):
    """A moto S3 server on 127.0.0.1 and a client; the AWS variables point at it."""
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint}.items():
        monkeypatch.setenv(key, value)
    s3fs.S3FileSystem.clear_instance_cache()
    client = boto3.client("s3", endpoint_url=endpoint)
    client.create_bucket(Bucket="logs")
    yield client, endpoint
    s3fs.S3FileSystem.clear_instance_cache()
    server.stop()


def _upload(client, prefix: str = "migrate/dt=2026-11-12") -> list[Path]:
    local = []
    for name in FILES.values():
        path = SAMPLE_LOGS / name
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        for file in sorted(files):
            if file.name == "empty-json.log":
                continue
            key = f"{prefix}/{file.relative_to(SAMPLE_LOGS).as_posix()}"
            client.put_object(Bucket="logs", Key=key, Body=file.read_bytes())
            local.append(file)
    return local


def _counts(con) -> tuple:
    return rows(con, "SELECT (SELECT count(*) FROM log_lines), (SELECT count(*) FROM rejects), "
                     "(SELECT count(*) FROM migrate_events), (SELECT count(*) FROM runs), "
                     "(SELECT sum(duplicates) FROM ingested_sources)")[0]


def test_s3_ingest_counts_equal_the_same_files_ingested_locally(s3, tmp_path):
    client, _ = s3
    local_files = _upload(client)
    remote = connect(tmp_path / "s3.duckdb")
    result = ingest(remote, ["s3://logs/migrate/"], config=Config(), progress=False)
    assert result.sources == len(local_files) and result.failed == ()
    local = connect(tmp_path / "local.duckdb")
    ingest(local, [str(f) for f in local_files], config=Config(), progress=False)
    assert _counts(remote) == _counts(local)
    assert rows(remote, "SELECT DISTINCT format FROM ingested_sources ORDER BY 1") == \
        rows(local, "SELECT DISTINCT format FROM ingested_sources ORDER BY 1")
    # Hive segments of object keys give metadata too.
    assert rows(remote, "SELECT count(*) FROM runs WHERE database = 'tenant_008'")[0][0] > 0
    assert all(uri.startswith("s3://logs/migrate/") for (uri,) in rows(remote, "SELECT source_uri FROM ingested_sources"))
    remote.close()
    local.close()


def test_rerun_reads_only_new_or_changed_objects(s3, tmp_path):
    client, _ = s3
    _upload(client)
    con = connect(tmp_path / "w.duckdb")
    first = ingest(con, ["s3://logs/migrate/"], config=Config(), progress=False)
    again = ingest(con, ["s3://logs/migrate/"], config=Config(), progress=False)
    assert (again.sources, again.skipped, again.lines) == (0, first.sources, 0)
    client.put_object(Bucket="logs", Key="migrate/dt=2026-11-13/extra.log", Body=b"no change\n")
    added = ingest(con, ["s3://logs/migrate/"], config=Config(), progress=False)
    assert (added.sources, added.skipped, added.stored) == (1, first.sources, 1)
    client.put_object(Bucket="logs", Key="migrate/dt=2026-11-13/extra.log", Body=b"1/u a (2ms)\n2/u b (4ms)\n")
    changed = ingest(con, ["s3://logs/migrate/"], config=Config(), progress=False)
    assert (changed.sources, changed.stored) == (1, 2)
    assert rows(con, "SELECT count(*) FROM log_lines WHERE source_uri LIKE '%extra.log'") == [(2,)]
    con.close()


def test_globs_and_since_bound_a_date_partitioned_prefix(s3, tmp_path):
    client, _ = s3
    for day in ("2026-11-01", "2026-11-12"):
        client.put_object(Bucket="logs", Key=f"part/dt={day}/a.log", Body=b"no change\n")
        client.put_object(Bucket="logs", Key=f"part/dt={day}/b.jsonl", Body=b'{"log":"no change\\n","time":"2026-11-12T10:00:00Z"}\n')
    con = connect(tmp_path / "w.duckdb")
    only_json = ingest(con, ["s3://logs/part/*/*.jsonl"], config=Config(), progress=False)
    assert only_json.sources == 2
    recent = ingest(con, ["s3://logs/part/"], config=Config(), progress=False, since=datetime(2026, 11, 10, tzinfo=UTC))
    assert recent.sources == 1 and recent.skipped == 1  # dt=2026-11-01 left out; the .jsonl of the 12th known
    con.close()


def test_missing_bucket_and_unreachable_endpoint_are_clear_errors(s3, tmp_path, monkeypatch):
    con = connect(tmp_path / "w.duckdb")
    with pytest.raises(SourceError, match=r"s3://nope/x: bucket 'nope' does not exist"):
        ingest(con, ["s3://nope/x"], config=Config(), progress=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{_free_port()}")
    s3fs.S3FileSystem.clear_instance_cache()
    with pytest.raises(SourceError, match=r"s3://logs/migrate: cannot reach the object store .*AWS_ENDPOINT_URL"):
        ingest(con, ["s3://logs/migrate"], config=Config(), progress=False)
    con.close()


def test_denied_listing_is_a_clear_error(s3, tmp_path, monkeypatch):
    import s3fs

    def denied(self, *args, **kwargs):
        raise PermissionError(13, "Access Denied")

    monkeypatch.setattr(s3fs.S3FileSystem, "find", denied)
    monkeypatch.setattr(s3fs.S3FileSystem, "isdir", lambda self, path: True)
    con = connect(tmp_path / "w.duckdb")
    with pytest.raises(SourceError, match=r"permission denied \(check the credentials and the bucket policy\)"):
        ingest(con, ["s3://logs/migrate/"], config=Config(), progress=False)
    con.close()


def test_an_object_that_breaks_mid_read_is_left_out_whole_and_retried_next_run(s3, tmp_path, monkeypatch):
    client, _ = s3
    _upload(client)
    import s3fs

    real_open = s3fs.S3FileSystem._open
    calls = {"n": 0}

    def flaky(self, path, *args, **kwargs):
        handle = real_open(self, path, *args, **kwargs)
        if "orders-2026-W45" in path:
            calls["n"] += 1
            real_read = handle.read
            state = {"reads": 0}

            def read(*a, **k):
                state["reads"] += 1
                if state["reads"] > 1:  # the connection drops after the first block
                    raise ConnectionResetError(104, "Connection reset by peer")
                return real_read(*a, **k)

            handle.read = read
        return handle

    monkeypatch.setattr(s3fs.S3FileSystem, "_open", flaky)
    monkeypatch.setattr("pipeline.ingest.BACKOFF_SECONDS", 0.01)
    monkeypatch.setattr("pipeline.ingest.sources.READ_BLOCK", 4096)
    con = connect(tmp_path / "w.duckdb")
    broken = ingest(con, ["s3://logs/migrate/"], config=Config(), progress=False)
    assert len(broken.failed) == 1 and "orders-2026-W45" in broken.failed[0] and "ConnectionResetError" in broken.failed[0]
    assert calls["n"] >= 3  # retried with backoff before giving up
    assert rows(con, "SELECT count(*) FROM log_lines WHERE source_uri LIKE '%orders-2026-W45%'") == [(0,)]
    assert rows(con, "SELECT count(*) FROM ingested_sources WHERE source_uri LIKE '%orders-2026-W45%'") == [(0,)]
    assert rows(con, "SELECT count(*) FROM pending_sources") == [(0,)]
    assert broken.sources > 5
    monkeypatch.setattr(s3fs.S3FileSystem, "_open", real_open)
    healed = ingest(con, ["s3://logs/migrate/"], config=Config(), progress=False)
    assert healed.sources == 1 and healed.failed == () and healed.skipped == broken.sources
    expected = len((SAMPLE_LOGS / "kubernetes/orders-2026-W45.jsonl").read_text(encoding="utf-8").splitlines())
    assert rows(con, "SELECT count(*) FROM log_lines WHERE source_uri LIKE '%orders-2026-W45%'") == [(expected,)]
    con.close()

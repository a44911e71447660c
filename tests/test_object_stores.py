"""gs:// and az:// through gcsfs and adlfs against real storage APIs on 127.0.0.1: gcp-storage-emulator and Azurite,
started here. The cases S3 has (tests/test_s3.py): counts equal to the same files read locally, incremental
listing, globs and --since, a permission error, a flapping endpoint, a truncated object. Answers an emulator
cannot give (GCS's 403: the emulator has no IAM; a dropped connection) come from a loopback proxy in front of
it (tests/kit/proxy.py); Azurite checks SAS permissions itself."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import fsspec
import pytest

from pipeline.api import ingest
from pipeline.core.config import Config
from pipeline.core.errors import SourceError
from pipeline.warehouse import connect
from tests.conftest import IN_CI, ROOT, SAMPLE_LOGS, rows
from tests.kit.envelopes import gzip_bytes
from tests.kit.proxy import Proxy

pytestmark = pytest.mark.slow  # an emulator per module

# Recent gcsfs probes each bucket's type over gRPC, which the emulator never answers (a minute per bucket); it
# reads this switch once, when imported, so it is set before the import and checked after it.
os.environ["GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"] = "false"
gcsfs = pytest.importorskip("gcsfs", reason="pip install 'migrate-lens[gcs]'") if not IN_CI else __import__("gcsfs")
adlfs = pytest.importorskip("adlfs", reason="pip install 'migrate-lens[azure]'") if not IN_CI else __import__("adlfs")

assert fsspec.get_filesystem_class("gs") is gcsfs.GCSFileSystem, "gcsfs was imported before the switch was set"

# Azurite's documented development account.
AZ_ACCOUNT = "devstoreaccount1"
AZ_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
FILES = ["docker/env=dev/service=billing/database=billing", "kubernetes/orders-2026-W45.jsonl",
         "loki/billing-staging-2026-W45.jsonl", "slog/identity-prod.jsonl.zst", "text/cloudwatch-export",
         "cloudwatch/env=prod/service=billing/database=tenant_008"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(port: int, proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port} within 60 s")


def _azurite() -> str | None:
    """Azurite's blob server: `npm install --prefix .ci/node azurite` (what .ci/run does), or on the PATH."""
    local = ROOT / ".ci" / "node" / "node_modules" / ".bin" / "azurite-blob"
    return str(local) if local.exists() else shutil.which("azurite-blob")


@dataclass
class Store:
    """One emulator: its scheme, its endpoint, and the environment that points a client at an endpoint."""

    scheme: str
    endpoint: str
    proc: subprocess.Popen
    buckets: list[str] = field(default_factory=list)

    def env(self, endpoint: str | None = None, sas: str | None = None) -> dict[str, str]:
        endpoint = endpoint or self.endpoint
        if self.scheme == "gs":
            return {"STORAGE_EMULATOR_HOST": endpoint, "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false"}
        if sas:
            return {"AZURE_STORAGE_CONNECTION_STRING": f"BlobEndpoint={endpoint}/{AZ_ACCOUNT};SharedAccessSignature={sas}"}
        return {"AZURE_STORAGE_CONNECTION_STRING": f"DefaultEndpointsProtocol=http;AccountName={AZ_ACCOUNT};"
                                                   f"AccountKey={AZ_KEY};BlobEndpoint={endpoint}/{AZ_ACCOUNT};"}

    def fs(self):
        fresh()
        return fsspec.filesystem(self.scheme, **({"token": "anon"} if self.scheme == "gs" else {}))

    def bucket(self, name: str) -> None:
        self.fs().mkdir(name)

    def put(self, path: str, data: bytes) -> None:
        self.fs().pipe(path, data)


def fresh() -> None:
    """fsspec keeps one filesystem per set of arguments: forget them, so the environment is read again."""
    gcsfs.GCSFileSystem.clear_instance_cache()
    adlfs.AzureBlobFileSystem.clear_instance_cache()


@pytest.fixture(scope="module", params=["gs", "az"])
def store(request) -> Iterator[Store]:
    port = _free_port()
    if request.param == "gs":
        cmd = [sys.executable, "-m", "gcp_storage_emulator", "start", "--host", "127.0.0.1", "--port", str(port),
               "--in-memory"]
    else:
        azurite = _azurite()
        if azurite is None:
            pytest.skip("Azurite is not installed (npm install --prefix .ci/node azurite)")
        cmd = [azurite, "--blobHost", "127.0.0.1", "--blobPort", str(port), "--inMemoryPersistence",
               "--disableTelemetry", "--skipApiVersionCheck", "--loose", "--silent"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait(port, proc, cmd[0])
        s = Store(request.param, f"http://127.0.0.1:{port}", proc)
        with pytest.MonkeyPatch.context() as mp:
            for k, v in s.env().items():
                mp.setenv(k, v)
            yield s
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        fresh()


@pytest.fixture
def bucket(store: Store, request, monkeypatch) -> str:
    """A new bucket (container) per test; the environment points at the emulator itself."""
    for k, v in store.env().items():
        monkeypatch.setenv(k, v)
    name = f"t{len(store.buckets)}-{request.node.name[5:20].replace('_', '-').lower()}".rstrip("-")
    store.bucket(name)
    store.buckets.append(name)
    fresh()
    return name


def _upload(store: Store, bucket: str, prefix: str = "migrate/dt=2026-11-12") -> list[Path]:
    local = []
    for name in FILES:
        path = SAMPLE_LOGS / name
        for file in sorted([path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]):
            if file.name == "empty-json.log":
                continue
            store.put(f"{bucket}/{prefix}/{file.relative_to(SAMPLE_LOGS).as_posix()}", file.read_bytes())
            local.append(file)
    fresh()
    return local


def _ingest(con, *specs: str, **kw):
    fresh()
    return ingest(con, list(specs), config=Config(), progress=False, **kw)


def _counts(con) -> tuple:
    return rows(con, "SELECT (SELECT count(*) FROM log_lines), (SELECT count(*) FROM rejects), "
                     "(SELECT count(*) FROM migrate_events), (SELECT count(*) FROM runs), "
                     "(SELECT sum(duplicates) FROM ingested_sources)")[0]


def test_counts_equal_the_same_files_ingested_locally(store, bucket, tmp_path):
    local_files = _upload(store, bucket)
    remote = connect(tmp_path / "remote.duckdb")
    result = _ingest(remote, f"{store.scheme}://{bucket}/migrate/")
    assert result.sources == len(local_files) and result.failed == ()
    local = connect(tmp_path / "local.duckdb")
    _ingest(local, *(str(f) for f in local_files))
    assert _counts(remote) == _counts(local)
    assert rows(remote, "SELECT count(*) FROM runs WHERE database = 'tenant_008'")[0][0] > 0  # Hive segments
    assert all(u.startswith(f"{store.scheme}://{bucket}/migrate/") for (u,) in rows(remote, "SELECT source_uri FROM ingested_sources"))
    remote.close()
    local.close()


def test_rerun_reads_only_new_or_changed_objects(store, bucket, tmp_path):
    _upload(store, bucket)
    con = connect(tmp_path / "w.duckdb")
    spec = f"{store.scheme}://{bucket}/migrate/"
    first = _ingest(con, spec)
    again = _ingest(con, spec)
    assert (again.sources, again.skipped, again.lines) == (0, first.sources, 0)
    store.put(f"{bucket}/migrate/dt=2026-11-13/extra.log", b"no change\n")
    added = _ingest(con, spec)
    assert (added.sources, added.skipped, added.stored) == (1, first.sources, 1)
    store.put(f"{bucket}/migrate/dt=2026-11-13/extra.log", b"1/u a (2ms)\n2/u b (4ms)\n")
    changed = _ingest(con, spec)
    assert (changed.sources, changed.stored) == (1, 2)
    assert rows(con, "SELECT count(*) FROM log_lines WHERE source_uri LIKE '%extra.log'") == [(2,)]
    con.close()


def test_globs_and_since_bound_a_date_partitioned_prefix(store, bucket, tmp_path):
    for day in ("2026-11-01", "2026-11-12"):
        store.put(f"{bucket}/part/dt={day}/a.log", b"no change\n")
        store.put(f"{bucket}/part/dt={day}/b.jsonl", b'{"log":"no change\\n","time":"2026-11-12T10:00:00Z"}\n')
    con = connect(tmp_path / "w.duckdb")
    only_json = _ingest(con, f"{store.scheme}://{bucket}/part/*/*.jsonl")
    assert only_json.sources == 2
    recent = _ingest(con, f"{store.scheme}://{bucket}/part/", since=datetime(2026, 11, 10, tzinfo=UTC))
    assert recent.sources == 1 and recent.skipped == 1  # dt=2026-11-01 left out; the .jsonl of the 12th known
    con.close()


HINTS = {"gs": "STORAGE_EMULATOR_HOST", "az": "AZURE_STORAGE_CONNECTION_STRING"}


def test_missing_bucket_and_unreachable_endpoint_are_clear_errors(store, bucket, tmp_path, monkeypatch):
    con = connect(tmp_path / "w.duckdb")
    noun = "bucket" if store.scheme == "gs" else "container"
    with pytest.raises(SourceError, match=rf"^{store.scheme}://nope/x: {noun} 'nope' does not exist \(check the "
                                          rf"name and {HINTS[store.scheme]}\)$"):
        _ingest(con, f"{store.scheme}://nope/x")
    for k, v in store.env(f"http://127.0.0.1:{_free_port()}").items():
        monkeypatch.setenv(k, v)
    started = time.monotonic()
    with pytest.raises(SourceError, match=rf"^{store.scheme}://{bucket}/migrate: cannot reach the object store "
                                          rf"\(.*\); check {HINTS[store.scheme]} and the network$"):
        _ingest(con, f"{store.scheme}://{bucket}/migrate")
    # one TCP connect says so at once, before gcsfs (6 tries, about 30 s) or the Azure SDK (minutes) would retry
    assert time.monotonic() - started < 5
    con.close()


def test_behind_an_http_proxy_the_reachability_check_is_left_to_the_client(store, monkeypatch):
    """A client that goes through a proxy may reach what a direct connection cannot: no verdict from us then."""
    import fsspec

    from pipeline.ingest import sources

    closed = f"http://127.0.0.1:{_free_port()}"
    for k, v in store.env(closed).items():
        monkeypatch.setenv(k, v)
    fs, _ = fsspec.core.url_to_fs(f"{store.scheme}://b/x")
    with pytest.raises(SourceError, match="cannot reach the object store"):
        sources._reachable(f"{store.scheme}://b/x", fs, store.scheme)
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.internal:3128")
    sources._reachable(f"{store.scheme}://b/x", fs, store.scheme)  # no connection tried, no error
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with pytest.raises(SourceError, match="cannot reach the object store"):
        sources._reachable(f"{store.scheme}://b/x", fs, store.scheme)


def test_denied_listing_is_a_clear_error(store, bucket, tmp_path, monkeypatch):
    _upload(store, bucket)
    con = connect(tmp_path / "w.duckdb")
    if store.scheme == "gs":  # the emulator has no IAM: GCS's own 403 answer, from the proxy
        def deny(req):
            if req.method == "GET" and f"/b/{bucket}/o" in req.path and "alt=media" not in req.path:
                return 403, {"Content-Type": "application/json"}, (
                    b'{"error":{"code":403,"message":"ci@shop.iam.gserviceaccount.com does not have '
                    b'storage.objects.list access to the Google Cloud Storage bucket.","errors":[]}}')
            return None
        with Proxy(store.endpoint, deny) as proxy:
            for k, v in store.env(proxy.url).items():
                monkeypatch.setenv(k, v)
            with pytest.raises(SourceError, match=r"permission denied \(check GOOGLE_APPLICATION_CREDENTIALS and "
                                                  r"the bucket's IAM roles\)$"):
                _ingest(con, f"gs://{bucket}/migrate/")
    else:  # a SAS that may read blobs but not list them: Azurite refuses the listing itself
        from azure.storage.blob import ContainerSasPermissions, generate_container_sas
        sas = generate_container_sas(AZ_ACCOUNT, bucket, account_key=AZ_KEY, permission=ContainerSasPermissions(read=True),
                                     expiry=datetime.now(UTC) + timedelta(hours=1))
        for k, v in store.env(sas=sas).items():
            monkeypatch.setenv(k, v)
        with pytest.raises(SourceError, match=r"permission denied \(check AZURE_STORAGE_CONNECTION_STRING or the "
                                              r"SAS token's permissions\)$"):
            _ingest(con, f"az://{bucket}/migrate/")
    con.close()


def test_a_flapping_endpoint_is_retried_and_an_object_that_stays_down_is_read_next_run(store, bucket, tmp_path,
                                                                                      monkeypatch):
    _upload(store, bucket)
    attempts = {"flap": 0, "down": 0}

    def content(req) -> bool:
        return req.method == "GET" and ("alt=media" in req.path if store.scheme == "gs" else "comp=" not in req.path)

    def flap(req):
        if content(req) and "orders-2026-W45" in req.path:  # dropped once, then answered
            attempts["flap"] += 1
            return "drop" if attempts["flap"] == 1 else None
        if content(req) and "identity-prod" in req.path and store.scheme == "gs":  # never answered this run
            attempts["down"] += 1
            return "drop"
        return None

    con = connect(tmp_path / "w.duckdb")
    monkeypatch.setattr("pipeline.ingest.BACKOFF_SECONDS", 0.01)
    with Proxy(store.endpoint, flap) as proxy:
        for k, v in store.env(proxy.url).items():
            monkeypatch.setenv(k, v)
        broken = _ingest(con, f"{store.scheme}://{bucket}/migrate/")
    assert attempts["flap"] >= 2, [(r.method, r.path) for r in proxy.seen if "orders" in r.path]
    expected = len((SAMPLE_LOGS / "kubernetes/orders-2026-W45.jsonl").read_text(encoding="utf-8").splitlines())
    assert rows(con, "SELECT count(*) FROM log_lines WHERE source_uri LIKE '%orders-2026-W45%'") == [(expected,)]
    if store.scheme == "gs":
        assert len(broken.failed) == 1 and "identity-prod" in broken.failed[0] and "\n" not in broken.failed[0]
        assert attempts["down"] >= 3  # retried before giving up
        assert rows(con, "SELECT count(*) FROM ingested_sources WHERE source_uri LIKE '%identity-prod%'") == [(0,)]
        for k, v in store.env().items():
            monkeypatch.setenv(k, v)
        healed = _ingest(con, f"gs://{bucket}/migrate/")
        assert (healed.sources, healed.failed, healed.skipped) == (1, (), broken.sources)
    else:
        assert broken.failed == ()
    assert rows(con, "SELECT count(*) FROM pending_sources") == [(0,)]
    con.close()


def test_a_truncated_object_keeps_the_lines_before_the_damage(store, bucket, tmp_path):
    text = "".join(f"{v}/u step_{v} (2ms)\n" for v in range(1, 400)).encode()
    packed = gzip_bytes(text)
    store.put(f"{bucket}/cut/migrate.log.gz", packed[: len(packed) // 2])
    con = connect(tmp_path / "w.duckdb")
    result = _ingest(con, f"{store.scheme}://{bucket}/cut/")
    kept = rows(con, "SELECT count(*) FROM log_lines")[0][0]
    assert result.damaged == 1 and 0 < kept < 399
    assert rows(con, "SELECT reason FROM rejects ORDER BY line_no DESC LIMIT 1") == [("truncated_compressed_stream",)]
    assert os.environ.get("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT") == "false"
    con.close()

"""Finding log sources (files, folders, globs, object-storage prefixes) and reading their bytes.

Everything goes through fsspec, so a local folder and `s3://bucket/prefix` are listed, fingerprinted and
streamed the same way. Decompression is streamed here too, so that a damaged `.gz` or `.zst` yields every
complete line before the damage and then says where it broke.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

import fsspec

from pipeline.core.errors import SourceError
from pipeline.core.redact import redact
from pipeline.ingest.decompress import ReadOutcome, gunzip, unzstd

LOG_SUFFIXES = (".jsonl", ".json", ".log", ".txt", ".ndjson", ".csv")
COMPRESSIONS = {".gz": "gzip", ".zst": "zstd"}
READ_BLOCK = 8 << 20
_HIVE = re.compile(r"(?:^|/)([A-Za-z_][A-Za-z0-9_.\-]*)=([^/]+)")


@dataclass(frozen=True)
class Source:
    """One file or object to ingest."""

    uri: str  # as the user would type it (protocol included for object storage)
    path: str  # the filesystem's own path
    size: int
    modified: datetime | None
    etag: str | None
    compression: str | None
    fs: Any  # fsspec filesystem
    envelope: str | None = None  # known without detection (a pull from an API)
    # What sources that read each other's records again share (the windows of one CloudWatch Logs stream, each
    # asking again for the overlap before the last): a record such a source refused before is not refused twice.
    rereads: str | None = None

    @cached_property
    def display_uri(self) -> str:
        """The location as stored and shown: redacted. When redaction changed it, a short digest of the real
        location keeps two sources apart that differ only in a masked segment (the identity is the real one)."""
        shown = redact(self.uri)
        if shown != self.uri:
            shown += f" #{hashlib.sha256(self.uri.encode()).hexdigest()[:10]}"
        return shown

    def hive_labels(self) -> dict[str, str]:
        """`key=value` segments of the path (`…/env=prod/service=orders/…`)."""
        return {k.lower(): v for k, v in _HIVE.findall(self.path)}

    def fingerprint(self) -> str:
        """Objects: key + ETag + size (no read). Files: size, mtime and a hash of the first and last 64 KiB."""
        h = hashlib.sha256()
        if self.etag:
            h.update(f"{self.uri}|{self.size}|{self.etag}".encode())
            return h.hexdigest()[:32]
        h.update(f"{self.size}|{self.modified.isoformat() if self.modified else ''}".encode())
        with _open(self) as f:
            h.update(f.read(65536))
            if self.size > 131072:
                f.seek(self.size - 65536)
                h.update(f.read(65536))
        return h.hexdigest()[:32]

    def head(self) -> bytes:
        """The first 256 KiB of the decompressed content, for envelope detection."""
        for block, _ in read_lines(self, ReadOutcome()):
            return block[:262144]
        return b""


def _is_log_name(name: str) -> bool:
    base = name.lower()
    for ext in COMPRESSIONS:
        base = base.removesuffix(ext)
    return base.endswith(LOG_SUFFIXES) or bool(re.search(r"\.log\.\d+$", base))


def _compression(name: str) -> str | None:
    for ext, kind in COMPRESSIONS.items():
        if name.lower().endswith(ext):
            return kind
    return None


def _as_datetime(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    try:
        return datetime.fromtimestamp(float(value), tz=UTC)
    except (TypeError, ValueError):
        return None


def _normal_key(path: str) -> str:
    """An object key without repeated or trailing slashes: `b//p/x.log` and `b/p/x.log` are one object."""
    return re.sub(r"/{2,}", "/", path).rstrip("/")


def _source(fs: Any, path: str, info: dict[str, Any], scheme: str | None = None) -> Source:
    protocol = scheme or (fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0])
    # The identity of a source is its canonical location: `../logs`, `/abs/logs` and a symlink to it are one
    # file, read once. Hive labels still come from the path as given (`path`).
    uri = os.path.realpath(path) if protocol in ("file", "local") else f"{protocol}://{_normal_key(path)}"
    modified = _as_datetime(info.get("mtime") or info.get("LastModified") or info.get("last_modified"))
    etag = info.get("ETag") or info.get("etag")
    return Source(
        uri=uri,
        path=path,
        size=int(info.get("size") or 0),
        modified=modified,
        etag=str(etag).strip('"') if etag else None,
        compression=_compression(path),
        fs=fs,
    )


# Object stores: fail fast on an unreachable endpoint, retry transient errors with backoff (botocore).
_STORAGE_OPTIONS = {
    "s3": {"config_kwargs": {"connect_timeout": 5, "read_timeout": 60,
                             "retries": {"max_attempts": 4, "mode": "standard"}}},
}
_PATH_DATE = re.compile(r"(?:^|/)(?:dt|date|day)=(\d{4})-?(\d{2})-?(\d{2})(?:/|$)|(?:^|/)(\d{4})/(\d{2})/(\d{2})(?:/|$)")


def _path_date(path: str) -> datetime | None:
    m = _PATH_DATE.search(path)
    if not m:
        return None
    y, mo, d = (m.group(1), m.group(2), m.group(3)) if m.group(1) else (m.group(4), m.group(5), m.group(6))
    try:
        return datetime(int(y), int(mo), int(d), tzinfo=UTC)
    except ValueError:
        return None


def _is_recent(src: Source, since: datetime | None) -> bool:
    """Objects of a date-partitioned prefix (`dt=2026-11-12/`, `2026/11/12/`) or modified before `since` are
    left out."""
    if since is None:
        return True
    day = _path_date(src.path)
    if day is not None and day + timedelta(days=1) <= since:
        return False
    return src.modified is None or src.modified >= since


# Per store: what a container is called, and what to check when it is missing, unreachable or refuses.
_STORES = {
    "s3": ("bucket", "the name, the region and AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL, the region and the network",
           "the credentials and the bucket policy"),
    "gs": ("bucket", "the name and STORAGE_EMULATOR_HOST", "STORAGE_EMULATOR_HOST and the network",
           "GOOGLE_APPLICATION_CREDENTIALS and the bucket's IAM roles"),
    "az": ("container", "the name and AZURE_STORAGE_CONNECTION_STRING",
           "AZURE_STORAGE_CONNECTION_STRING and the network",
           "AZURE_STORAGE_CONNECTION_STRING or the SAS token's permissions"),
}
_SCHEMES = {"s3a": "s3", "gcs": "gs", "abfs": "az", "abfss": "az", "adl": "az"}
_EXTRAS = {"gs": "gcs", "az": "azure"}


def _store(protocol: str) -> tuple[str, str, str, str]:
    return _STORES.get(_SCHEMES.get(protocol, protocol), _STORES["s3"])


def _denied(e: BaseException) -> bool:
    """A refusal, as each store's client words it (gcsfs: `Forbidden`, Azure: 403 / `Authorization…`)."""
    return isinstance(e, PermissionError) or getattr(e, "status_code", None) == 403 or str(e).startswith(
        "Forbidden") or "AuthorizationPermissionMismatch" in str(e) or "AuthorizationFailure" in str(e)


def _permission(spec: str, protocol: str) -> SourceError:
    return SourceError(f"{redact(spec)}: permission denied (check {_store(protocol)[3]})")


def _unreachable(spec: str, e: Exception, protocol: str = "s3") -> SourceError:
    text = str(e).splitlines()[0] if str(e) else type(e).__name__
    return SourceError(f"{redact(spec)}: cannot reach the object store ({redact(text)}); check {_store(protocol)[2]}")


CONNECT_SECONDS = 5.0  # the reachability check's TCP connect


def _reachable(spec: str, fs: Any, protocol: str) -> None:
    """One TCP connection to the endpoint of an Azure or GCS client: one that refuses or does not answer is
    reported now, not after the client's retries (the Azure SDK backs off for minutes and adlfs cannot change
    its policy; gcsfs retries for about 30 s). Skipped behind an HTTP proxy, which the client goes through and a
    direct connection would not."""
    client = getattr(fs, "service_client", None)  # adlfs
    url = client.url if client is not None else getattr(fs, "_location", None)  # gcsfs
    if not isinstance(url, str) or "://" not in url:
        return
    parts = urlsplit(url)
    proxies = urllib.request.getproxies()
    if not parts.hostname or ((proxies.get(parts.scheme) or proxies.get("all"))
                              and not urllib.request.proxy_bypass(parts.hostname)):
        return
    try:
        socket.create_connection((parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)),
                                 timeout=CONNECT_SECONDS).close()
    except OSError as e:
        raise _unreachable(spec, e, protocol) from None


def _missing(spec: str, fs: Any, root: str) -> SourceError:
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    if protocol in ("s3", "s3a", "gs", "gcs", "az", "abfs", "abfss"):
        noun, check, _, _ = _store(protocol)
        bucket = root.split("/", 1)[0]
        try:
            fs.ls(root)  # a refused or failed listing says so here (some clients' isdir only says False)
        except FileNotFoundError:
            pass
        except Exception as e:  # noqa: BLE001 - only deciding which message to give
            return _permission(spec, protocol) if _denied(e) else _unreachable(spec, e, protocol)
        try:
            exists = fs.exists(bucket)
        except Exception as e:  # noqa: BLE001 - only deciding which message to give
            if _denied(e):
                return _permission(spec, protocol)
            exists = True
        if not exists:
            return SourceError(f"{redact(spec)}: {noun} {bucket!r} does not exist (check {check})")
        return SourceError(f"{redact(spec)}: no object under that prefix (check the path)")
    return SourceError(f"{redact(spec)}: no such file or folder (check the path)")


@dataclass(frozen=True)
class Discovery:
    """The sources found, and the folders that could not be listed (reported like unreadable files)."""

    sources: list[Source]
    unreadable: tuple[str, ...] = ()


def _walk_local(root: str, unreadable: list[str]) -> dict[str, dict[str, Any]]:
    """Every log file below a local folder; a sub-folder that cannot be listed is named, not skipped silently."""
    found: dict[str, dict[str, Any]] = {}

    def refused(e: OSError) -> None:
        unreadable.append(f"{redact(str(e.filename))}: cannot list the folder ({e.strerror}); check its permissions")

    for folder, _dirs, files in os.walk(root, onerror=refused):
        for name in files:
            if _is_log_name(name):
                path = os.path.join(folder, name)
                try:
                    st = os.stat(path)
                except OSError as e:
                    refused(e)
                    continue
                found[path] = {"name": path, "size": st.st_size, "type": "file", "mtime": st.st_mtime}
    return found


def _listing(fs: Any, root: str) -> dict[str, dict[str, Any]]:
    """The log objects under a prefix, or the one object named, in one listing: a refused or unreachable store
    raises here at once (an `isdir` probe would say False after its client's retries, and each probe retries)."""
    found = fs.find(root, detail=True)
    exact = {p: i for p, i in found.items() if p.rstrip("/") == root.rstrip("/") and i.get("type") != "directory"}
    if exact:
        return exact
    return {p: i for p, i in found.items() if i.get("type") != "directory" and _is_log_name(p.rsplit("/", 1)[-1])}


def discover(specs: list[str], since: datetime | None = None) -> Discovery:
    """Expand files, folders, globs and prefixes into sources, sorted and without repeats."""
    found: dict[str, Source] = {}
    unreadable: list[str] = []
    for spec in specs:
        protocol = spec.split("://", 1)[0] if "://" in spec else "file"
        try:
            fs, root = fsspec.core.url_to_fs(spec, **_STORAGE_OPTIONS.get(protocol, {}))
        except ImportError:
            extra = _EXTRAS.get(_SCHEMES.get(protocol, protocol))
            if extra is None:
                raise SourceError(f"{redact(spec)}: unsupported source; use a path or an s3://, gs:// or az:// URL") \
                    from None
            raise SourceError(f"{redact(spec)}: {protocol}:// needs the {extra} extra "
                              f"(pip install 'migrate-lens[{extra}]')") from None
        except ValueError as e:
            raise SourceError(f"{redact(spec)}: unsupported source ({e}); use a path or an s3://, gs:// or az:// "
                              "URL") from None
        fs.invalidate_cache()  # fsspec keeps listings per instance: a batch job must see the store as it is now
        if _SCHEMES.get(protocol, protocol) in ("az", "gs"):
            _reachable(spec, fs, protocol)
        try:
            if any(ch in root for ch in "*?["):
                matches = fs.glob(root, detail=True)
                candidates = {p: i for p, i in matches.items() if i.get("type") != "directory"}
                if not candidates:
                    raise SourceError(f"{redact(spec)}: the pattern matches no file (check the glob)")
            elif protocol == "file" and fs.isdir(root):
                candidates = _walk_local(root, unreadable)
            elif protocol != "file" and (listed := _listing(fs, root)):
                candidates = listed
            elif protocol == "file" and fs.isfile(root):
                candidates = {root: fs.info(root)}
            else:
                raise _missing(spec, fs, root)
        except FileNotFoundError:
            raise _missing(spec, fs, root) from None
        except SourceError:
            raise
        except Exception as e:  # botocore/aiohttp/azure errors of a refusal or an unreachable endpoint
            if _denied(e):
                raise _permission(spec, protocol) from None
            if protocol == "file":
                raise
            raise _unreachable(spec, e, protocol) from e
        for path, info in sorted(candidates.items()):
            src = _source(fs, path, info, protocol if "://" in spec else None)
            if _is_recent(src, since):
                found.setdefault(src.uri, src)
    return Discovery(list(found.values()), tuple(unreadable))


def _open(src: Source) -> Any:
    try:
        return src.fs.open(src.path, "rb")
    except PermissionError:
        raise SourceError(f"{src.display_uri}: permission denied (check read access)") from None
    except FileNotFoundError:
        raise SourceError(f"{src.display_uri}: disappeared while ingesting (re-run ingest)") from None


def _decompressed_blocks(src: Source, outcome: ReadOutcome) -> Iterator[bytes]:
    with _open(src) as f:
        if src.compression is None:
            while block := f.read(READ_BLOCK):
                yield block
        elif src.compression == "gzip":
            yield from gunzip(f, outcome, READ_BLOCK)
        else:
            yield from unzstd(f, outcome, READ_BLOCK)


_LONE_CR = re.compile(rb"\r(?!\n)")


def read_lines(src: Source, outcome: ReadOutcome) -> Iterator[tuple[bytes, bool]]:
    """Yield (block of whole lines, is_final) pieces; a block always ends at a newline unless final.

    A UTF-8 byte order mark at the start is dropped. When the stream is damaged, the trailing fragment
    after the last newline is yielded as a final block so the caller can reject it as truncated.
    """
    pending = b""
    first = True
    held_cr = False  # a block that ends in \r: its \n (CRLF) may start the next block
    for block in _decompressed_blocks(src, outcome):
        if first:
            if block.startswith(b"\xef\xbb\xbf"):
                block = block[3:]
            first = False
        if held_cr:
            block = b"\r" + block
        held_cr = block.endswith(b"\r")
        if held_cr:
            block = block[:-1]
        if b"\r" in block:  # a lone CR (classic Mac line ends) ends a line too; CRLF stays for the reader
            block = _LONE_CR.sub(b"\n", block)
        data = pending + block
        cut = data.rfind(b"\n")
        if cut < 0:
            pending = data
            continue
        pending = data[cut + 1 :]
        yield data[: cut + 1], False
    if held_cr:
        pending += b"\n"
    if pending:
        yield pending, True

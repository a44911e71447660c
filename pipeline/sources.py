"""Finding log sources (files, folders, globs, object-storage prefixes) and reading their bytes.

Everything goes through fsspec, so a local folder and `s3://bucket/prefix` are listed, fingerprinted and
streamed the same way. Decompression is streamed here too, so that a damaged `.gz` or `.zst` yields every
complete line before the damage and then says where it broke.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import fsspec
import zstandard

from .errors import SourceError
from .redact import redact

LOG_SUFFIXES = (".jsonl", ".json", ".log", ".txt", ".ndjson")
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

    @property
    def display_uri(self) -> str:
        return redact(self.uri)

    def hive_labels(self) -> dict[str, str]:
        """`key=value` segments of the path (`…/env=prod/service=orders/…`)."""
        return {k.lower(): v for k, v in _HIVE.findall(self.path)}

    def fingerprint(self) -> str:
        """Size, modification stamp (or ETag) and a hash of the first and last 64 KiB."""
        h = hashlib.sha256()
        h.update(f"{self.size}|{self.etag or ''}|{self.modified.isoformat() if self.modified else ''}".encode())
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


def _source(fs: Any, path: str, info: dict[str, Any]) -> Source:
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    uri = path if protocol in ("file", "local") else f"{protocol}://{path}"
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


def discover(specs: list[str]) -> list[Source]:
    """Expand files, folders, globs and prefixes into sources, sorted and without repeats."""
    found: dict[str, Source] = {}
    for spec in specs:
        try:
            fs, root = fsspec.core.url_to_fs(spec)
        except (ImportError, ValueError) as e:
            raise SourceError(f"{redact(spec)}: unsupported source ({e}); use a path or s3:// URL") from None
        try:
            if any(ch in root for ch in "*?["):
                matches = fs.glob(root, detail=True)
                candidates = {p: i for p, i in matches.items() if i.get("type") != "directory"}
                if not candidates:
                    raise SourceError(f"{redact(spec)}: the pattern matches no file (check the glob)")
            elif fs.isdir(root):
                candidates = {
                    p: i for p, i in fs.find(root, detail=True).items() if _is_log_name(p.rsplit("/", 1)[-1])
                }
            elif fs.isfile(root):
                candidates = {root: fs.info(root)}
            else:
                raise SourceError(f"{redact(spec)}: no such file or folder (check the path)")
        except PermissionError:
            raise SourceError(f"{redact(spec)}: permission denied (check read access)") from None
        except FileNotFoundError:
            raise SourceError(f"{redact(spec)}: no such file, folder or bucket (check the path)") from None
        for path, info in sorted(candidates.items()):
            src = _source(fs, path, info)
            found.setdefault(src.uri, src)
    return list(found.values())


@dataclass
class ReadOutcome:
    """Filled in while a source is read: where decompression broke, if it did."""

    damage: str | None = None


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
            return
        new = (lambda: zlib.decompressobj(wbits=31)) if src.compression == "gzip" else (
            lambda: zstandard.ZstdDecompressor().decompressobj()
        )
        d = new()
        fed = False
        try:
            while block := f.read(READ_BLOCK):
                fed = True
                while block:
                    out = d.decompress(block)
                    if out:
                        yield out
                    # Concatenated members/frames (Firehose, `cat a.gz b.gz`): start a new decompressor.
                    block = d.unused_data if d.eof else b""
                    if block:
                        d = new()
        except (zlib.error, zstandard.ZstdError) as e:
            outcome.damage = f"{src.compression} stream is corrupt ({e})"
            return
        if fed and not d.eof:
            outcome.damage = f"{src.compression} stream is truncated (unexpected end of file)"


def read_lines(src: Source, outcome: ReadOutcome) -> Iterator[tuple[bytes, bool]]:
    """Yield (block of whole lines, is_final) pieces; a block always ends at a newline unless final.

    A UTF-8 byte order mark at the start is dropped. When the stream is damaged, the trailing fragment
    after the last newline is yielded as a final block so the caller can reject it as truncated.
    """
    pending = b""
    first = True
    for block in _decompressed_blocks(src, outcome):
        if first:
            if block.startswith(b"\xef\xbb\xbf"):
                block = block[3:]
            first = False
        data = pending + block
        cut = data.rfind(b"\n")
        if cut < 0:
            pending = data
            continue
        pending = data[cut + 1 :]
        yield data[: cut + 1], False
    if pending:
        yield pending, True

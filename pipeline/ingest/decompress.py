"""Decompressing a source while keeping everything decoded before a damage, and saying where it broke."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import zstandard


@dataclass
class ReadOutcome:
    """Filled in while a source is read: where decompression broke, if it did."""

    damage: str | None = None
    intact: bool = False  # the damage lost no data (a wrong checksum after a complete member)


# Compressed input is fed in small pieces: when the stream breaks, only the piece that broke is lost, and even
# that is decoded again in smaller steps from a copy of the decoder, so every byte before the damage is kept.
FEED = 64 << 10
_SALVAGE = 256


def _salvage(d: Any, piece: bytes) -> tuple[bytes, Any]:
    """What `piece` decodes to before the damage inside it, from copies of the decoder `d`."""
    out = b""
    for i in range(0, len(piece), _SALVAGE):
        trial = d.copy()
        try:
            got = trial.decompress(piece[i:i + _SALVAGE])
        except zlib.error:
            break
        out, d = out + got, trial
    return out, d


def _gzip_header_length(data: bytes) -> int | None:
    """Length of the gzip member header at the start of `data` (RFC 1952), None if `data` is too short."""
    if len(data) < 10:
        return None
    if data[:3] != b"\x1f\x8b\x08":
        raise zlib.error("not a gzip member (bad magic or method)")
    flags, pos = data[3], 10
    if flags & 4:  # FEXTRA
        if len(data) < pos + 2:
            return None
        pos += 2 + int.from_bytes(data[pos:pos + 2], "little")
    for bit in (8, 16):  # FNAME, FCOMMENT: zero-terminated
        if flags & bit:
            end = data.find(b"\0", pos)
            if end < 0:
                return None
            pos = end + 1
    if flags & 2:  # FHCRC
        pos += 2
    return pos if len(data) >= pos else None


def gunzip(f: Any, outcome: ReadOutcome, read_block: int) -> Iterator[bytes]:
    """gzip members (Firehose and `cat a.gz b.gz` concatenate them), decoded as raw deflate with the CRC-32
    checked here: a wrong checksum after a complete member keeps every line and flags the source."""
    pending = b""
    eof = False
    while True:
        while not eof and len(pending) < 64 << 10:
            more = f.read(read_block)
            eof = not more
            pending += more
        if not pending:
            return
        start = _gzip_header_length(pending)
        if start is None:
            outcome.damage = "gzip stream is truncated (unexpected end of file)"
            return
        d, crc, size, data = zlib.decompressobj(-15), 0, 0, pending[start:]
        while True:
            for i in range(0, len(data), FEED):
                piece = data[i:i + FEED]
                try:
                    out = d.decompress(piece)
                except zlib.error as e:
                    out, d = _salvage(d, piece)
                    if out:
                        yield out
                    outcome.damage = f"gzip stream is corrupt ({e})"
                    return
                crc, size = zlib.crc32(out, crc), size + len(out)
                if out:
                    yield out
                if d.eof:
                    break
            if d.eof or eof:
                break
            data = f.read(read_block)
            eof = not data
        if not d.eof:
            outcome.damage = "gzip stream is truncated (unexpected end of file)"
            return
        rest = d.unused_data + (data[i + FEED:] if data else b"")
        while len(rest) < 8 and not eof:
            more = f.read(read_block)
            eof = not more
            rest += more
        if len(rest) < 8:
            outcome.damage = "gzip stream is truncated (the member's checksum is missing)"
            outcome.intact = True
            return
        if int.from_bytes(rest[:4], "little") != crc or int.from_bytes(rest[4:8], "little") != size & 0xFFFFFFFF:
            outcome.damage = "gzip checksum mismatch (every line decoded and was kept)"
            outcome.intact = True
        pending = rest[8:]


def unzstd(f: Any, outcome: ReadOutcome, read_block: int) -> Iterator[bytes]:
    d = zstandard.ZstdDecompressor().decompressobj()
    fed = False
    while block := f.read(read_block):
        fed = True
        for i in range(0, len(block), FEED):
            piece = block[i:i + FEED]
            while piece:
                try:
                    out = d.decompress(piece)
                except zstandard.ZstdError as e:
                    outcome.damage = f"zstd stream is corrupt ({e})"
                    return
                if out:
                    yield out
                # Concatenated frames: start a new decompressor on what is left.
                piece = d.unused_data if d.eof else b""
                if piece:
                    d = zstandard.ZstdDecompressor().decompressobj()
    if fed and not d.eof:
        outcome.damage = "zstd stream is truncated (unexpected end of file)"

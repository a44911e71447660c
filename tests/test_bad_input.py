"""Bad input: every record ends in `log_lines` or in `rejects` with a reason, secrets redacted, nothing stops.

Each test writes its own input inline. Every test that ingests checks the accounting invariant of
ingest.py: per source, `lines` = rows it stored in log_lines + its duplicates + its rows in rejects, where
the `truncated_compressed_stream` marker of a damaged source is one of those reject rows (ingest.py counts
it in both `lines` and `rejected`, as README § Rejects documents it as a reject row).
"""

from __future__ import annotations

import gzip
import json
import zlib
from pathlib import Path

import duckdb
import pytest
import zstandard
from click.testing import CliRunner
from fsspec.implementations.local import LocalFileSystem

from pipeline.cli import main
from pipeline.warehouse import connect
from tests.conftest import rows
from tests.kit.envelopes import gzip_bytes

SECRET = "hunter2"
DSN = f"postgres://u:{SECRET}@db/x"


def accounted(con: duckdb.DuckDBPyConnection) -> None:
    """The invariant for every source, and every reject's raw redacted and at most 4 KiB."""
    for uri, lines, rejected, duplicates in rows(con, "SELECT source_uri, lines, rejected, duplicates FROM ingested_sources"):
        stored = rows(con, "SELECT count(*) FROM log_lines WHERE source_uri = ?", [uri])[0][0]
        refused = rows(con, "SELECT count(*) FROM rejects WHERE source_uri = ?", [uri])[0][0]
        assert lines == stored + duplicates + refused, uri
        assert rejected == refused, uri
    assert rows(con, "SELECT count(*) FROM rejects WHERE length(raw) > 4096 OR raw LIKE ?", [f"%{SECRET}%"]) == [(0,)]
    assert rows(con, "SELECT count(*) FROM log_lines WHERE message LIKE ?", [f"%{SECRET}%"]) == [(0,)]


def write(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


# One good record before and one after each bad one, per envelope, as its shipper writes them.
GOOD = {
    "docker": (
        r'{"log":"3/u add_users_last_login_at (3.887084ms)\n","stream":"stderr","time":"2026-11-21T23:50:37.203417000Z"}',
        r'{"log":"4/u backfill_order_status (514.33204ms)\n","stream":"stderr","time":"2026-11-21T23:50:37.718834000Z"}',
    ),
    "kubernetes": (
        r'{"time":"2026-11-21T23:50:37.203417000Z","stream":"stderr","_p":"F","log":"3/u add_users_last_login_at (3.887084ms)","kubernetes":{"pod_name":"schema-migrate-7k2xq","namespace_name":"shop","container_name":"migrate"}}',
        r'{"time":"2026-11-21T23:50:37.718834000Z","stream":"stderr","_p":"F","log":"4/u backfill_order_status (514.33204ms)","kubernetes":{"pod_name":"schema-migrate-7k2xq","namespace_name":"shop","container_name":"migrate"}}',
    ),
    "loki": (
        r'{"labels":{"container":"migrate","pod":"schema-migrate-7k2xq"},"line":"3/u add_users_last_login_at (3.887084ms)","timestamp":"2026-11-22T00:50:37.203417000+01:00"}',
        r'{"labels":{"container":"migrate","pod":"schema-migrate-7k2xq"},"line":"4/u backfill_order_status (514.33204ms)","timestamp":"2026-11-22T00:50:37.718834000+01:00"}',
    ),
    "cloudwatch": (
        r'{"logStreamName":"migrate/migrate/4f0c2d7e","timestamp":1795391437203,"message":"3/u add_users_last_login_at (3.887084ms)","ingestionTime":1795391437611}',
        r'{"logStreamName":"migrate/migrate/4f0c2d7e","timestamp":1795391437718,"message":"4/u backfill_order_status (514.33204ms)","ingestionTime":1795391438102}',
    ),
    "slog": (
        r'{"time":"2026-11-22T00:50:37.203417+01:00","level":"INFO","msg":"3/u add_users_last_login_at (3.887084ms)"}',
        r'{"time":"2026-11-22T00:50:37.718834+01:00","level":"INFO","msg":"4/u backfill_order_status (514.33204ms)"}',
    ),
    "events": (
        r'{"schema":"migrate-lens/v1","ts":"2026-11-21T23:50:37.203Z","run_id":"r-17","event":"line","line":"3/u add_users_last_login_at (3.887084ms)"}',
        r'{"schema":"migrate-lens/v1","ts":"2026-11-21T23:50:37.718Z","run_id":"r-17","event":"line","line":"4/u backfill_order_status (514.33204ms)"}',
    ),
    "text": ("3/u add_users_last_login_at (3.887084ms)", "4/u backfill_order_status (514.33204ms)"),
}
NAMES = {"docker": "c0ffee-json.log", "kubernetes": "fluent-bit.jsonl", "loki": "loki.jsonl",
         "cloudwatch": "cw-events.jsonl", "slog": "app.jsonl", "events": "events.jsonl", "text": "migrate.txt"}

BAD_RECORDS = [
    # envelope, bad record, reason
    ("docker", r'{"log":"error: failed to open database, \"' + DSN + r'\": dial tcp\n","stream":"stderr"', "malformed_json"),
    ("docker", f'["error: {DSN}"]', "json_array"),
    ("docker", f'"error: {DSN}"', "not_an_object"),
    ("docker", "42", "not_an_object"),
    ("docker", "null", "not_an_object"),
    ("docker", "", "empty_line"),
    ("docker", "    ", "empty_line"),
    ("docker", r'{"stream":"stderr","time":"2026-11-21T23:50:37.5Z","attrs":{"dsn":"' + DSN + '"}}', "no_message"),
    ("docker", r'{"log":"error: ' + DSN + r'\n","stream":"stderr"}', "no_time"),
    ("docker", r'{"log":"error: ' + DSN + r'\n","stream":"stderr","time":"21/11/2026 23:50"}', "bad_time"),
    ("kubernetes", r'{"time":"2026-11-21T23:50:37.5Z","stream":"stderr","_p":"F","kubernetes":{"pod_name":"schema-migrate-7k2xq"},"note":"' + DSN + '"}', "no_message"),
    ("kubernetes", r'{"stream":"stderr","_p":"F","log":"error: ' + DSN + r'","kubernetes":{"pod_name":"schema-migrate-7k2xq"}}', "no_time"),
    ("kubernetes", r'{"@timestamp":"yesterday","stream":"stderr","_p":"F","log":"error: ' + DSN + r'","kubernetes":{"pod_name":"schema-migrate-7k2xq"}}', "bad_time"),
    ("kubernetes", "[1, 2, 3]", "json_array"),
    ("loki", r'{"labels":{"pod":"schema-migrate-7k2xq","dsn":"' + DSN + r'"},"timestamp":"2026-11-22T00:50:37.5+01:00"}', "no_message"),
    ("loki", r'{"labels":{"pod":"schema-migrate-7k2xq"},"line":"error: ' + DSN + '"}', "no_time"),
    ("loki", r'{"labels":{"pod":"schema-migrate-7k2xq"},"line":"error: ' + DSN + r'","timestamp":"2026-13-45T99:00:00Z"}', "bad_time"),
    ("loki", "", "empty_line"),
    ("cloudwatch", r'{"logStreamName":"migrate/migrate/4f0c2d7e","timestamp":1795391437500,"note":"' + DSN + '"}', "not_cloudwatch_event"),
    ("cloudwatch", r'{"logStreamName":"migrate/migrate/4f0c2d7e","message":"error: ' + DSN + '"}', "no_time"),
    ("cloudwatch", r'{"logStreamName":"migrate/migrate/4f0c2d7e","timestamp":"soon","message":"error: ' + DSN + '"}', "bad_time"),
    ("cloudwatch", r'{"logStreamName":"migrate/migrate/4f0c2d7e","timestamp":1795391437500,"message":"error: ' + DSN, "malformed_json"),
    ("cloudwatch", f'["error: {DSN}"]', "json_array"),
    ("cloudwatch", f'"error: {DSN}"', "not_cloudwatch_event"),
    pytest.param("cloudwatch", "", "empty_line"),
    ("slog", r'{"time":"2026-11-22T00:50:37.5+01:00","level":"INFO","dsn":"' + DSN + '"}', "no_message"),
    ("slog", r'{"level":"ERROR","msg":"migrate failed","error":"failed to open database, \"' + DSN + r'\""}', "no_time"),
    ("slog", r'{"time":"half past","level":"INFO","msg":"' + DSN + '"}', "bad_time"),
    ("slog", "{not json " + DSN, "malformed_json"),
    ("events", r'{"schema":"migrate-lens/v2","ts":"2026-11-21T23:50:37.5Z","run_id":"r-17","event":"line","line":"error: ' + DSN + '"}', "unsupported_schema"),
    ("events", r'{"ts":"2026-11-21T23:50:37.5Z","run_id":"r-17","event":"line","line":"error: ' + DSN + '"}', "unsupported_schema"),
    ("events", r'{"schema":"migrate-lens/v1","ts":"2026-11-21T23:50:37.5Z","run_id":"r-17","event":"heartbeat","note":"' + DSN + '"}', "unknown_event"),
    ("events", r'{"schema":"migrate-lens/v1","ts":"2026-11-21T23:50:37.5Z","run_id":"r-17","line":"error: ' + DSN + '"}', "unknown_event"),
    ("events", r'{"schema":"migrate-lens/v1","ts":"2026-11-21T23:50:37.5Z","event":"line","line":"error: ' + DSN + '"}', "no_run_id"),
    ("events", r'{"schema":"migrate-lens/v1","ts":"2026-11-21T23:50:37.5Z","run_id":"r-17","event":"line","dsn":"' + DSN + '"}', "no_message"),
    ("events", r'{"schema":"migrate-lens/v1","run_id":"r-17","event":"line","line":"error: ' + DSN + '"}', "no_time"),
    ("events", r'{"schema":"migrate-lens/v1","ts":"tomorrow","run_id":"r-17","event":"line","line":"error: ' + DSN + '"}', "bad_time"),
    ("events", "", "empty_line"),
]


@pytest.mark.parametrize(("envelope", "bad", "reason"), BAD_RECORDS)
def test_a_bad_record_is_rejected_with_its_reason_and_the_batch_goes_on(envelope, bad, reason, load, warehouse, tmp_path):
    first, last = GOOD[envelope]
    result = load(write(tmp_path / NAMES[envelope], f"{first}\n{bad}\n{last}\n"))
    assert rows(warehouse, "SELECT format, lines, rejected, duplicates FROM ingested_sources") == [(envelope, 3, 1, 0)]
    ((line_no, got_reason, raw),) = rows(warehouse, "SELECT line_no, reason, raw FROM rejects")
    assert (line_no, got_reason) == (2, reason)
    if envelope == "cloudwatch" and reason in ("no_time", "bad_time"):
        # Documents are split into events before staging, so the raw of an event is that event re-serialised.
        assert json.loads(raw) == json.loads(bad.replace(SECRET, "***"))
    else:
        assert raw == bad.replace(SECRET, "***")
    assert rows(warehouse, "SELECT line_no FROM log_lines ORDER BY 1") == [(1,), (3,)]
    assert rows(warehouse, "SELECT count(*) FROM migrate_events WHERE kind = 'applied'") == [(2,)]
    assert (result.lines, result.stored, result.rejected) == (3, 2, 1)
    accounted(warehouse)


INVALID_UTF8 = b"error: caf\xe9 \xff\xfe \xc3\x28 \xe2\x82 " + DSN.encode()


@pytest.mark.parametrize("envelope", [
    "docker", "kubernetes", "loki", "slog", "events", "text",
    pytest.param("cloudwatch"),
])
def test_invalid_utf8_is_rejected_and_the_lines_around_it_kept(envelope, load, warehouse, tmp_path):
    first, last = GOOD[envelope]
    # The good record with its message swapped for bytes that are not UTF-8.
    bad = first.encode().replace(b"3/u add_users_last_login_at (3.887084ms)", INVALID_UTF8)
    load(write(tmp_path / NAMES[envelope], first.encode() + b"\n" + bad + b"\n" + last.encode() + b"\n"))
    assert rows(warehouse, "SELECT line_no, reason FROM rejects") == [(2, "invalid_utf8")]
    (raw,) = rows(warehouse, "SELECT raw FROM rejects")[0]
    assert "caf\ufffd \ufffd\ufffd \ufffd( \ufffd" in raw and "postgres://u:***@db/x" in raw
    assert rows(warehouse, "SELECT line_no FROM log_lines ORDER BY 1") == [(1,), (3,)]
    accounted(warehouse)


def test_json_of_no_known_envelope_is_rejected_record_by_record(load, warehouse, tmp_path):
    path = write(tmp_path / "vector.jsonl",
                 '{"host":"ip-10-0-3-17","message":"error: ' + DSN + '","source_type":"file"}\n'
                 '{"host":"ip-10-0-3-17","message":"1/u create_users_table (23.619417ms)","source_type":"file"}\n'
                 "\n"
                 "[1, 2]\n")
    result = load(path)
    assert (result.lines, result.stored, result.rejected) == (4, 0, 4)
    assert rows(warehouse, "SELECT format, lines, rejected FROM ingested_sources") == [("unknown", 4, 4)]
    assert rows(warehouse, "SELECT line_no, reason FROM rejects ORDER BY 1") == [
        (1, "unrecognised_envelope"), (2, "unrecognised_envelope"), (3, "unrecognised_envelope"),
        (4, "unrecognised_envelope")]
    accounted(warehouse)


def test_an_unrecognised_record_is_stored_without_its_line_end(load, warehouse, tmp_path):
    load(write(tmp_path / "vector.jsonl", '{"host":"ip-10-0-3-17","message":"no change"}\r\n'))
    assert rows(warehouse, "SELECT raw FROM rejects") == [('{"host":"ip-10-0-3-17","message":"no change"}',)]


def test_a_reject_is_redacted_before_it_is_cut_to_4_kib(load, warehouse, tmp_path):
    # The password sits across the 4096th character: cut first, `postgres://u:hunt` would escape the DSN rule.
    bad = '{"log":"' + "x" * 4070 + " " + DSN + " " + "y" * 6000
    assert bad.index(SECRET) < 4096 < bad.index(SECRET) + len(SECRET)
    load(write(tmp_path / "c0ffee-json.log", f"{GOOD['docker'][0]}\n{bad}\n"))
    (raw,) = rows(warehouse, "SELECT raw FROM rejects WHERE reason = 'malformed_json'")[0]
    assert len(raw) == 4096 and raw.endswith("x postgres://u:***@")
    accounted(warehouse)


# -------------------------------------------------------------------------------------- files and encodings


@pytest.mark.parametrize(("name", "data"), [
    ("c0ffee-json.log", b""),
    ("events.jsonl", b""),
    ("migrate.txt", b""),
    ("c0ffee-json.log.gz", gzip_bytes(b"")),  # a fixed header: every xdist worker must collect the same id
    ("c0ffee-json.log.zst", zstandard.ZstdCompressor().compress(b"")),
])
def test_an_empty_file_is_recorded_with_no_lines_and_no_error(name, data, load, warehouse, tmp_path):
    result = load(write(tmp_path / name, data))
    assert (result.sources, result.lines, result.rejected, result.damaged) == (1, 0, 0, 0)
    assert rows(warehouse, "SELECT lines, rejected, duplicates, damage FROM ingested_sources") == [(0, 0, 0, None)]
    assert rows(warehouse, "SELECT count(*) FROM log_lines") == [(0,)]
    accounted(warehouse)


@pytest.mark.parametrize("envelope", ["docker", "kubernetes", "loki", "cloudwatch", "slog", "events", "text"])
def test_crlf_line_ends_and_a_bom_are_not_part_of_any_record(envelope, load, warehouse, tmp_path):
    """A file that went through a Windows editor: a UTF-8 BOM first, `\\r\\n` after every record."""
    first, last = GOOD[envelope]
    data = "\ufeff" + f"{first}\r\n{last}\r\n"
    result = load(write(tmp_path / NAMES[envelope], data.encode()))
    assert rows(warehouse, "SELECT format, lines, rejected FROM ingested_sources") == [(envelope, 2, 0)]
    assert rows(warehouse, "SELECT message FROM log_lines ORDER BY line_no") == [
        ("3/u add_users_last_login_at (3.887084ms)",), ("4/u backfill_order_status (514.33204ms)",)]
    assert rows(warehouse, "SELECT version FROM migrate_events WHERE kind = 'applied' ORDER BY seq") == [(3,), (4,)]
    assert result.stored == 2
    accounted(warehouse)



@pytest.mark.parametrize(("envelope", "data"), [
    ("docker", r'{"log":"3/u add_users_last_login_at (3.887084ms)\r\n","stream":"stdout","time":"2026-11-21T23:50:37.203417000Z"}'),
    ("text", "2026-11-21T23:50:37.203417000Z stdout F 3/u add_users_last_login_at (3.887084ms)\r"),
    pytest.param("kubernetes", r'{"time":"2026-11-21T23:50:37.203417000Z","stream":"stdout","_p":"F","log":"3/u add_users_last_login_at (3.887084ms)\r","kubernetes":{"pod_name":"schema-migrate-7k2xq","container_name":"migrate"}}'),
    pytest.param("loki", r'{"labels":{"pod":"schema-migrate-7k2xq","stream":"stdout"},"line":"3/u add_users_last_login_at (3.887084ms)\r","timestamp":"2026-11-21T23:50:37.203417000Z"}'),
    pytest.param("cloudwatch", r'{"logStreamName":"migrate/migrate/4f0c2d7e","timestamp":1795391437203,"message":"3/u add_users_last_login_at (3.887084ms)\r"}'),
])
def test_a_tty_carriage_return_is_not_part_of_the_message(envelope, data, load, warehouse, tmp_path):
    """`docker run -t`, a pod with `tty: true`, ECS `pseudoTerminal`: every line migrate prints ends in \\r\\n."""
    load(write(tmp_path / NAMES[envelope], data + "\n"))
    assert rows(warehouse, "SELECT message FROM log_lines") == [("3/u add_users_last_login_at (3.887084ms)",)]
    assert rows(warehouse, "SELECT kind, version FROM migrate_events") == [("applied", 3)]
    accounted(warehouse)


# --------------------------------------------------------------------------------------- compressed streams

LINES = {  # 199 APPLIED lines, 1 ms apart, in each envelope
    "docker": [rf'{{"log":"{v}/u step_{v:03d} ({v}.5ms)\n","stream":"stderr","time":"2026-11-21T23:50:37.{v:03d}Z"}}'
               for v in range(1, 200)],
    "text": [f"{v}/u step_{v:03d} ({v}.5ms)" for v in range(1, 200)],
    "loki": [rf'{{"labels":{{"pod":"schema-migrate-7k2xq"}},"line":"{v}/u step_{v:03d} ({v}.5ms)",'
             rf'"timestamp":"2026-11-21T23:50:37.{v:03d}Z"}}' for v in range(1, 200)],
    "cloudwatch": [rf'{{"logStreamName":"migrate/migrate/4f0c","timestamp":{1795391437000 + v},'
                   rf'"message":"{v}/u step_{v:03d} ({v}.5ms)"}}' for v in range(1, 200)],
}


@pytest.mark.parametrize("envelope", [
    "docker", "text", "loki",
    pytest.param("cloudwatch"),
])
def test_a_truncated_gzip_keeps_every_line_before_the_damage(envelope, load, warehouse, tmp_path):
    data = "".join(line + "\n" for line in LINES[envelope]).encode()
    packed = gzip.compress(data)
    cut = packed[: len(packed) * 3 // 5]
    recoverable = zlib.decompressobj(wbits=31).decompress(cut)  # what any reader can get back
    whole, fragment = recoverable.rsplit(b"\n", 1)
    assert fragment, "the cut must fall inside a line for this test"
    kept = whole.count(b"\n") + 1
    result = load(write(tmp_path / (NAMES[envelope] + ".gz"), cut))
    (damage,) = rows(warehouse, "SELECT damage FROM ingested_sources")[0]
    assert damage == "gzip stream is truncated (unexpected end of file)"
    assert rows(warehouse, "SELECT format, lines, rejected FROM ingested_sources") == [(envelope, kept + 2, 2)]
    assert rows(warehouse, "SELECT count(*), min(line_no), max(line_no) FROM log_lines") == [(kept, 1, kept)]
    assert rows(warehouse, "SELECT line_no, reason, raw FROM rejects ORDER BY line_no") == [
        (kept + 1, "truncated_record", fragment.decode()),
        (kept + 2, "truncated_compressed_stream", damage),
    ]
    assert (result.damaged, result.stored) == (1, kept)
    accounted(warehouse)


def test_a_password_cut_off_by_the_damage_is_not_stored(load, warehouse, tmp_path):
    line = r'{"log":"error: failed to open database, \"postgres://billing:Sup3rS3cret@db-prod:5432/t\": dial tcp\n","stream":"stderr","time":"2026-11-21T23:50:37.5Z"}'
    data = (GOOD["docker"][0] + "\n" + line + "\n").encode()
    packed = gzip.compress(data, compresslevel=0)  # stored blocks: the cut lands exactly where we want it
    cut = packed[: 10 + 5 + data.index(b"@db-prod")]  # gzip header, stored-block header, then the data
    load(write(tmp_path / "c0ffee-json.log.gz", cut))
    assert rows(warehouse, "SELECT reason FROM rejects ORDER BY line_no") == [("truncated_record",),
                                                                              ("truncated_compressed_stream",)]
    assert rows(warehouse, "SELECT count(*) FROM rejects WHERE raw LIKE '%Sup3rS3cret%'") == [(0,)]


def _zstd_frames(lines: list[str], per_frame: int) -> list[bytes]:
    return [zstandard.ZstdCompressor().compress("".join(ln + "\n" for ln in lines[i : i + per_frame]).encode())
            for i in range(0, len(lines), per_frame)]


@pytest.mark.parametrize(("damage", "message"), [
    ("corrupt", "zstd stream is corrupt (zstd decompressor error: Data corruption detected)"),
    ("truncated", "zstd stream is truncated (unexpected end of file)"),
])
def test_a_damaged_zstd_keeps_the_frames_before_the_damage(damage, message, load, warehouse, tmp_path):
    frames = _zstd_frames(LINES["docker"][:20], 5)  # a log shipper flushing a frame every 5 lines
    last = bytearray(frames[-1])
    if damage == "corrupt":
        for i in range(6, len(last) - 4):
            last[i] ^= 0x5A
    else:
        del last[-12:]
    result = load(write(tmp_path / "c0ffee-json.log.zst", b"".join(frames[:-1]) + bytes(last)))
    assert rows(warehouse, "SELECT format, lines, rejected, damage FROM ingested_sources") == [("docker", 16, 1, message)]
    assert rows(warehouse, "SELECT count(*), max(line_no) FROM log_lines") == [(15, 15)]
    assert rows(warehouse, "SELECT line_no, reason, raw FROM rejects") == [(16, "truncated_compressed_stream", message)]
    assert result.damaged == 1
    accounted(warehouse)


@pytest.mark.parametrize("envelope", ["docker", "text", "cloudwatch"])
@pytest.mark.parametrize("boundary", ["between-lines", "mid-line"])
def test_a_multi_member_gzip_is_read_as_one_stream(envelope, boundary, load, warehouse, tmp_path):
    """`cat a.gz b.gz`, Firehose objects, logrotate's `delaycompress` joins: members back to back."""
    data = "".join(line + "\n" for line in LINES[envelope][:9]).encode()
    split = data.index(b"\n", len(data) // 2) + (1 if boundary == "between-lines" else -5)
    result = load(write(tmp_path / (NAMES[envelope] + ".gz"), gzip.compress(data[:split]) + gzip.compress(data[split:])))
    assert rows(warehouse, "SELECT format, lines, rejected, damage FROM ingested_sources") == [(envelope, 9, 0, None)]
    assert rows(warehouse, "SELECT count(*) FROM migrate_events WHERE kind = 'applied'") == [(9,)]
    assert result.damaged == 0
    accounted(warehouse)


def test_rotated_docker_files_are_one_container_stream(load, warehouse, tmp_path):
    """`<id>-json.log.2.gz` (oldest, compressed), `.log.1`, then the live `.log`: one container, one run."""
    folder = tmp_path / "containers" / "c0ffee"
    lines = LINES["docker"][:9]
    write(folder / "c0ffee-json.log.2.gz", gzip.compress("".join(ln + "\n" for ln in lines[:3]).encode()))
    write(folder / "c0ffee-json.log.1", "".join(ln + "\n" for ln in lines[3:6]))
    write(folder / "c0ffee-json.log", "".join(ln + "\n" for ln in lines[6:]))
    result = load(tmp_path / "containers")
    assert result.sources == 3
    assert rows(warehouse, "SELECT DISTINCT format FROM ingested_sources") == [("docker",)]
    assert rows(warehouse, "SELECT count(DISTINCT stream_key) FROM log_lines") == [(1,)]
    assert rows(warehouse, "SELECT applied, outcome, from_version, to_version FROM runs") == [(9, "success", None, 9)]
    accounted(warehouse)


def test_every_bad_file_in_one_batch_is_recorded_and_the_good_ones_loaded(load, warehouse, tmp_path):
    """Nothing stops the batch: a folder with one of each kind of damage plus a clean file."""
    good = "".join(ln + "\n" for ln in LINES["docker"][:4])
    write(tmp_path / "a" / "clean-json.log", good)
    write(tmp_path / "b" / "empty-json.log", b"")
    write(tmp_path / "c" / "cut-json.log.gz", gzip.compress(good.encode())[:-20])
    write(tmp_path / "d" / "vector.jsonl", '{"host":"h","message":"x"}\n')
    write(tmp_path / "e" / "mixed-json.log", GOOD["docker"][0].encode() + b"\n[1]\n\xff\xfe\n")
    write(tmp_path / "f" / "garbled-json.log.zst", b"\x28\xb5\x2f\xfd" + b"\x00" * 20)
    result = load(tmp_path)
    assert result.sources == 6
    assert rows(warehouse, "SELECT count(*) FROM ingested_sources") == [(6,)]
    assert rows(warehouse, "SELECT count(*) FROM log_lines WHERE source_uri LIKE '%clean-json.log'") == [(4,)]
    assert result.lines == result.stored + result.duplicates + result.rejected
    accounted(warehouse)


# -------------------------------------------------------------------------------------------------- the CLI


def _cli(tmp_path: Path, *args: str):
    return CliRunner().invoke(main, ["--db", str(tmp_path / "w.duckdb"), "--no-progress", "ingest", *args])


def test_cli_names_a_missing_path_in_one_error_line(tmp_path):
    missing = tmp_path / "logs" / "nope-json.log"
    result = _cli(tmp_path, str(missing))
    assert result.exit_code == 1
    assert result.stderr == f"Error: {missing}: no such file or folder (check the path)\n"
    assert result.stdout == ""


def test_cli_names_the_valid_formats_for_an_unknown_format(tmp_path):
    path = write(tmp_path / "migrate.txt", "no change\n")
    result = _cli(tmp_path, "--format", "bogus", str(path))
    assert result.exit_code == 1
    assert result.stderr == ("Error: --format bogus: unknown format "
                             "(use one of: docker, kubernetes, loki, cloudwatch, slog, text, events, elastic, splunk, gcp, "
                             "datadog)\n")


def test_cli_names_a_glob_that_matches_nothing(tmp_path):
    write(tmp_path / "logs" / "migrate.txt", "no change\n")
    pattern = f"{tmp_path / 'logs'}/*.jsonl"
    result = _cli(tmp_path, pattern)
    assert result.exit_code == 1
    assert result.stderr == f"Error: {pattern}: the pattern matches no file (check the glob)\n"


def test_cli_names_a_file_the_kernel_refuses_to_open(tmp_path, monkeypatch):
    """An unreadable file (chmod 000 cannot show it when tests run as root): the open fails with EACCES."""
    path = write(tmp_path / "migrate.txt", "no change\n")
    real_open = LocalFileSystem._open

    def refuse(self, name, *args, **kwargs):
        if Path(name) == path:
            raise PermissionError(13, "Permission denied", str(name))
        return real_open(self, name, *args, **kwargs)

    monkeypatch.setattr(LocalFileSystem, "_open", refuse)
    result = _cli(tmp_path, str(path))
    assert result.exit_code == 1
    assert result.stderr == (f"Error: {path}: permission denied (check read access); every other source was "
                             "ingested, and these are retried on the next run\n")


def test_cli_exits_0_on_bad_records_and_counts_them(tmp_path):
    path = write(tmp_path / "c0ffee-json.log", f"{GOOD['docker'][0]}\n{{oops {DSN}\n{GOOD['docker'][1]}\n")
    result = _cli(tmp_path, str(path))
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    assert "3 lines (2 new, 0 duplicate, 1 rejected)" in result.stdout
    con = connect(tmp_path / "w.duckdb", read_only=True)
    try:
        assert rows(con, "SELECT line_no, reason FROM rejects") == [(2, "malformed_json")]
        accounted(con)
    finally:
        con.close()

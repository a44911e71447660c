"""Storing what was read: a group of small sources in one transaction, a large source batch by batch.

The SQL (`sql/ingest/*.sql`) works on a set of sources at once: `batch` holds (src, line_no, line) of every
source being stored, `batch_sources` one row per source with everything that is per source (its URI, its
file stream, Hive path labels, mtime, the text envelope's carried timestamp, whether it had rows before).
So 5,000 pod logs of 30 lines cost one staging pass and one set of statements, not 5,000.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb
import numpy as np
import pyarrow as pa

from pipeline.core.assets import sql_text
from pipeline.core.config import Config
from pipeline.core.redact import redact
from pipeline.ingest import envelopes
from pipeline.ingest.batches import Batch
from pipeline.ingest.sources import ReadOutcome, Source
from pipeline.warehouse import execute, one, statements, transaction
from pipeline.warehouse.execution import ARROW_CHUNK

_TYPED = ("CREATE OR REPLACE TEMP VIEW typed_batch AS SELECT b.src, b.line_no, b.line AS raw, s.file_stream, s.mtime, "
          "s.carry_ts, s.carry_origin FROM batch b JOIN batch_sources s USING (src)")
_PY_REJECTS = ("INSERT INTO rejects SELECT s.source_uri, r.line_no, r.reason, left(redact(r.raw), 4096), $load_id "
               "FROM py_rejects r JOIN batch_sources s USING (src)")
_SEEN = "INSERT INTO source_seen SELECT src, ts, content_hash, count(*) FROM keyed GROUP BY ALL"
_IDS = "INSERT INTO source_ids SELECT src, line_id FROM keyed WHERE src IN (SELECT src FROM batch_sources WHERE had_rows)"
_BATCH = pa.schema([("src", pa.int32()), ("line_no", pa.int64()), ("line", pa.large_string())])
_REJECTS = pa.schema([("src", pa.int32()), ("line_no", pa.int64()), ("reason", pa.string()), ("raw", pa.string())])


@dataclass
class Member:
    """One source being stored, and what is known of it before SQL."""

    src: Source
    fingerprint: str
    kind: str  # the detected format; `unknown`: JSON of no known shape, every record rejected
    had_rows: bool  # an earlier load of it left rows (it changed since): its vanished lines must go
    damage: str | None = None
    read: int = 0  # records read
    refused: int = 0  # records rejected before SQL
    carry: tuple[datetime | None, str | None] = (None, None)  # text: the last timestamp of the previous batch

    @property
    def envelope(self) -> str:
        return "docker" if self.kind == "unknown" else self.kind


@dataclass(frozen=True)
class Stored:
    """What storing some sources did."""

    sources: int = 0
    lines: int = 0
    stored: int = 0
    rejected: int = 0
    duplicates: int = 0
    damaged: int = 0

    def __add__(self, other: Stored) -> Stored:
        return Stored(*(a + b for a, b in zip(self.__dict__.values(), other.__dict__.values(), strict=True)))


def file_stream(src: Source) -> str:
    """The stream of a source's lines when the envelope names none: the file (Docker rotates `<id>-json.log`
    into `<id>-json.log.1`…: one container, one stream)."""
    base = re.sub(r"\.(gz|zst)$", "", src.uri)
    base = re.sub(r"(\.log)\.\d+$", r"\1", base)
    return "file:" + base


class Loader:
    """Stores members on one connection, for one load (`load_id`)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, config: Config, load_id: str) -> None:
        self.con = con
        self.config = config
        self.load_id = load_id

    def load_group(self, members: Sequence[tuple[Member, Batch]]) -> Stored:
        """Small sources of one envelope, read whole: one transaction stores them all (a kill undoes it whole)."""
        group = [m for m, _ in members]
        tables, rejects = [], []
        for i, (member, batch) in enumerate(members):
            member.read, member.refused = batch.records, len(batch.rejects)
            n = batch.table.num_rows
            if n:
                tables.append(pa.Table.from_arrays([pa.array(np.full(n, i, dtype=np.int32)), *batch.table.columns],
                                                   schema=_BATCH))
            rejects.extend((i, *r) for r in batch.rejects)
        table = pa.concat_tables(tables).combine_chunks() if tables else _BATCH.empty_table()
        table = pa.Table.from_batches(table.to_batches(max_chunksize=ARROW_CHUNK), schema=_BATCH)
        with transaction(self.con):
            self._register_sources(group)
            self._run("ingest/forget_sources", pending=False)
            self._store(group[0].envelope, table, rejects, grouped=len(group) > 1, seen=False,
                        ids=any(m.had_rows for m in group))
            return self._finish(group)

    def load_large(self, member: Member, batches: Iterator[Batch], outcome: ReadOutcome) -> Stored:
        """One source batch by batch, each in its own short transaction (so the batches are not all held in
        memory until one commit); it is listed in `pending_sources` until it is stored whole."""
        with transaction(self.con):
            self._register_sources([member])
            self._run("ingest/forget_sources", pending=True)
        for batch in batches:
            member.read += batch.records
            member.refused += len(batch.rejects)
            rejects = [(0, *r) for r in batch.rejects]
            n = batch.table.num_rows
            table = pa.Table.from_arrays([pa.array(np.zeros(n, dtype=np.int32)), *batch.table.columns], schema=_BATCH)
            with transaction(self.con):
                self._register_sources([member])
                self._store(member.envelope, table, rejects, grouped=False, seen=True, ids=member.had_rows)
                if member.envelope == "text" and n:  # a line without its own time takes the last one before it
                    last = one(self.con, "SELECT ts, ts_origin FROM staged ORDER BY line_no DESC LIMIT 1")
                    member.carry = (last[0], last[1]) if last else member.carry
        member.damage = outcome.damage
        with transaction(self.con):
            self._register_sources([member])
            return self._finish([member])

    def _run(self, name: str, **params: object) -> None:
        for statement in statements(name):
            execute(self.con, statement, {"load_id": self.load_id, **params})

    def _register_sources(self, members: Sequence[Member]) -> None:
        now = datetime.now(UTC)
        labels = [m.src.hive_labels() for m in members]
        self.con.register("batch_sources", pa.table({
            "src": pa.array(range(len(members)), pa.int32()),
            "source_uri": [m.src.display_uri for m in members],
            "file_stream": [file_stream(m.src) for m in members],
            "path_env": [h.get("env") or h.get("environment") for h in labels],
            "path_service": [h.get("service") or h.get("service_name") or h.get("app") for h in labels],
            "path_database": [h.get("database") or h.get("db") or h.get("tenant") for h in labels],
            "mtime": pa.array([(m.src.modified or now).astimezone(UTC).replace(tzinfo=None) for m in members],
                              pa.timestamp("us")),
            "carry_ts": pa.array([m.carry[0] for m in members], pa.timestamp("us")),
            "carry_origin": pa.array([m.carry[1] for m in members], pa.string()),
            "had_rows": pa.array([m.had_rows for m in members], pa.bool_()),
            "size_bytes": pa.array([m.src.size for m in members], pa.int64()),
            "fingerprint": [m.fingerprint for m in members],
            "format": [m.kind for m in members],
            "damage": pa.array([m.damage for m in members], pa.string()),
            "read": pa.array([m.read for m in members], pa.int64()),
            "refused": pa.array([m.refused for m in members], pa.int64()),
            "rereads": pa.array([redact(m.src.rereads) if m.src.rereads else None for m in members], pa.string()),
        }))

    def _store(self, envelope: str, table: pa.Table, rejects: list[tuple[int, int, str, str]], *, grouped: bool,
               seen: bool, ids: bool) -> None:
        con, cfg = self.con, self.config.ingest
        if rejects:
            con.register("py_rejects", pa.Table.from_pylist(
                [dict(zip(_REJECTS.names, r, strict=True)) for r in rejects], schema=_REJECTS))
            try:
                execute(con, _PY_REJECTS, {"load_id": self.load_id})
            finally:
                con.unregister("py_rejects")
        if not table.num_rows:
            return
        con.register("batch", table)
        try:
            con.execute(_TYPED)
            execute(con, sql_text("ingest/stage").replace("{envelope}", envelopes.envelope_sql(envelope)), {
                "tz": cfg.verbose_timezone, "default_env": cfg.default_env, "default_service": cfg.default_service,
                "default_database": cfg.default_database, **cfg.time_window()})
            lo, hi = one(con, "SELECT min(ts), max(ts) FROM staged WHERE reason IS NULL") or (None, None)
            self._run("ingest/store_batch", lo=lo, hi=hi, grouped=grouped)
            if seen:
                con.execute(_SEEN)
            if ids:
                con.execute(_IDS)
        finally:
            con.unregister("batch")

    def _finish(self, members: Sequence[Member]) -> Stored:
        if any(m.had_rows for m in members):
            self._run("ingest/vanished")
        self._run("ingest/finish_sources")
        row = one(self.con, "SELECT count(*), sum(lines), sum(stored), sum(rejected), sum(duplicates), "
                            "count(damage) FROM finished")
        return Stored(*(int(v or 0) for v in row)) if row else Stored()

"""The warehouse: numbered schema steps applied once, older files upgraded, newer files refused untouched,
transactions that roll back whole, and statements split by DuckDB's own parser."""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from pipeline.api import ingest
from pipeline.cli import main
from pipeline.core.config import Config
from pipeline.core.errors import WarehouseError
from pipeline.warehouse import connect, transaction
from pipeline.warehouse.execution import split
from pipeline.warehouse.migrations import current_version, steps

from .conftest import CAPTURES, FIXTURES

OLD_SCHEMA = FIXTURES / "warehouses" / "schema-0.1.0.sql"


def _old_warehouse(path: Path) -> Path:
    """A file as migrate-lens 0.1.0 left it: its tables, no schema_version, and a run in it."""
    con = duckdb.connect(str(path))
    con.execute(OLD_SCHEMA.read_text(encoding="utf-8"))
    con.execute("INSERT INTO runs (run_id, stream_key, env, service, database, command_known, applied, outcome, "
                "left_dirty, verbose_mode, events) VALUES ('r1', 's1', 'prod', 'orders', 'orders', false, 1, "
                "'success', false, false, 1)")
    con.close()
    return path


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_new_warehouse_records_every_schema_step_once(tmp_path):
    con = connect(tmp_path / "w.duckdb")
    con.close()
    con = connect(tmp_path / "w.duckdb")  # a second open applies nothing again
    recorded = con.execute("SELECT version, name FROM schema_version ORDER BY version").fetchall()
    con.close()
    assert recorded == [(s.version, s.name) for s in steps()]
    assert recorded[-1][0] == current_version()


def test_a_0_1_0_warehouse_is_upgraded_by_a_writing_command_and_keeps_its_rows(tmp_path):
    db = _old_warehouse(tmp_path / "old.duckdb")
    con = connect(db)
    assert con.execute("SELECT max(version) FROM schema_version").fetchall() == [(current_version(),)]
    assert con.execute("SELECT run_id, outcome FROM runs").fetchall() == [("r1", "success")]
    assert con.execute("SELECT count(*) FROM pending_streams WHERE stream_key = 's1'").fetchall() == [(1,)]
    result = ingest(con, [str(CAPTURES / "0012_up.txt")], config=Config())  # the new columns are filled
    assert result.runs == 1
    assert con.execute("SELECT outcome, version_shown FROM runs WHERE run_id <> 'r1'").fetchall() == [("success", True)]
    con.close()


def test_query_on_an_old_warehouse_names_upgrade_and_upgrade_lets_it_read(tmp_path):
    db = _old_warehouse(tmp_path / "old.duckdb")
    before = _sha(db)
    refused = CliRunner().invoke(main, ["query", "SELECT count(*) AS n FROM runs", "--db", str(db)])
    assert refused.exit_code == 1
    assert refused.stderr == (f"Error: {db}: the warehouse has schema version 0 and this build reads "
                              f"{current_version()}; run `migrate-lens upgrade --db {db}` (it keeps every row)\n")
    assert _sha(db) == before
    upgraded = CliRunner().invoke(main, ["upgrade", "--db", str(db)])
    assert upgraded.exit_code == 0, upgraded.output
    assert upgraded.stdout == f"{db}: schema upgraded from version 0 to {current_version()}\n"
    again = CliRunner().invoke(main, ["upgrade", "--db", str(db)])
    assert again.stdout == f"{db}: schema version {current_version()}, already current\n"
    answered = CliRunner().invoke(main, ["query", "SELECT count(*) AS n FROM runs", "--format", "csv", "--db", str(db)])
    assert answered.exit_code == 0 and answered.stdout == "n\n1\n"


def test_a_warehouse_from_a_newer_build_is_refused_and_left_unchanged(tmp_path):
    db = tmp_path / "newer.duckdb"
    con = connect(db)
    con.execute("INSERT INTO schema_version VALUES (?, 'from_the_future', now()::TIMESTAMP)", [current_version() + 1])
    con.close()
    before = _sha(db)
    message = (f"{db}: written by a newer migrate-lens (schema version {current_version() + 1}; this build knows up "
               f"to {current_version()}); upgrade migrate-lens, or use another --db. The file was not changed")
    for read_only in (False, True):
        with pytest.raises(WarehouseError) as caught:
            connect(db, read_only=read_only)
        assert str(caught.value) == message
    result = CliRunner().invoke(main, ["--db", str(db), "ingest", str(CAPTURES / "0012_up.txt")])
    assert result.exit_code == 1 and result.stderr == f"Error: {message}\n"
    assert _sha(db) == before and not Path(f"{db}.wal").exists()


def test_upgrade_refuses_a_path_with_no_warehouse(tmp_path):
    result = CliRunner().invoke(main, ["upgrade", "--db", str(tmp_path / "typo.duckdb")])
    assert result.exit_code == 1
    assert result.stderr == f"Error: {tmp_path / 'typo.duckdb'}: no warehouse there to upgrade (check --db)\n"
    assert not (tmp_path / "typo.duckdb").exists()


def test_a_failed_schema_step_leaves_the_file_at_its_old_version(tmp_path, monkeypatch):
    from pipeline.warehouse import migrations

    db = _old_warehouse(tmp_path / "old.duckdb")
    broken = (*steps()[:-1], migrations.Step(steps()[-1].version, steps()[-1].name, "SELECT * FROM no_such_table"))
    monkeypatch.setattr(migrations, "steps", lambda: broken)
    with pytest.raises(duckdb.Error):
        connect(db)
    monkeypatch.undo()
    con = duckdb.connect(str(db))
    tables = {t for (t,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    con.close()
    assert "schema_version" not in tables  # the whole migration rolled back


def test_transaction_rolls_back_everything_when_the_block_raises(tmp_path):
    con = connect(tmp_path / "w.duckdb")
    with pytest.raises(KeyboardInterrupt), transaction(con):
        con.execute("INSERT INTO silences VALUES ('s', '{}', now()::TIMESTAMP, now()::TIMESTAMP, 'c', 'me')")
        raise KeyboardInterrupt
    with transaction(con):
        con.execute("INSERT INTO silences VALUES ('t', '{}', now()::TIMESTAMP, now()::TIMESTAMP, 'c', 'me')")
    assert con.execute("SELECT silence_id FROM silences").fetchall() == [("t",)]
    con.close()


def test_statements_are_split_by_duckdb_not_by_a_semicolon_at_a_line_end():
    sql = "SELECT 'a;\nb' AS x;\n-- a comment;\nSELECT $p AS y;\nCREATE OR REPLACE MACRO f(v) AS v || ';'\n"
    parts = split(sql)
    assert len(parts) == 3
    assert parts[0] == "SELECT 'a;\nb' AS x"
    assert parts[2].endswith("AS v || ';'")

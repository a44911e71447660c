"""Secrets never reach the warehouse: the Python and the DuckDB redaction agree on a corpus of shapes."""

from __future__ import annotations

import duckdb
import pytest

from pipeline.core import redact

# (text holding a secret, the secret itself)
SECRETS = [
    ("postgres://app:S3cretPw@db:5432/app?sslmode=disable", "S3cretPw"),
    ('failed to open database, "postgres://billing:Sup3r$ecret@db-prod:5432/t?x=1": dial tcp', "Sup3r$ecret"),
    ("postgresql://u:p%40ss@host/db", "p%40ss"),
    ("mysql://root:toor123@tcp(10.0.0.1:3306)/app", "toor123"),
    ("root:toor456@tcp(10.0.0.1:3306)/app?parseTime=true", "toor456"),
    ("clickhouse://default:chpass99@ch:9000/db", "chpass99"),
    ("mongodb+srv://admin:m0ngoPw@cluster0.example.net/db", "m0ngoPw"),
    ("redis://:redisPw77@cache:6379/0", "redisPw77"),
    ("host=db user=app password=pgConnPw dbname=app", "pgConnPw"),
    ("PGPASSWORD=envPw123 migrate up", "envPw123"),
    ("?sslpassword=certPw&sslmode=verify-full", "certPw"),
    ("AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
    ("aws_access_key_id AKIAIOSFODNN7EXAMPLE in use", "AKIAIOSFODNN7EXAMPLE"),
    ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N", "dozjgNryP4J3jVmNHl0w5N"),
    ("token: ghp_abcdefghijklmnopqrstuvwxyz0123456789", "ghp_abcdefghijklmnopqrstuvwxyz0123456789"),
    ('{"api_key": "sk_live_51H8abcdefg"}', "sk_live_51H8abcdefg"),
    ("curl -H 'Authorization: Basic dXNlcjpwYXNzd29yZA=='", "dXNlcjpwYXNzd29yZA=="),
]

HARMLESS = [
    "1/u create_users_table (23.619417ms)",
    "error: Dirty database version 16. Fix and force version.",
    "Finished 4/u backfill_order_status (read 2.159996ms, ran 519.321692ms)",
    "error: migration failed: syntax error at or near \")\" (column 1) in line 5: CREATE TABLE orders (",
    "file:///srv/mig/app",
]


@pytest.fixture(scope="module")
def con():
    c = duckdb.connect()
    c.execute(redact.macro_sql())
    yield c
    c.close()


@pytest.mark.parametrize(("text", "secret"), SECRETS)
def test_python_redaction_removes_the_secret(text, secret):
    assert secret not in redact.redact(text)
    assert redact.MASK in redact.redact(text)


@pytest.mark.parametrize(("text", "secret"), SECRETS)
def test_duckdb_macro_agrees_with_python(con, text, secret):
    [(out,)] = con.execute("SELECT redact(?)", [text]).fetchall()
    assert secret not in out
    assert out == redact.redact(text)


@pytest.mark.parametrize("text", HARMLESS)
def test_ordinary_migrate_lines_are_untouched(con, text):
    assert redact.redact(text) == text
    assert con.execute("SELECT redact(?)", [text]).fetchall()[0][0] == text


def test_dsn_keeps_user_and_host_for_the_reader():
    assert redact.redact("postgres://app:pw@db:5432/x") == "postgres://app:***@db:5432/x"


def test_secret_never_reaches_the_warehouse(tmp_path, warehouse, load):
    log = tmp_path / "env=prod" / "leak.log"
    log.parent.mkdir()
    log.write_text("".join(f'error: failed to open database, "{text}"\n' for text, _ in SECRETS), encoding="utf-8")
    bad = tmp_path / "bad.jsonl"  # every record is cut short, so each lands in rejects with its raw text
    bad.write_text("".join('{"log": "x", "oops": "' + text.replace('"', "'") + "\n" for text, _ in SECRETS),
                   encoding="utf-8")
    result = load(log, bad)
    assert result.rejected == len(SECRETS) and result.stored == len(SECRETS)
    # Every text column of every table, searched for every secret (storage compression would hide bytes).
    columns = warehouse.execute(
        "SELECT c.table_name, c.column_name FROM duckdb_columns() c JOIN duckdb_tables() t USING (table_oid) "
        "WHERE NOT t.temporary AND c.data_type = 'VARCHAR' AND c.schema_name = 'main'"
    ).fetchall()
    assert {"log_lines", "rejects", "migrate_events", "runs", "ingested_sources"} <= {t for t, _ in columns}
    for table, column in columns:
        for _, secret in SECRETS:
            hits = warehouse.execute(
                f'SELECT count(*) FROM "{table}" WHERE contains("{column}", ?)', [secret]
            ).fetchall()[0][0]
            assert hits == 0, (table, column, secret)

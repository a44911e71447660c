"""verify --store: the results in verify_results, and what reads them: the rollback-readiness ledger, the
finding down_test_failed, the weekly review, rollback_readiness_gaps and lint_vs_history."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from click.testing import CliRunner

from pipeline.analyze import analyze
from pipeline.api import ingest
from pipeline.cli import main
from pipeline.core.config import Config
from pipeline.core.vocabulary import VERIFY_CHECKS
from pipeline.report import report
from pipeline.verify import store, verify
from pipeline.warehouse import connect

from .conftest import rows
from .kit.fleet import Fleet
from .test_verify import USERS, folder

T0 = datetime(2026, 10, 5, 10, 0)
BROKEN_DOWN = {**USERS, "2_email_index.up.sql": "CREATE INDEX users_email ON users (email);",
               "2_email_index.down.sql": "-- nothing\n"}


def test_store_writes_one_row_per_version_and_check_and_replaces_the_service(postgres, tmp_path, monkeypatch):
    monkeypatch.setenv("GITHUB_SHA", "0123abcd")  # tmp_path is no git checkout: the CI's variable is used
    migrations = folder(tmp_path / "m", BROKEN_DOWN)
    result = verify(migrations, database=postgres.conninfo)
    con = connect(tmp_path / "w.duckdb")
    assert store(con, result, "billing") == 12
    stored = rows(con, 'SELECT version, "check", status, detail, folder, git_commit, verified_at FROM verify_results '
                       "WHERE service = 'billing' ORDER BY version, rowid")
    assert [(v, c, s) for v, c, s, *_ in stored] == [
        *[(1, check, "pass") for check in VERIFY_CHECKS],
        (2, "up", "pass"), (2, "down", "pass"), (2, "schema_restored", "fail"), (2, "data_restored", "pass"),
        (2, "reapply", "fail"), (2, "idempotent_up", "fail")]
    assert stored[8][3] == ("left behind: index public.users_email "
                            "(CREATE INDEX users_email ON public.users USING btree (email))")
    assert {r[4:] for r in stored} == {(str(migrations), "0123abcd", result.verified_at)}
    assert stored[0][3] is None  # a pass has no detail
    assert store(con, verify(folder(tmp_path / "clean", USERS), database=postgres.conninfo), "billing") == 6
    assert rows(con, "SELECT count(*) FROM verify_results") == [(6,)]
    con.close()


def test_the_ledger_review_and_queries_show_how_the_down_fared_in_ci(postgres, tmp_path):
    fleet = Fleet(tmp_path / "logs")
    scripts = [(1, "create_users", 12.0), (2, "email_index", 30.0)]
    fleet.up("staging", "billing", "main", T0, scripts)
    fleet.up("prod", "billing", "main", T0 + timedelta(days=1), scripts)
    fleet.down("staging", "billing", "main", T0 + timedelta(days=2), [(2, "email_index", 5.0)])
    migrations = folder(tmp_path / "m", BROKEN_DOWN)
    db = str(tmp_path / "w.duckdb")
    runner = CliRunner()
    verified = runner.invoke(main, ["verify", str(migrations), "--database", postgres.conninfo, "--store", "billing",
                                    "--db", db])
    assert verified.exit_code == 3, verified.output
    linted = runner.invoke(main, ["lint", str(migrations), "--store", "billing", "--db", db, "--fail-on", "never"])
    assert linted.exit_code == 0, linted.output

    now = datetime.now(UTC).replace(tzinfo=None)
    as_of = now + timedelta(days=1)  # verify stamps the wall clock (UTC); the analysis must see it
    con = connect(db)
    ingest(con, [str(fleet.root)], config=Config(), progress=False)
    analyze(con, config=Config(), as_of=as_of)
    ledger = rows(con, "SELECT version, in_prod, down_test, down_test_failed_checks, down_tested_at::DATE "
                       "FROM rollback_readiness WHERE service = 'billing' ORDER BY version")
    today = now.date()
    assert ledger == [(1, True, "passed", None, today), (2, True, "failed", "schema_restored, reapply", today)]
    [finding] = rows(con, "SELECT env, service, version, severity, status, explanation FROM findings "
                          "WHERE kind = 'down_test_failed'")
    assert finding == ("prod", "billing", 2, "warning", "open",
                       (f"billing: version 2 (email_index) is in prod, and its down failed in CI on {today:%Y-%m-%d} "
                        "(schema_restored, reapply): left behind: index public.users_email (CREATE INDEX users_email "
                        "ON public.users USING btree (email))"))
    html = report(con, config=Config(), as_of=as_of, out=tmp_path / "out").path.read_text()
    con.close()
    assert f'data-ci="{today:%Y-%m-%d}: failed (schema_restored, reapply)"' in html
    assert f'data-ci="{today:%Y-%m-%d}: passed"' in html  # version 1: in prod, its down never tried in staging
    assert 'id="down_test_failed"' in html

    gaps = json.loads(runner.invoke(main, ["--db", db, "query", "rollback_readiness_gaps", "--format", "json"]).stdout)
    assert {g["version"]: g["down_tested_in_ci"] for g in gaps} == {
        1: f"{today:%Y-%m-%d}: passed", 2: f"{today:%Y-%m-%d}: failed (schema_restored, reapply)"}
    bitten = json.loads(runner.invoke(main, ["--db", db, "--as-of", as_of.isoformat(), "query", "lint_vs_history",
                                             "--format", "json"]).stdout)
    assert [(b["version"], b["rollbacks"], b["down_test"]) for b in bitten] == [
        (2, 1, "failed (schema_restored, reapply)")]

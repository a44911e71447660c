"""A hostile week: each class of defect a tester found, kept from coming back. Every test asserts the exact
one-line message, the exit code and the accounting."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import main

from .conftest import CAPTURES

CLOCK = ["--as-of", "2100-01-01T00:00:00Z"]


def _cli(*args: str):
    return CliRunner().invoke(main, [*args])


# ---------------------------------------------------------------- stale or missing analysis is not health

def test_report_and_alert_refuse_when_nothing_was_analyzed(tmp_path):
    db = str(tmp_path / "w.duckdb")
    assert _cli("ingest", str(CAPTURES / "0033_up_syntax_error.txt"), "--db", db).exit_code == 0
    for command in ("report", "alert"):
        result = _cli(command, "--db", db, "--out", str(tmp_path / "out"), *CLOCK)
        assert result.exit_code == 1
        assert result.stderr == (f"Error: {command}: nothing was analyzed yet; run `migrate-lens analyze` first "
                                 "(or `migrate-lens run`, which does)\n")
    assert not (tmp_path / "out" / "reports").exists()


def test_report_refuses_an_analysis_older_than_the_last_ingest_until_analyze_runs_again(tmp_path):
    db = str(tmp_path / "w.duckdb")
    assert _cli("ingest", str(CAPTURES / "0012_up.txt"), "--db", db).exit_code == 0
    assert _cli("analyze", "--db", db, *CLOCK).exit_code == 0
    assert _cli("report", "--db", db, "--out", str(tmp_path / "out"), *CLOCK).exit_code == 0
    assert _cli("ingest", str(CAPTURES / "0033_up_syntax_error.txt"), "--db", db).exit_code == 0
    stale = _cli("report", "--db", db, "--out", str(tmp_path / "out"), *CLOCK)
    assert stale.exit_code == 1
    when = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"
    assert re.fullmatch(rf"Error: report: sources were ingested at {when} UTC, after the last analysis \({when}\); "
                        r"run `migrate-lens analyze` first \(or `migrate-lens run`, which does\)\n", stale.stderr)
    assert _cli("analyze", "--db", db, *CLOCK).exit_code == 0
    assert _cli("report", "--db", db, "--out", str(tmp_path / "out"), *CLOCK).exit_code == 0


def test_an_unchanged_reingest_does_not_make_the_analysis_stale(tmp_path):
    db = str(tmp_path / "w.duckdb")
    capture = str(CAPTURES / "0012_up.txt")
    assert _cli("ingest", capture, "--db", db).exit_code == 0
    assert _cli("analyze", "--db", db, *CLOCK).exit_code == 0
    assert "skipped 1 unchanged" in _cli("ingest", capture, "--db", db).stdout
    assert _cli("alert", "--dry-run", "--db", db, "--out", str(tmp_path / "out"), *CLOCK).exit_code == 0


# ---------------------------------------------------------------- a mistyped --db creates nothing

@pytest.mark.parametrize("command", [["analyze"], ["report"], ["alert", "--dry-run"], ["query", "SELECT 1"],
                                     ["export", "--parquet", "PARQUET"]])
def test_commands_that_only_read_refuse_a_path_with_no_warehouse(tmp_path, command):
    db = tmp_path / "typo.duckdb"
    args = [a.replace("PARQUET", str(tmp_path / "pq")) for a in command]
    result = _cli(*args, "--db", str(db), "--out", str(tmp_path / "out"))
    assert result.exit_code == 1
    assert result.stderr == (f"Error: {db}: no migrate-lens warehouse here (check --db, or run "
                             "`migrate-lens ingest` first)\n")
    assert not db.exists() and not Path(f"{db}.wal").exists()


@pytest.mark.parametrize("command", [["ingest", "CAPTURE"], ["run", "CAPTURE", "--dry-run"],
                                     ["silence", "--match", "env=prod", "--for", "1h", "--comment", "maintenance"]])
def test_commands_that_load_something_may_create_the_warehouse(tmp_path, command):
    db = tmp_path / "new.duckdb"
    args = [a.replace("CAPTURE", str(CAPTURES / "0012_up.txt")) for a in command]
    result = _cli(*args, "--db", str(db), "--out", str(tmp_path / "out"), *CLOCK)
    assert result.exit_code == 0, result.output
    assert db.exists()


# ---------------------------------------------------------------- named queries answer for the command's clock

def test_named_queries_default_their_clock_to_as_of_else_now(tmp_path):
    db = str(tmp_path / "w.duckdb")
    assert _cli("ingest", str(CAPTURES / "0035_up_dirty.txt"), "--db", db).exit_code == 0  # time: the file's mtime

    def dirty(*clock: str) -> list[str]:
        result = _cli("query", "dirty_now", "--format", "csv", "--db", db, *clock)
        assert result.exit_code == 0, result.stderr
        return result.stdout.splitlines()[1:]

    assert dirty("--as-of", "2000-01-01T00:00:00Z") == []  # before the run: nothing dirty yet
    assert len(dirty("--as-of", "2100-01-01T00:00:00Z")) == 1
    assert len(dirty()) == 1  # no --as-of: now, which is after the file was written
    listed = _cli("query", "--list", "--db", db).stdout
    assert "[as_of=now]" in listed and "2026-11-16" not in listed


# ---------------------------------------------------------------- output that cannot crash or reach a terminal

def test_csv_and_json_serialize_nested_values_and_csv_escapes_control_characters(tmp_path):
    db = str(tmp_path / "w.duckdb")
    assert _cli("ingest", str(CAPTURES / "0012_up.txt"), "--db", db).exit_code == 0
    sql = "SELECT [1, 2] AS l, {'k': 'v'} AS s, 'red' || chr(27) || '[31m' || chr(13) AS t"
    csv_out = _cli("query", sql, "--format", "csv", "--db", db)
    assert csv_out.exit_code == 0, csv_out.stderr
    assert csv_out.stdout == 'l,s,t\n"[1, 2]","{""k"": ""v""}",red\\x1b[31m\\x0d\n'
    json_out = _cli("query", sql, "--format", "json", "--db", db)
    assert json_out.stdout == '[{"l":[1,2],"s":{"k":"v"},"t":"red\\u001b[31m\\r"}]\n'


def test_the_shipped_lint_vs_history_query_exports_as_csv(tmp_path):
    db = str(tmp_path / "w.duckdb")
    folder = CAPTURES.parent / "migrations" / "concurrently-in-tx"
    assert _cli("lint", str(folder), "--store", "unknown", "--db", db, "--fail-on", "never").exit_code == 0
    assert _cli("ingest", str(CAPTURES / "0050_verbose_up_concurrently_fails.txt"), "--db", db).exit_code == 0
    result = _cli("query", "lint_vs_history", "--format", "csv", "--db", db, *CLOCK)
    assert result.exit_code == 0, result.stderr
    header, row = result.stdout.splitlines()
    assert header == ("service,version,rules,worst_lint,failed_runs,dirty_runs,rollbacks,rolled_back_in,down_test,"
                      "down_tested_at")
    # rolled_back_in is a list column (NULL here: no rollback); the CSV writer used to refuse it whole.
    # down_test and down_tested_at are NULL: no `verify --store` of this service
    assert row == 'unknown,9,"concurrently-in-transaction, not-idempotent",error,1,1,0,,,'


# ---------------------------------------------------------------- the rules file may change at any time

from .test_alerts import _finding, _rules, smtp_server  # noqa: F401  (the SMTP server fixture on 127.0.0.1)


def _alert_rows(con) -> list[tuple]:
    return con.execute("SELECT rule, route, status, sends, pending FROM alerts ORDER BY rule").fetchall()


def test_a_renamed_route_is_followed_and_a_removed_rule_resolves_quietly(warehouse, smtp_server, tmp_path):
    from pipeline.alerts import alert

    inbox, port = smtp_server
    clock = datetime(2026, 11, 16, 8, 0)
    _finding(warehouse, "dirty")
    _finding(warehouse, "slow", kind="duration_outlier", severity="warning", observed=9000.0, expected=1000.0)
    first = alert(warehouse, rules=_rules(port), as_of=clock, out=tmp_path)
    assert first.emails_sent == 2 and len(inbox.messages) == 2

    # oncall is renamed pager (same rule `dirty`), rule `slow` is deleted, and both findings resolve
    renamed = _rules(port).model_copy(update={
        "routes": [r.model_copy(update={"name": "pager"}) if r.name == "oncall" else r for r in _rules(port).routes],
        "rules": [r.model_copy(update={"route": "pager"}) for r in _rules(port).rules if r.name == "dirty"]})
    warehouse.execute("UPDATE findings SET status = 'resolved'")
    second = alert(warehouse, rules=renamed, as_of=clock + timedelta(hours=1), out=tmp_path)
    assert (second.resolved, second.emails_sent, second.emails_failed) == (2, 1, 0)
    assert second.summary().splitlines()[1:] == [
        "note: rule 'slow' is no longer in the rules file: 1 of its alerts resolved without a notice"]
    resolved_mail = inbox.messages[-1]
    assert len(inbox.messages) == 3 and resolved_mail["To"] == "oncall@localhost"
    assert "RESOLVED" in resolved_mail["Subject"].upper() and "(pager)" in resolved_mail["Subject"]
    assert _alert_rows(warehouse) == [("dirty", "pager", "resolved", 2, None), ("slow", "team", "resolved", 1, None)]


def test_a_failed_delivery_exits_1_keeps_it_pending_and_the_next_run_sends_it_once(tmp_path, smtp_server):
    from pipeline.warehouse import connect

    inbox, port = smtp_server
    db = tmp_path / "w.duckdb"
    con = connect(db)
    _finding(con, "dirty")
    con.close()
    rules = tmp_path / "rules.toml"
    text = ('[smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\nsender = "lens@localhost"\ntimeout_seconds = 2\n'
            '[[routes]]\nname = "oncall"\nto = ["oncall@localhost"]\n'
            '[[rules]]\nname = "dirty"\nkinds = ["dirty_open"]\nroute = "oncall"\n')
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        dead = closed.getsockname()[1]
    rules.write_text(text.format(port=dead), encoding="utf-8")
    args = ["alert", "--rules", str(rules), "--db", str(db), "--out", str(tmp_path / "out"),
            "--as-of", "2026-11-16T08:00:00Z"]
    failed = _cli(*args)
    assert failed.exit_code == 1
    assert failed.stdout.startswith("alerts: 1 firing, 0 resolved, 0 silenced; e-mails: 0 sent, 1 failed and kept pending")
    assert failed.stderr.startswith("Error: alert: 1 e-mail could not be sent (oncall: ConnectionRefusedError")
    assert failed.stderr.endswith("; kept pending, retried on the next run (check [smtp])\n")
    rules.write_text(text.format(port=port), encoding="utf-8")
    for _ in range(2):  # delivered on the next run, and only once
        assert _cli(*args).exit_code == 0
    assert len(inbox.messages) == 1


def test_the_alert_mail_links_the_review_of_its_week_and_shows_log_text_inert(warehouse, smtp_server, tmp_path):
    from pipeline.alerts import alert

    inbox, port = smtp_server
    (tmp_path / "reports").mkdir()
    for week in ("2026-W45", "2026-W46", "2026-W47"):  # a later week's page exists too: not the one to link
        (tmp_path / "reports" / f"{week}.html").write_text("<html></html>", encoding="utf-8")
    _finding(warehouse, "dirty", explanation="prod/billing/tenant_007 is dirty \x1b[2J\x07at version 23")
    alert(warehouse, rules=_rules(port), as_of=datetime(2026, 11, 18, 8, 0), out=tmp_path)
    body = inbox.messages[0].get_body(("plain",)).get_content()
    assert f"Weekly review: {(tmp_path / 'reports' / '2026-W46.html').resolve()}" in body
    assert "\x1b" not in body and "\\x1b[2J\\x07at version 23" in body


# ---------------------------------------------------------------- no input stops the batch

def test_a_record_nested_past_the_recursion_limit_is_rejected_and_its_neighbours_load(tmp_path):
    deep = '{"a":' * 1000 + "1" + "}" * 1000
    good = '{"log":"1/u add_users (2ms)\\n","stream":"stderr","time":"2026-11-12T10:00:01Z"}\n'
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "deep-json.log").write_text(deep + "\n" + good, encoding="utf-8")
    (tmp_path / "logs" / "good-json.log").write_text(good.replace("10:00:01", "10:00:02"), encoding="utf-8")
    (tmp_path / "logs" / "export.json").write_text('{"events":[' + deep + "]}\n", encoding="utf-8")
    db = str(tmp_path / "w.duckdb")
    result = _cli("ingest", str(tmp_path / "logs"), "--db", db)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("ingested 3 sources; skipped 0 unchanged; 4 lines (2 new, 0 duplicate, 2 rejected)")
    rejected = _cli("query", "SELECT split_part(source_uri, '/', -1) AS f, line_no FROM rejects ORDER BY f",
                    "--format", "csv", "--db", db).stdout
    assert rejected == "f,line_no\ndeep-json.log,1\nexport.json,1\n"


# ---------------------------------------------------------------- one file, one identity

def test_the_same_folder_by_another_spelling_or_a_symlink_is_unchanged(tmp_path, monkeypatch):
    logs = tmp_path / "logs"
    logs.mkdir()
    for name in ("0012_up.txt", "0033_up_syntax_error.txt"):
        (logs / name).write_bytes((CAPTURES / name).read_bytes())
    (tmp_path / "link").symlink_to(logs)
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    db = str(tmp_path / "w.duckdb")
    first = _cli("ingest", "../logs", "--db", db)
    assert first.exit_code == 0 and first.stdout.startswith("ingested 2 sources; skipped 0 unchanged")
    for spelling in (str(logs), str(tmp_path / "link"), str(tmp_path / "link" / "0012_up.txt"), "../logs/"):
        again = _cli("ingest", spelling, "--db", db)
        assert again.exit_code == 0 and "ingested 0 sources" in again.stdout, (spelling, again.output)
    counts = _cli("query", "SELECT (SELECT count(*) FROM ingested_sources) s, (SELECT count(*) FROM log_lines) l, "
                  "(SELECT count(*) FROM runs) r", "--format", "csv", "--db", db).stdout
    assert counts == "s,l,r\n2,13,2\n"


# ---------------------------------------------------------------- an unreadable folder is not skipped silently

# Root reads every folder: the child runs without the capabilities that let it (util-linux's setpriv).
_NO_OVERRIDE = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--inh-caps",
                "-dac_override,-dac_read_search", "--"]


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs util-linux's setpriv to drop root's override")
def test_an_unreadable_sub_folder_is_listed_as_failed_and_read_on_the_next_run(tmp_path):
    for sub, name in (("ok", "0012_up.txt"), ("locked", "0033_up_syntax_error.txt")):
        (tmp_path / "logs" / sub).mkdir(parents=True)
        (tmp_path / "logs" / sub / name).write_bytes((CAPTURES / name).read_bytes())
    locked = tmp_path / "logs" / "locked"
    locked.chmod(0o000)
    cmd = [*_NO_OVERRIDE, sys.executable, "-c", "from pipeline.cli import main; main()", "ingest",
           str(tmp_path / "logs"), "--db", str(tmp_path / "w.duckdb"), "--no-progress"]
    try:
        first = subprocess.run(cmd, capture_output=True, text=True)
    finally:
        locked.chmod(0o755)
    assert first.returncode == 1, first.stderr
    assert first.stdout.startswith("ingested 1 source; skipped 0 unchanged; 6 lines")
    assert first.stderr == (f"Error: {locked}: cannot list the folder (Permission denied); check its permissions; "
                            "every other source was ingested, and these are retried on the next run\n")
    second = subprocess.run(cmd, capture_output=True, text=True)
    assert second.returncode == 0, second.stderr
    assert second.stdout.startswith("ingested 1 source; skipped 1 unchanged; 7 lines")


# ---------------------------------------------------------------- a time outside the plausible window

@pytest.mark.parametrize("when", ["0000-01-01T00:00:00Z", "-0044-03-15T12:00:00Z", "1999-12-31T23:59:59Z",
                                  "2999-01-01T00:00:00Z"])
def test_a_record_time_outside_the_plausible_window_is_rejected_and_later_runs_work(tmp_path, when):
    good = '{"log":"1/u add_users (2ms)\\n","stream":"stderr","time":"2026-11-12T10:00:01Z"}\n'
    bad = good.replace("2026-11-12T10:00:01Z", when).replace("1/u add_users", "2/u add_orders")
    (tmp_path / "c0ffee-json.log").write_text(good + bad, encoding="utf-8")
    db = str(tmp_path / "w.duckdb")
    loaded = _cli("ingest", str(tmp_path / "c0ffee-json.log"), "--db", db)
    assert loaded.exit_code == 0 and "2 lines (1 new, 0 duplicate, 1 rejected)" in loaded.stdout
    rejected = _cli("query", "SELECT line_no, reason FROM rejects", "--format", "csv", "--db", db).stdout
    assert rejected == "line_no,reason\n2,bad_time\n"
    for command in (["analyze"], ["run", str(tmp_path / "c0ffee-json.log"), "--dry-run"]):
        later = _cli(*command, "--db", db, "--out", str(tmp_path / "out"), *CLOCK)
        assert later.exit_code == 0, later.output


def test_an_unexpected_failure_reading_one_source_names_it_and_the_others_load(tmp_path, monkeypatch):
    from pipeline.ingest import envelopes

    real = envelopes.detect

    def surprise(head: bytes):  # failure injection: a bug or an input nobody foresaw, in one source only
        if b"syntax error" in head:
            raise ValueError("a surprise")
        return real(head)

    monkeypatch.setattr(envelopes, "detect", surprise)
    db = str(tmp_path / "w.duckdb")
    result = _cli("ingest", str(CAPTURES / "0012_up.txt"), str(CAPTURES / "0033_up_syntax_error.txt"), "--db", db)
    assert result.exit_code == 1
    assert result.stdout.startswith("ingested 1 source; skipped 0 unchanged; 6 lines (6 new")
    assert result.stderr == (f"Error: {CAPTURES / '0033_up_syntax_error.txt'}: ValueError: a surprise; every other "
                             "source was ingested, and these are retried on the next run\n")
    monkeypatch.setattr(envelopes, "detect", real)
    again = _cli("ingest", str(CAPTURES / "0012_up.txt"), str(CAPTURES / "0033_up_syntax_error.txt"), "--db", db)
    assert again.exit_code == 0 and again.stdout.startswith("ingested 1 source; skipped 1 unchanged")


def test_two_paths_differing_only_in_a_masked_segment_are_two_sources(tmp_path):
    logs = tmp_path / "logs"
    for secret in ("s3cr3t-one", "s3cr3t-two"):  # a secret-looking folder name: redacted when stored
        folder = logs / f"token={secret}"
        folder.mkdir(parents=True)
        (folder / "0012_up.txt").write_bytes((CAPTURES / "0012_up.txt").read_bytes())
    db = str(tmp_path / "w.duckdb")
    result = _cli("ingest", str(logs), "--db", db)
    assert result.exit_code == 0 and result.stdout.startswith("ingested 2 sources"), result.output
    uris = _cli("query", "SELECT source_uri FROM ingested_sources ORDER BY 1", "--format", "csv", "--db", db).stdout
    assert "s3cr3t" not in uris and len(set(uris.splitlines()[1:])) == 2
    again = _cli("ingest", str(logs), "--db", db)
    assert again.stdout.startswith("ingested 0 sources; skipped 2 unchanged")


@pytest.mark.parametrize("end", ["\r", "\r\n", "\n"])
def test_classic_mac_line_ends_are_lines_too(tmp_path, end):
    text = (CAPTURES / "0012_up.txt").read_text(encoding="utf-8").replace("\n", end)
    (tmp_path / "up.txt").write_bytes(text.encode())
    db = str(tmp_path / "w.duckdb")
    result = _cli("ingest", str(tmp_path / "up.txt"), "--db", db)
    assert result.exit_code == 0 and "6 lines (6 new" in result.stdout, result.output
    runs = _cli("query", "SELECT applied, to_version FROM runs", "--format", "csv", "--db", db).stdout
    assert runs == "applied,to_version\n6,8\n"

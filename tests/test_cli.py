"""The command line: one summary line on success, one `Error:` line and exit 1 on a mistake the user can fix."""

from __future__ import annotations

from click.testing import CliRunner

from pipeline.cli import main

from .conftest import CAPTURES


def _invoke(tmp_path, *args: str):
    return CliRunner().invoke(main, ["--db", str(tmp_path / "w.duckdb"), "--no-progress", *args])


def test_ingest_prints_one_summary_line_and_reingest_skips(tmp_path):
    first = _invoke(tmp_path, "ingest", str(CAPTURES / "0012_up.txt"), str(CAPTURES / "0033_up_syntax_error.txt"))
    assert first.exit_code == 0, first.output
    assert first.stdout.count("\n") == 1
    assert first.stdout.startswith("ingested 2 sources; skipped 0 unchanged; 13 lines (13 new")
    again = _invoke(tmp_path, "ingest", str(CAPTURES / "0012_up.txt"))
    assert "ingested 0 sources; skipped 1 unchanged" in again.stdout


def test_run_ingests_then_analyzes_at_the_clock(tmp_path):
    result = _invoke(tmp_path, "--as-of", "2100-01-01T00:00:00Z", "run", str(CAPTURES / "0012_up.txt"),
                     str(CAPTURES / "0035_up_dirty.txt"), str(CAPTURES / "0013_up_again_nochange.txt"))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[1] == "runs by outcome: 1 dirty, 1 no_change, 1 success"
    assert lines[2].startswith("analyzed as of 2100-01-01 00:00Z: 6 script baselines (6 still learning); ")


def test_missing_path_is_one_error_line_exit_1(tmp_path):
    result = _invoke(tmp_path, "ingest", str(tmp_path / "nope"))
    assert result.exit_code == 1
    assert result.stderr == f"Error: {tmp_path / 'nope'}: no such file or folder (check the path)\n"


def test_bad_format_names_the_valid_ones(tmp_path):
    result = _invoke(tmp_path, "ingest", "--format", "bogus", str(CAPTURES / "0012_up.txt"))
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: --format bogus: unknown format (use one of: docker, kubernetes,")
    assert result.stderr.count("\n") == 1


def test_glob_matching_nothing_is_an_error(tmp_path):
    result = _invoke(tmp_path, "ingest", str(tmp_path / "*.jsonl"))
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ") and "matches no file" in result.stderr


def test_bad_config_names_each_field(tmp_path):
    config = tmp_path / "lens.toml"
    config.write_text('[ingest]\nbatch_lines = "many"\ncolour = "blue"\n', encoding="utf-8")
    result = CliRunner().invoke(main, ["--config", str(config), "--db", str(tmp_path / "w.duckdb"), "ingest", "x"])
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert "ingest.batch_lines: Input should be a valid integer" in result.stderr
    assert "ingest.colour: Extra inputs are not permitted" in result.stderr


def test_warehouse_that_is_not_duckdb_is_a_clear_error(tmp_path):
    bogus = tmp_path / "w.duckdb"
    bogus.write_text("not a database", encoding="utf-8")
    result = _invoke(tmp_path, "ingest", str(CAPTURES / "0012_up.txt"))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: {bogus}:") and result.stderr.count("\n") == 1


def test_debug_shows_the_traceback(tmp_path):
    result = CliRunner().invoke(main, ["--debug", "--db", str(tmp_path / "w.duckdb"), "ingest", str(tmp_path / "nope")])
    assert result.exit_code == 1
    assert result.exception is not None and type(result.exception).__name__ == "SourceError"


def test_a_second_writer_on_the_same_warehouse_refuses_clearly(tmp_path):
    import subprocess
    import sys
    import time

    db = tmp_path / "w.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", (f"import duckdb, time; con = duckdb.connect({str(db)!r}); print('ready', flush=True); "
                                "time.sleep(30)")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        result = _invoke(tmp_path, "ingest", str(CAPTURES / "0012_up.txt"))
        assert result.exit_code == 1
        assert result.stderr == (f"Error: {db}: the warehouse is in use by another migrate-lens process "
                                 "(wait for it to finish, or use another --db)\n")
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.1)
    after = _invoke(tmp_path, "ingest", str(CAPTURES / "0012_up.txt"))
    assert after.exit_code == 0, after.stderr


def test_common_options_work_after_the_command_too(tmp_path):
    db = tmp_path / "after.duckdb"
    result = CliRunner().invoke(main, ["ingest", str(CAPTURES / "0012_up.txt"), "--db", str(db), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert db.exists() and not (tmp_path / "migrate-lens.duckdb").exists()
    late = CliRunner().invoke(main, ["--db", str(tmp_path / "ignored.duckdb"), "analyze", "--db", str(db),
                                     "--as-of", "2100-01-01T00:00:00Z"])
    assert late.exit_code == 0, late.output
    assert late.stdout.startswith("analyzed as of 2100-01-01 00:00Z: 6 script baselines")
    assert not (tmp_path / "ignored.duckdb").exists()  # the option after the command wins


def test_debug_after_the_command_shows_the_traceback(tmp_path):
    result = CliRunner().invoke(main, ["ingest", str(tmp_path / "nope"), "--debug", "--db", str(tmp_path / "w.duckdb")])
    assert result.exit_code == 1
    assert type(result.exception).__name__ == "SourceError"


_TROUBLE = (str(CAPTURES / "0012_up.txt"), str(CAPTURES / "0033_up_syntax_error.txt"), str(CAPTURES / "0035_up_dirty.txt"))


def test_run_fail_on_exits_3_only_when_an_open_finding_reaches_the_severity(tmp_path):
    common = ["--as-of", "2100-01-01T00:00:00Z", "--out", str(tmp_path / "out"), "--no-progress"]
    quiet = CliRunner().invoke(main, ["run", *_TROUBLE, "--db", str(tmp_path / "a.duckdb"), *common,
                                      "--fail-on", "critical", "--dry-run"])
    assert quiet.exit_code == 0, quiet.output  # the captures' env is `unknown`: nothing is critical there
    loud = CliRunner().invoke(main, ["run", *_TROUBLE, "--db", str(tmp_path / "b.duckdb"), *common,
                                     "--fail-on", "warning", "--dry-run"])
    assert loud.exit_code == 3, loud.output
    assert "open: " in loud.stdout and "warning" in loud.stdout.split("open: ")[1]
    without = CliRunner().invoke(main, ["run", *_TROUBLE, "--db", str(tmp_path / "c.duckdb"), *common, "--dry-run"])
    assert without.exit_code == 0  # problems in the logs never fail the command unless asked


def test_run_fail_on_an_unreadable_source_exits_1_over_3(tmp_path, monkeypatch):
    from pipeline.ingest.sources import Source

    real = Source.fingerprint

    def unreadable(self: Source) -> str:  # failure injection: root reads every file, so refuse one here
        if self.uri.endswith("0033_up_syntax_error.txt"):
            raise PermissionError(13, "Permission denied")
        return real(self)

    monkeypatch.setattr(Source, "fingerprint", unreadable)
    result = CliRunner().invoke(main, ["run", *_TROUBLE, "--db", str(tmp_path / "w.duckdb"), "--dry-run",
                                       "--as-of", "2100-01-01T00:00:00Z", "--out", str(tmp_path / "out"),
                                       "--fail-on", "info"])
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ") and "0033_up_syntax_error.txt" in result.stderr
    assert result.stderr.endswith("every other source was ingested, and these are retried on the next run\n")


def test_run_fail_on_refuses_an_unknown_severity(tmp_path):
    result = CliRunner().invoke(main, ["run", str(CAPTURES / "0012_up.txt"), "--fail-on", "error",
                                       "--db", str(tmp_path / "w.duckdb")])
    assert result.exit_code == 2
    assert "'error' is not one of 'critical', 'warning', 'info'" in result.stderr

"""Every real golang-migrate capture, ingested as it was printed (the `text` envelope, one file = one run).

Expectations come from the capture itself and its exit code in index.tsv, never from our own output.
"""

from __future__ import annotations

import re
import statistics
from pathlib import Path

import pytest

from .conftest import capture_index, cycle_sleeps, rows

INDEX = capture_index()
APPLIED_LINE = re.compile(r"^(?:\d{4}/\d\d/\d\d \d\d:\d\d:\d\d )?(?:Finished )?\d+/[ud] .* \((?:read \S+, ran )?\S+\)$")


def expected_outcome(text: str, exit_code: int) -> str | None:
    """What a person reading the capture and its exit code would call the run; None = no run at all."""
    if not text.strip():
        return None  # `force` and SIGTERM-killed runs print nothing: no line, no run
    if text.startswith("Usage:"):
        return "error"  # -help (exit 0) and a usage error (exit 2) print the same; bare text has no exit code
    if exit_code == 0:
        body = re.sub(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d ", "", text, flags=re.MULTILINE)
        return "no_change" if body.splitlines()[0] == "no change" else "success"
    if "migration failed" in text:
        return "failed"
    if "Dirty database version" in text:
        return "dirty"
    if "can't acquire database lock" in text:
        return "locked"
    return "error"


@pytest.fixture(scope="module")
def captures_warehouse(tmp_path_factory: pytest.TempPathFactory):
    from pipeline.api import ingest
    from pipeline.core.config import Config
    from pipeline.warehouse import connect

    con = connect(tmp_path_factory.mktemp("captures") / "w.duckdb")
    result = ingest(con, [row["path"] for row in INDEX], config=Config(), progress=False)
    yield con, result
    con.close()


def _runs_of(con, path: str) -> list[tuple]:
    return rows(con, "SELECT outcome, applied, run_id FROM runs WHERE stream_key = ? ORDER BY started_at",
                ["file:" + path])


@pytest.mark.parametrize("row", INDEX, ids=[Path(r["file"]).stem for r in INDEX])
def test_capture_outcome_and_applied_count_match_the_capture(captures_warehouse, row):
    con, _ = captures_warehouse
    text = Path(row["path"]).read_text(encoding="utf-8")
    want = expected_outcome(text, int(row["exit_code"]))
    runs = _runs_of(con, row["path"])
    if want is None:
        assert runs == []
        return
    assert len(runs) == 1, f"one file is one migrate process, got {runs}"
    outcome, applied, run_id = runs[0]
    assert outcome == want
    assert applied == sum(bool(APPLIED_LINE.match(ln)) for ln in text.splitlines())
    events_applied = rows(con, "SELECT count(*) FROM migrate_events WHERE run_id = ? AND kind = 'applied'", [run_id])
    assert events_applied[0][0] == applied


def test_every_capture_line_is_accounted_for(captures_warehouse):
    con, result = captures_warehouse
    physical = sum(len(Path(r["path"]).read_text(encoding="utf-8").splitlines()) for r in INDEX)
    assert result.lines == physical
    assert rows(con, "SELECT count(*) FROM log_lines")[0][0] + result.duplicates == physical
    assert rows(con, "SELECT count(*) FROM rejects")[0][0] == 0


def _events(con, stem: str) -> list[tuple]:
    return rows(con, """
        SELECT kind, version, direction, name, error_class, error_message, sql_line, sql_column, error_detail,
               error_text, line_count
        FROM migrate_events WHERE stream_key LIKE ? ORDER BY seq""", [f"%/{stem}.txt"])


def test_multi_line_syntax_error_is_one_event_with_its_sql_body(captures_warehouse):
    con, _ = captures_warehouse
    [ev] = _events(con, "0033_up_syntax_error")
    kind, _, _, _, error_class, message, line, column, detail, text, line_count = ev
    assert (kind, error_class, line, column) == ("migration_failed", "syntax_error", 4, 5)
    assert message == 'syntax error at or near "total_cents"'
    assert detail == 'pq: syntax error at or near "total_cents"'
    assert "issued_at   TIMESTAMPTZ NOT NULL DEFAULT now()" in text
    assert line_count == 7


def test_in_line_on_a_continuation_line_is_still_parsed(captures_warehouse):
    # 0056: the pq DETAIL spans two lines, so `in line 0:` is on the second physical line.
    con, _ = captures_warehouse
    [ev] = _events(con, "0056_down_1_fails")
    assert ev[0] == "migration_failed" and ev[4] == "dependency" and ev[6] == 0
    assert ev[5].startswith("cannot drop table users because other objects depend on it")
    assert "DROP TABLE users;" in ev[9]


def test_verbose_failure_takes_its_version_from_read_and_execute(captures_warehouse):
    con, _ = captures_warehouse
    failed = [e for e in _events(con, "0050_verbose_up_concurrently_fails") if e[0] == "migration_failed"]
    assert [(e[1], e[2], e[3], e[4]) for e in failed] == [(9, "up", "add_lookup_indexes", "transaction_block")]


@pytest.mark.parametrize("stem", ["0026_goto_42_missing", "0027_goto_0_missing", "0066_empty_dir_up"])
def test_error_printed_twice_on_one_line_is_split_into_one_event(captures_warehouse, stem):
    con, _ = captures_warehouse
    [ev] = _events(con, stem)
    assert ev[0] == "missing_file"
    assert ev[9].count("no migration found for version") == 1
    assert ev[1] == int(re.search(r"version (\d+)", ev[9]).group(1))


def test_empty_down_file_is_a_stepped_version(captures_warehouse):
    con, _ = captures_warehouse
    empty = [e for e in _events(con, "0147_cycle08_down_8") if e[3] == "<empty>"]
    assert [(e[0], e[1], e[2]) for e in empty] == [("buffering", 5, "down"), ("applied", 5, "down")]


def test_dirty_version_and_version_command(captures_warehouse):
    con, _ = captures_warehouse
    assert rows(con, "SELECT dirty_version, to_version FROM runs WHERE stream_key LIKE '%0035_up_dirty.txt'") == [(9, 9)]
    assert _events(con, "0034_version_dirty")[0][:4] == ("version", 9, None, "(dirty)")


def test_malformed_dsn_password_is_redacted(captures_warehouse):
    con, _ = captures_warehouse
    stored = rows(con, "SELECT message FROM log_lines WHERE source_uri LIKE '%0078_malformed_dsn.txt'")
    assert stored and all("S3cretPw" not in m for (m,) in stored)
    assert "postgres://appuser:***@127.0.0.1:notaport/app" in stored[0][0]


def _own_times(con) -> list[tuple[str, int, str, float, bool, dict[str, float]]]:
    found = []
    for row in INDEX:
        sleeps = cycle_sleeps(row["scenario"])
        if not sleeps:
            continue
        for version, direction, own, verbose in rows(con, """
                SELECT version, direction, own_ms, verbose_mode FROM migrate_events
                WHERE stream_key = ? AND kind = 'applied' AND version IN (4, 8)""", ["file:" + row["path"]]):
            found.append((row["file"], version, direction, own, verbose, sleeps))
    return found


def test_own_time_of_script_8_matches_pg_sleep_truth(captures_warehouse):
    con, _ = captures_warehouse
    checked = 0
    for file, version, direction, own, verbose, sleeps in _own_times(con):
        if version != 8:
            continue
        truth = sleeps[f"{direction}8"] * 1000
        # 10 % of the sleep, plus the few ms the rest of script 8 (CREATE/DROP TABLE) takes
        assert abs(own - truth) <= 0.10 * truth + 10, (file, direction, own, truth)
        checked += 1
    assert checked >= 30


def test_own_time_of_script_4_tracks_pg_sleep_plus_its_fixed_work(captures_warehouse):
    # Script 4 also inserts 12,000 rows (up) or deletes them (down); verbose `ran` measures that work.
    # The derived own time (default mode: steps between near-cumulative APPLIED values) must land where
    # `ran` does: sleep + work, never below the sleep.
    con, _ = captures_warehouse
    found = [f for f in _own_times(con) if f[1] == 4]
    for direction in ("up", "down"):
        work_ran = [own - s[f"{direction}4"] * 1000 for _, _, d, own, verbose, s in found if d == direction and verbose]
        derived = [(f, own, s[f"{direction}4"] * 1000) for f, _, d, own, verbose, s in found if d == direction and not verbose]
        assert work_ran and derived
        typical = statistics.median(work_ran)
        for file, own, sleep in derived:
            assert own >= sleep, (file, own, sleep)
            assert abs((own - sleep) - typical) <= max(0.10 * (sleep + typical), 0.6 * typical), (file, own, sleep, typical)


def test_reingesting_the_captures_adds_nothing(captures_warehouse):
    from pipeline.api import ingest
    from pipeline.core.config import Config

    con, first = captures_warehouse
    before = rows(con, "SELECT (SELECT count(*) FROM log_lines), (SELECT count(*) FROM migrate_events), (SELECT count(*) FROM runs)")
    again = ingest(con, [r["path"] for r in INDEX], config=Config(), progress=False)
    assert again.skipped == first.sources and again.sources == 0 and again.lines == 0
    assert rows(con, "SELECT (SELECT count(*) FROM log_lines), (SELECT count(*) FROM migrate_events), (SELECT count(*) FROM runs)") == before

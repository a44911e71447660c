"""Run reconstruction where migrate does not print the version: a default-mode failure (named by the
dirty line migrate prints next, once the clock has reached it) and a `down` (the version below its last step).

Inputs are the real captures, copied under Hive-style `env=…/service=…/database=…` folders so they are
runs of one database, with file times that order them (bare text takes its time from the file).
"""

from __future__ import annotations

import os
import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipeline.api import analyze, query, report
from pipeline.core.config import Config

from .conftest import CAPTURES, rows

T0 = datetime(2026, 11, 21, 10, 0)
STEP = re.compile(r"^(?:\d{4}/\d\d/\d\d \d\d:\d\d:\d\d )?(?:Finished )?(\d+)/([ud]) ", re.MULTILINE)


def _capture(stem: str) -> str:
    return (CAPTURES / f"{stem}.txt").read_text(encoding="utf-8")


def _place(tmp_path: Path, folder: str, runs: list[tuple[str, datetime]]) -> Path:
    """Copy captures into `folder` under tmp_path, each file timed at its datetime (UTC)."""
    root = tmp_path / "logs"
    target = root / folder
    target.mkdir(parents=True)
    for i, (stem, at) in enumerate(runs):
        path = target / f"{i:02d}_{stem}.txt"
        shutil.copy(CAPTURES / f"{stem}.txt", path)
        stamp = at.replace(tzinfo=UTC).timestamp()
        os.utime(path, (stamp, stamp))
    return root


def _runs(con) -> list[dict]:
    cur = con.execute("SELECT regexp_extract(stream_key, '\\d\\d_(\\w+)\\.txt$', 1) AS stem, * FROM runs "
                      "ORDER BY started_at, run_id")
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def _run(con, stem: str) -> dict:
    [run] = [r for r in _runs(con) if r["stem"] == stem]
    return run


def _steps(stem: str, direction: str) -> list[int]:
    return [int(v) for v, d in STEP.findall(_capture(stem)) if d == direction]


# -- a default-mode failure: 0032 `version` prints 8, 0033 `up` fails without naming the version, 0035 `up`
# -- is refused with `Dirty database version 9`.
FAILED_AT, DIRTY_AT = T0 + timedelta(minutes=5), T0 + timedelta(minutes=30)
FAILURE = [("0032_version_before", T0), ("0033_up_syntax_error", FAILED_AT), ("0035_up_dirty", DIRTY_AT)]


def _dirty_line_version() -> int:
    return int(re.search(r"Dirty database version (\d+)\.", _capture("0035_up_dirty")).group(1))


def _failed_finding(con) -> tuple:
    [finding] = rows(con, "SELECT version, explanation FROM findings WHERE kind = 'failed_run'")
    return finding


@pytest.fixture
def failure(tmp_path, warehouse, load):
    load(_place(tmp_path, "env=prod/service=billing/database=app", FAILURE))
    return warehouse


def test_the_failed_capture_names_no_version_of_its_own(failure):
    # The premise: without -verbose the failure's lines carry no version, so runs keep none.
    assert not STEP.search(_capture("0033_up_syntax_error"))
    run = _run(failure, "0033_up_syntax_error")
    assert (run["outcome"], run["dirty_version"], run["to_version"]) == ("failed", None, None)
    assert run["version_shown"] is False
    assert (run["next_dirty_version"], run["next_dirty_at"]) == (_dirty_line_version(), DIRTY_AT)


def test_failed_run_takes_the_next_dirty_version_once_the_clock_reaches_that_line(failure, tmp_path):
    version = _dirty_line_version()
    analyze(failure, config=Config(), as_of=DIRTY_AT)
    assert _failed_finding(failure)[0] == version
    assert f"prod/billing/app: migration {version} failed (syntax_error)" in _failed_finding(failure)[1]
    failed = query(failure, "failed_runs", {"as_of": DIRTY_AT.isoformat(), "outcomes": "failed"})
    assert failed["version"].to_list() == [version]
    review = report(failure, config=Config(), as_of=DIRTY_AT, out=tmp_path / "out")
    assert f"migration {version} failed" in review.path.read_text(encoding="utf-8")


def test_a_clock_before_the_dirty_line_keeps_the_unknown_version(failure):
    analyze(failure, config=Config(), as_of=DIRTY_AT - timedelta(seconds=1))
    version, explanation = _failed_finding(failure)
    assert version is None
    assert "prod/billing/app: migration ? failed (syntax_error)" in explanation
    failed = query(failure, "failed_runs", {"as_of": (DIRTY_AT - timedelta(seconds=1)).isoformat(),
                                            "outcomes": "failed"})
    assert failed["version"].to_list() == [None]


def test_unknown_database_never_takes_a_version_from_another_run(tmp_path, warehouse, load):
    # Same env and service, no database: `unknown` is not one database, so the dirty line is no evidence.
    load(_place(tmp_path, "env=prod/service=billing", FAILURE))
    assert {r["database"] for r in _runs(warehouse)} == {"unknown"}
    run = _run(warehouse, "0033_up_syntax_error")
    assert (run["next_dirty_version"], run["next_dirty_at"], run["dirty_version"]) == (None, None, None)
    analyze(warehouse, config=Config(), as_of=DIRTY_AT + timedelta(days=1))
    assert _failed_finding(warehouse)[0] is None


def test_a_clean_run_between_failure_and_dirty_line_breaks_the_link(tmp_path, warehouse, load):
    # A clean run means the database was forced clean: a later dirty line is another failure's.
    between = FAILED_AT + timedelta(minutes=10)
    load(_place(tmp_path, "env=prod/service=billing/database=app",
                [*FAILURE, ("0013_up_again_nochange", between)]))
    run = _run(warehouse, "0033_up_syntax_error")
    assert (run["next_dirty_version"], run["next_dirty_at"]) == (None, None)


# -- downs: migrate prints only the steps; the database is at the version below the last one.

def test_down_1_reaches_the_version_below_its_step(tmp_path, warehouse, load):
    load(_place(tmp_path, "env=dev/service=app/database=app",
                [("0012_up", T0), ("0016_down_1", T0 + timedelta(minutes=1))]))
    [step] = _steps("0016_down_1", "d")
    expected = max(v for v in _steps("0012_up", "u") if v < step)
    down = _run(warehouse, "0016_down_1")
    assert (down["command"], down["from_version"], down["to_version"]) == ("down", step, expected)


def test_a_no_change_run_after_a_down_is_at_the_reached_version(tmp_path, warehouse, load):
    # The real sequence after a forced recovery: `version` prints 8, `up` applies 9 (-verbose, timed by its
    # prefix, 2026-11-21 23:50:42), `down 1` steps 9 back. 8 is known only from `version`'s answer.
    load(_place(tmp_path, "env=dev/service=app/database=app",
                [("0040_version_after_force", datetime(2026, 11, 21, 23, 50)), ("0041_verbose_up_fixed", T0),
                 ("0042_down_1", datetime(2026, 11, 21, 23, 51)),
                 ("0013_up_again_nochange", datetime(2026, 11, 21, 23, 52))]))
    printed = int(_capture("0040_version_after_force").strip())
    [step] = _steps("0042_down_1", "d")
    assert printed < step
    down = _run(warehouse, "0042_down_1")
    assert (down["from_version"], down["to_version"]) == (step, printed)
    after = _run(warehouse, "0013_up_again_nochange")
    assert (after["outcome"], after["from_version"], after["to_version"]) == ("no_change", printed, printed)


def test_down_all_leaves_no_version_and_later_runs_do_not_carry_the_old_one(tmp_path, warehouse, load):
    # 0028/0029 are -verbose: their own prefix (2026-11-21 23:50:40/41) times them, between the other two.
    load(_place(tmp_path, "env=dev/service=app/database=app",
                [("0012_up", datetime(2026, 11, 21, 23, 0)), ("0028_verbose_down_3", T0),
                 ("0029_verbose_down_all", T0), ("0021_down_all_nochange", datetime(2026, 11, 22))]))
    assert [r["stem"] for r in _runs(warehouse)] == [
        "0012_up", "0028_verbose_down_3", "0029_verbose_down_all", "0021_down_all_nochange"]
    down3, down_all, after = (_run(warehouse, s) for s in
                              ("0028_verbose_down_3", "0029_verbose_down_all", "0021_down_all_nochange"))
    last_step = min(_steps("0028_verbose_down_3", "d"))
    assert down3["to_version"] == max(v for v in _steps("0012_up", "u") if v < last_step)
    assert min(_steps("0029_verbose_down_all", "d")) == 1
    assert (down_all["from_version"], down_all["to_version"], down_all["version_shown"]) == (
        down3["to_version"], None, True)
    assert (after["outcome"], after["from_version"], after["to_version"]) == ("no_change", None, None)
    [(version, known_from)] = rows(warehouse, "SELECT version, known_from FROM database_versions(?)",
                                   [datetime(2026, 11, 23)])
    assert (version, known_from) == (None, "below the last down step (1)")


def test_version_answering_no_migration_after_down_all_shows_no_version(tmp_path, warehouse, load):
    # Default mode: the prompt's `down` goes all the way; `version` then says `no migration`.
    load(_place(tmp_path, "env=dev/service=app/database=app",
                [("0012_up", T0), ("0019_down_prompt_yes", T0 + timedelta(minutes=1)),
                 ("0020_version_after_down_all", T0 + timedelta(minutes=2)),
                 ("0021_down_all_nochange", T0 + timedelta(minutes=3))]))
    assert [(r["stem"], r["from_version"], r["to_version"]) for r in _runs(warehouse)] == [
        ("0012_up", None, max(_steps("0012_up", "u"))),
        ("0019_down_prompt_yes", max(_steps("0012_up", "u")), None),
        ("0020_version_after_down_all", None, None),
        ("0021_down_all_nochange", None, None),
    ]
    [(version, known_from)] = rows(warehouse, "SELECT version, known_from FROM database_versions(?)",
                                   [T0 + timedelta(days=1)])
    assert (version, known_from) == (None, "migrate version: no migration")


def test_the_schema_step_rebuilds_older_runs_on_the_next_ingest(tmp_path, warehouse, load):
    from pipeline.warehouse.migrations import steps

    load(_place(tmp_path, "env=dev/service=app/database=app",
                [("0012_up", T0), ("0019_down_prompt_yes", T0 + timedelta(minutes=1)),
                 ("0021_down_all_nochange", T0 + timedelta(minutes=2))]))
    rebuilt = rows(warehouse, "SELECT run_id, from_version, to_version, version_shown FROM runs ORDER BY ALL")
    # What an older build left: no version_shown, the pre-down version carried past `down -all`.
    warehouse.execute("UPDATE runs SET version_shown = NULL, from_version = 8, to_version = 8")
    [step] = [s for s in steps() if s.name == "runs_versions"]
    warehouse.execute(step.sql)
    assert rows(warehouse, "SELECT count(*) FROM pending_streams") == rows(
        warehouse, "SELECT count(DISTINCT stream_key) FROM runs")
    load()  # nothing new to read: the queued streams are rebuilt
    assert rows(warehouse, "SELECT run_id, from_version, to_version, version_shown FROM runs ORDER BY ALL") \
        == rebuilt
    assert rows(warehouse, "SELECT count(*) FROM pending_streams") == [(0,)]

"""The migrate grammar on inline transcripts: one file = one migrate process (bare text envelope)."""

from __future__ import annotations

import textwrap
from datetime import datetime

import pytest

from .conftest import rows


def _ingest_text(tmp_path, load, name: str, body: str):
    path = tmp_path / f"{name}.log"
    path.write_text(textwrap.dedent(body).lstrip("\n"), encoding="utf-8")
    load(path)
    return "file:" + str(path)


def _events(con, stream: str) -> list[tuple]:
    return rows(con, "SELECT kind, version, direction, name, duration_ms, own_ms, error_class, error_text "
                     "FROM migrate_events WHERE stream_key = ? ORDER BY seq", [stream])


def _runs(con, stream: str) -> list[tuple]:
    return rows(con, "SELECT outcome, applied, command, error_class, left_dirty, dirty_version, to_version "
                     "FROM runs WHERE stream_key = ? ORDER BY started_at, run_id", [stream])


@pytest.mark.parametrize(("printed", "ms"), [
    ("523.4µs", 0.5234), ("23.619417ms", 23.619417), ("1.601587s", 1601.587), ("2m0.5s", 120500.0),
    ("1h2m3s", 3723000.0), ("0s", 0.0), ("8.7174ms", 8.7174), ("150ns", 0.00015), ("12us", 0.012),
])
def test_go_durations_are_parsed_to_milliseconds(warehouse, printed, ms):
    assert warehouse.execute("SELECT go_duration_ms(?)", [printed]).fetchall()[0][0] == pytest.approx(ms)


def test_default_mode_own_time_is_the_step_between_cumulative_values(tmp_path, warehouse, load):
    stream = _ingest_text(tmp_path, load, "up", """
        3/u add_users_last_login_at (3.887084ms)
        4/u backfill_order_status (514.33204ms)
        5/u create_audit_log (519.406985ms)
    """)
    assert [round(e[5], 3) for e in _events(warehouse, stream)] == [3.887, 510.445, 5.075]
    assert _runs(warehouse, stream) == [("success", 3, "up", None, False, None, 5)]


def test_two_errors_occurred_block_is_one_failed_event(tmp_path, warehouse, load):
    stream = _ingest_text(tmp_path, load, "multi", """
        1/u create_users_table (8.1ms)
        error: 2 errors occurred:
        \t* migration failed: relation "users" already exists in line 0: CREATE TABLE users (id int);
         (details: pq: relation "users" already exists)
        \t* can't unlock, as not currently locked

    """)
    kinds = [e[0] for e in _events(warehouse, stream)]
    assert kinds == ["applied", "migration_failed"]
    failed = _events(warehouse, stream)[1]
    assert failed[6] == "already_exists" and "can't unlock" in failed[7]
    assert _runs(warehouse, stream)[0][:5] == ("failed", 1, "up", "already_exists", True)


def test_verbose_non_fatal_and_fatal_error_lines_count_once(tmp_path, warehouse, load):
    stream = _ingest_text(tmp_path, load, "missing", """
        2026/11/10 10:00:00 error: no migration found for version 5: read down for version 5 .: file does not exist
        2026/11/10 10:00:00 error: no migration found for version 5: read down for version 5 .: file does not exist
    """)
    assert [(e[0], e[1]) for e in _events(warehouse, stream)] == [("missing_file", 5)]
    assert _runs(warehouse, stream)[0][0] == "error"


def test_old_missing_file_glue_keeps_the_detailed_half(tmp_path, warehouse, load):
    stream = _ingest_text(tmp_path, load, "old", "error: no migration found for version 7error: file does not exist\n")
    [ev] = _events(warehouse, stream)
    assert ev[0] == "missing_file" and ev[1] == 7 and ev[7] == "no migration found for version 7"


def test_killed_verbose_run_is_interrupted_and_left_dirty(tmp_path, warehouse, load):
    stream = _ingest_text(tmp_path, load, "killed", """
        2026/11/10 10:00:00 Start buffering 15/u backfill_order_totals
        2026/11/10 10:00:00 Read and execute 15/u backfill_order_totals
    """)
    assert _runs(warehouse, stream) == [("interrupted", 0, "up", "interrupted", True, 15, 15)]


def test_lock_timeout_limit_short_and_prompt_refusal(tmp_path, warehouse, load):
    locked = _ingest_text(tmp_path, load, "locked", "error: timeout: can't acquire database lock\n")
    short = _ingest_text(tmp_path, load, "short", "8/u a (1ms)\n9/u b (2ms)\nerror: limit 3 short\n")
    refused = _ingest_text(tmp_path, load, "refused", """
        Are you sure you want to apply all down migrations? [y/N]
        Not applying all down migrations
    """)
    assert _runs(warehouse, locked)[0][:4] == ("locked", 0, None, "lock_timeout")
    assert _runs(warehouse, short)[0][:4] == ("error", 2, "up", "limit_short")
    assert _runs(warehouse, refused)[0][:4] == ("error", 0, "down", "prompt_refused")


def test_embedding_application_dirty_message_is_recognised(tmp_path, warehouse, load):
    stream = _ingest_text(tmp_path, load, "harbor", "Failed to migrate: Dirty database version 30. Fix and force version.\n")
    assert [(e[0], e[1]) for e in _events(warehouse, stream)] == [("dirty", 30)]


def test_runs_split_at_terminal_lines_within_one_stream(tmp_path, warehouse, load):
    stream = _ingest_text(tmp_path, load, "several", """
        2026/11/10 10:00:00 no change
        2026/11/10 10:00:00 Finished after 3.1ms
        2026/11/10 10:00:00 Closing source and database
        2026/11/10 10:05:00 Start buffering 3/u c
        2026/11/10 10:05:00 Read and execute 3/u c
        2026/11/10 10:05:01 Finished 3/u c (read 1ms, ran 900ms)
        2026/11/10 10:05:01 Finished after 902ms
        2026/11/10 10:05:01 Closing source and database
    """)
    assert [(r[0], r[1], r[6]) for r in _runs(warehouse, stream)] == [("no_change", 0, None), ("success", 1, 3)]
    assert [e[5] for e in _events(warehouse, stream) if e[0] == "applied"] == [900.0]


def test_sql_body_lines_that_look_like_migrate_lines_stay_in_the_error(tmp_path, warehouse, load):
    stream = _ingest_text(tmp_path, load, "body", """
        error: migration failed: syntax error at or near "no" (column 1) in line 2: SELECT 1;
        no change
        1
         (details: pq: syntax error at or near "no")
    """)
    assert [e[0] for e in _events(warehouse, stream)] == ["migration_failed"]


def test_verbose_local_time_prefix_is_converted_and_an_envelope_time_wins(tmp_path, warehouse, load):
    from pipeline.core.config import Config, IngestConfig

    bare = tmp_path / "berlin.log"
    bare.write_text("2026/11/10 11:00:00 Start buffering 3/u c\n", encoding="utf-8")
    load(bare, config=Config(ingest=IngestConfig(verbose_timezone="Europe/Berlin")))
    assert rows(warehouse, "SELECT ts, ts_origin FROM log_lines WHERE source_uri LIKE '%berlin.log'") == [
        (datetime(2026, 11, 10, 10, 0), "verbose")]
    docker = tmp_path / "c-json.log"
    docker.write_text('{"log":"2026/11/10 11:00:00 Start buffering 3/u c\\n","stream":"stderr",'
                      '"time":"2026-11-10T10:00:00.250000000Z"}\n', encoding="utf-8")
    load(docker, config=Config(ingest=IngestConfig(verbose_timezone="Europe/Berlin")))
    assert rows(warehouse, "SELECT ts, ts_origin FROM log_lines WHERE source_uri LIKE '%c-json.log'") == [
        (datetime(2026, 11, 10, 10, 0, 0, 250000), "envelope")]


def test_an_empty_step_ran_nothing_whatever_migrate_printed_for_it(tmp_path, warehouse, load):
    # 0147: in -verbose mode the `<empty>` step's `ran` is the time it waited in the queue, not work.
    stream = _ingest_text(tmp_path, load, "empty", """
        2026/11/21 23:52:08 Read and execute 6/d add_orders_user_id_index
        2026/11/21 23:52:08 Finished 6/d add_orders_user_id_index (read 82.429657ms, ran 2.544058ms)
        2026/11/21 23:52:08 Finished 5/d <empty> (read 0s, ran 88.432946ms)
        2026/11/21 23:52:08 Read and execute 4/d backfill_order_status
        2026/11/21 23:52:10 Finished 4/d backfill_order_status (read 89.779878ms, ran 1.298264832s)
    """)
    applied = [(e[1], e[3], e[4], e[5]) for e in _events(warehouse, stream) if e[0] == "applied"]
    assert applied == [(6, "add_orders_user_id_index", pytest.approx(84.973715), pytest.approx(2.544058)),
                       (5, "<empty>", pytest.approx(88.432946), 0),
                       (4, "backfill_order_status", pytest.approx(1388.04471), pytest.approx(1298.264832))]
    default = _ingest_text(tmp_path, load, "empty-default", """
        6/d add_orders_user_id_index (5.1ms)
        5/d <empty> (66.059795ms)
        4/d backfill_order_status (1.3s)
    """)
    assert [round(e[5], 3) for e in _events(warehouse, default)] == [5.1, 0, 1233.94]

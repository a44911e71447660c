"""The demo fleet in sample_logs/: every planted incident is rebuilt, every line is accounted for.

The incidents and where they are planted are listed in sample_logs/README.md.
"""

from __future__ import annotations

import pytest

from pipeline.core.config import Config
from pipeline.api import ingest
from pipeline.warehouse import connect

from .conftest import SAMPLE_LOGS, rows


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    con = connect(tmp_path_factory.mktemp("fleet") / "fleet.duckdb")
    result = ingest(con, [str(SAMPLE_LOGS)], config=Config(), progress=False)
    yield con, result
    con.close()


def _run(con, where: str, params: list) -> list[tuple]:
    return rows(con, "SELECT outcome, error_class, from_version, to_version, dirty_version, applied, command "
                     f"FROM runs WHERE {where} ORDER BY started_at", params)


def test_every_envelope_is_detected_and_every_record_accounted_for(fleet):
    con, result = fleet
    formats = {f for (f,) in rows(con, "SELECT DISTINCT format FROM ingested_sources")}
    assert formats == {"docker", "kubernetes", "loki", "cloudwatch", "slog", "text", "events"}
    stored = rows(con, "SELECT count(*) FROM log_lines")[0][0]
    rejected = rows(con, "SELECT count(*) FROM rejects")[0][0]
    assert result.lines == stored + rejected + result.duplicates
    assert rows(con, "SELECT sum(lines) FROM ingested_sources")[0][0] == result.lines


def test_planted_bad_records_are_rejected_with_their_reason(fleet):
    con, _ = fleet
    reasons = sorted(r for (r,) in rows(con, "SELECT reason FROM rejects"))
    assert reasons == ["invalid_utf8", "json_array", "malformed_json", "no_time"]


def test_overlapping_loki_exports_are_stored_once(fleet):
    con, result = fleet
    assert result.duplicates > 0
    assert rows(con, "SELECT sum(duplicates) FROM ingested_sources WHERE source_uri LIKE '%billing-staging-2026-W45%'")[0][0] == result.duplicates
    assert rows(con, "SELECT count(*) - count(DISTINCT line_id) FROM log_lines")[0][0] == 0


def test_no_line_lacks_metadata(fleet):
    con, _ = fleet
    assert rows(con, "SELECT count(*) FROM runs WHERE 'unknown' IN (env, service, database)")[0][0] == 0


def test_failed_migration_dirty_retry_and_forced_recovery_in_orders_prod(fleet):
    con, _ = fleet
    outcomes = _run(con, "env = 'prod' AND service = 'orders' AND started_at BETWEEN '2026-11-04' AND '2026-11-07'", [])
    assert [o[:2] for o in outcomes if o[0] != "no_change"][:3] == [
        ("failed", "syntax_error"), ("dirty", "dirty"), ("success", None)]
    failed, dirty = outcomes[0], outcomes[1]
    assert failed[4] == 16 and dirty[4] == 16  # the dirty version, inferred then confirmed
    recovered = next(o for o in outcomes if o[0] == "success")
    assert recovered[5] == 2 and recovered[3] == 17


def test_tenant_007_is_left_dirty_at_23(fleet):
    con, _ = fleet
    last = _run(con, "database = 'tenant_007' AND env = 'prod'", [])[-1]
    assert last[0] == "success" and last[6] == "version" and last[3] == 23
    failed = [r for r in _run(con, "database = 'tenant_007'", []) if r[0] == "failed"]
    assert [(r[1], r[4]) for r in failed] == [("statement_timeout", 23)]
    assert rows(con, "SELECT name FROM migrate_events WHERE database = 'tenant_007' AND kind = 'version' "
                     "ORDER BY ts DESC LIMIT 1") == [("(dirty)",)]


def test_lock_timeout_interrupted_run_and_non_idempotent_rerun(fleet):
    con, _ = fleet
    assert [r[:2] for r in _run(con, "outcome = 'locked'", [])] == [("locked", "lock_timeout")]
    interrupted = _run(con, "outcome = 'interrupted'", [])
    assert [(r[4], r[6]) for r in interrupted] == [(15, "up")]
    assert ("failed", "already_exists") in [r[:2] for r in _run(con, "service = 'identity' AND env = 'staging'", [])]


def test_prod_rollback_and_empty_down_file(fleet):
    con, _ = fleet
    downs = rows(con, "SELECT env, service, version, name FROM migrate_events "
                      "WHERE kind = 'applied' AND direction = 'down' AND env = 'prod'")
    assert downs == [("prod", "catalog", 9, "add_search_vectors")]
    assert rows(con, "SELECT count(*) FROM migrate_events WHERE name = '<empty>' AND kind = 'applied'")[0][0] == 1


def test_leaked_dsn_password_is_nowhere(fleet):
    con, _ = fleet
    for table, column in [("log_lines", "message"), ("migrate_events", "error_text"), ("runs", "error_text"),
                          ("rejects", "raw")]:
        assert rows(con, f"SELECT count(*) FROM {table} WHERE contains({column}, 'Sup3rS3cret')")[0][0] == 0
    assert rows(con, "SELECT count(*) FROM runs WHERE error_class = 'dns' AND contains(error_text, 'billing:***@')")[0][0] == 1


def test_level_shift_durations_are_derived_per_script(fleet):
    con, _ = fleet
    by_week = dict(rows(con, """
        SELECT strftime(ts, '%G-W%V'), median(own_ms) FROM migrate_events
        WHERE env = 'prod' AND service = 'billing' AND version = 23 AND kind = 'applied' AND direction = 'up'
        GROUP BY 1"""))
    assert by_week["2026-W46"] > 15 * by_week["2026-W45"]


def test_failed_run_on_a_database_still_dirty_stays_open(tmp_path):
    from datetime import datetime

    from pipeline.analyze import analyze

    con = connect(tmp_path / "w.duckdb")
    ingest(con, [str(SAMPLE_LOGS)], config=Config(), progress=False)
    analyze(con, config=Config(), as_of=datetime(2026, 11, 16))
    # tenant_007's later `version` run prints `23 (dirty)`: a run, but not a clean one.
    assert rows(con, "SELECT status FROM findings WHERE kind = 'failed_run' AND database = 'tenant_007'") == [("open",)]
    con.close()

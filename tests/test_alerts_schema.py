"""Schema step 0007 (alert_deliveries, alert_history) and the rule that lets parallel work reserve step numbers:
every step a warehouse has not recorded is applied on the next writing open, whatever the highest recorded
one, and a reader asks for `upgrade` until then."""

from __future__ import annotations

import pytest

from pipeline.core.errors import WarehouseError
from pipeline.warehouse import connect
from pipeline.warehouse.migrations import steps

from .conftest import rows


def test_a_step_missing_below_the_highest_recorded_one_is_applied_on_the_next_open(tmp_path):
    db = tmp_path / "w.duckdb"
    con = connect(db)
    assert [s.version for s in steps() if s.name == "alert_channels"] == [7]
    # As if the file was written by a build that had step 7 but not yet step 5 (merged later).
    con.execute("DROP TABLE pruned_streams")
    con.execute("DELETE FROM schema_version WHERE version = 5")
    con.close()
    with pytest.raises(WarehouseError, match="run `migrate-lens upgrade"):
        connect(db, read_only=True)
    con = connect(db)
    assert rows(con, "SELECT count(*) FROM pruned_streams") == [(0,)]
    assert rows(con, "SELECT version FROM schema_version ORDER BY version") == [(s.version,) for s in steps()]
    con.close()
    connect(db, read_only=True).close()


def test_alert_deliveries_has_the_columns_the_contract_names(warehouse):
    have = {c for (c,) in rows(warehouse, "SELECT column_name FROM duckdb_columns() WHERE table_name = "
                                          "'alert_deliveries'")}
    assert {"alert_id", "channel", "state", "attempts", "last_status", "last_error", "external_key",
            "config_hash"} <= have

"""What a detector emits: rows of the `findings` columns, each with its stable id and its runbook step."""

from __future__ import annotations

import hashlib

import polars as pl

from pipeline.core.vocabulary import FindingKind

COLUMNS = ["finding_id", "kind", "severity", "env", "service", "database", "version", "run_id", "ts", "observed",
           "expected", "score", "unit", "explanation", "status", "resolved_at", "runbook"]
SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    "finding_id": pl.String, "kind": pl.String, "severity": pl.String, "env": pl.String, "service": pl.String,
    "database": pl.String, "version": pl.Int64, "run_id": pl.String, "ts": pl.Datetime("us"),
    "observed": pl.Float64, "expected": pl.Float64, "score": pl.Float64, "unit": pl.String,
    "explanation": pl.String, "status": pl.String, "resolved_at": pl.Datetime("us"), "runbook": pl.String,
}

RUNBOOK: dict[FindingKind, str] = {
    "failed_run": "Read the error; the database is now dirty at that version. Check what the script applied, "
                  "`migrate force N-1` if nothing committed (or N if it did), fix the script, then `up`.",
    "dirty_open": "Check which statements of version N applied, then `migrate force N-1` (nothing applied) or "
                  "`force N` (all applied), and run `up`. Never force without looking.",
    "forced_recovery": "Confirm who forced which version and that the schema matches it; record it in the "
                       "change log. Prefer the wrapper (`migrate-lens wrap`) so forces are logged.",
    "duration_outlier": "Compare with the baseline: data growth, a missing index, lock waits. For a level shift, "
                        "decide whether it is the new normal before the next prod rollout.",
    "failure_spike": "Look at the failed runs of the window together: one cause (credentials, network, a bad "
                     "release) usually explains them.",
    "lock_timeout": "Another migrate held the advisory lock: serialise migration jobs (one Job per database) "
                    "and raise -lock-timeout if a long migration is expected.",
    "interrupted_run": "The process was killed (SIGTERM/OOM) mid-run: check `migrate version` for dirty, then "
                       "force and re-run; give the Job a longer activeDeadlineSeconds/terminationGracePeriod.",
    "prod_rollback": "A down migration ran in prod: confirm it was intended, and that the version was re-applied "
                     "or the release rolled back with it.",
    "promotion_skipped": "Apply the version in the earlier environment first; make the pipeline gate prod on it.",
    "missing_down": "Write the down migration (`N_name.down.sql`) and try it outside prod.",
    "down_test_failed": "Read the failed check in the CI verify output (`migrate-lens verify`), fix the down so it "
                        "applies and restores schema and data, and verify again before anyone needs to roll back.",
    "non_idempotent": "Make the DDL re-runnable (IF NOT EXISTS / IF EXISTS) so a re-run after a failure or force "
                      "is safe.",
}



def _id(*parts: object) -> str:
    return hashlib.md5("\x1f".join("" if p is None else str(p) for p in parts).encode()).hexdigest()[:16]


def _rows(kind: FindingKind, rows: list[dict]) -> pl.DataFrame:
    for row in rows:
        row.setdefault("runbook", RUNBOOK[kind])
        row["kind"] = kind
        row["finding_id"] = _id(kind, row.get("env"), row.get("service"), row.get("database"), row.get("version"),
                                row.get("run_id"), row.get("ts"))
        for col in COLUMNS:
            row.setdefault(col, None)
    return pl.DataFrame(rows, schema=SCHEMA) if rows else pl.DataFrame(schema=SCHEMA)


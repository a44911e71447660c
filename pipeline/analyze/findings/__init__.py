"""Findings: every detected problem, with severity, the evidence (observed vs expected, score), a one-line
explanation a person can check, and a status (open | resolved) as of the analysis clock.

Each `*_findings` function takes one analysis (`pipeline.analyze.context.Analysis`), asks the warehouse for
the few rows it reports on, and returns frames of the `findings` columns (`rows.COLUMNS`); one module per
concern: runs, dirty, durations, promotion (and rollback), idempotency.
"""

from __future__ import annotations

import polars as pl

from pipeline.analyze.context import Analysis
from pipeline.analyze.findings.dirty import dirty_findings
from pipeline.analyze.findings.durations import outlier_findings
from pipeline.analyze.findings.idempotency import idempotency_findings
from pipeline.analyze.findings.promotion import (
    down_test_findings,
    missing_down_findings,
    promotion_findings,
    rollback_findings,
    rollback_readiness,
)
from pipeline.analyze.findings.rows import COLUMNS, RUNBOOK, SCHEMA
from pipeline.analyze.findings.runs import run_findings, spike_findings

__all__ = [
    "COLUMNS", "RUNBOOK", "SCHEMA", "detect", "dirty_findings", "down_test_findings", "idempotency_findings",
    "missing_down_findings", "outlier_findings", "promotion_findings", "rollback_findings",
    "rollback_readiness", "run_findings", "spike_findings",
]


def detect(f: Analysis) -> pl.DataFrame:
    """All findings for one clock; fills analyze_readiness (the rollback readiness relation) on the way."""
    rollback_readiness(f)
    dirty, forced = dirty_findings(f)
    frames = [*run_findings(f), dirty, forced, *outlier_findings(f), *spike_findings(f), *rollback_findings(f),
              *promotion_findings(f), *missing_down_findings(f), *down_test_findings(f),
              *idempotency_findings(f, forced)]
    findings = pl.concat(frames, how="vertical").with_columns(pl.lit(f.as_of).alias("as_of"))
    return findings.sort(["ts", "kind", "finding_id"], nulls_last=True)

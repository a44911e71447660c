"""The one vocabulary: every closed set the pipeline, its SQL and its templates share, defined once.

SQL gets the same sets through macros generated here (`vocabulary_macros()`), so `is_failure(outcome)` in a
named query and `FAILURE_OUTCOMES` in Python cannot drift apart.
"""

from __future__ import annotations

from typing import Literal, get_args

# runs.outcome (docs/contract.md §3)
Outcome = Literal["success", "no_change", "failed", "dirty", "locked", "error", "interrupted"]
OUTCOMES: tuple[Outcome, ...] = get_args(Outcome)
# Outcomes that count as a failed run in rates, spikes and the review.
FAILURE_OUTCOMES: tuple[Outcome, ...] = ("failed", "dirty", "locked", "error", "interrupted")
# Outcomes that prove a database was usable (a clean run ends a dirty episode).
CLEAN_OUTCOMES: tuple[Outcome, ...] = ("success", "no_change")

# findings.severity, most urgent first.
Severity = Literal["critical", "warning", "info"]
SEVERITIES: tuple[Severity, ...] = get_args(Severity)

# lint levels (SARIF's), most urgent first; declared beside the finding severities on purpose.
LintLevel = Literal["error", "warning", "info"]
LINT_LEVELS: tuple[LintLevel, ...] = get_args(LintLevel)
# lint rule ids (docs/contract.md §6): users suppress and configure by id, so an id is never renamed.
LintRule = Literal[
    "missing-down", "empty-down", "duplicate-version", "not-idempotent", "concurrently-in-transaction",
    "destructive-in-up", "unparsable", "index-not-concurrent", "add-column-not-null-no-default",
    "add-column-volatile-default", "constraint-not-valid-missing", "set-not-null", "column-type-change", "rename",
    "no-lock-timeout", "down-not-inverse", "unmatched-name", "missing-up",
]
LINT_RULES: tuple[LintRule, ...] = get_args(LintRule)

# Exit code of a command whose input was read fine but shows problems at or above --fail-on (docs/contract.md §1).
FINDINGS_EXIT = 3

# Envelopes a source can be read as (docs/contract.md §2).
Envelope = Literal["docker", "kubernetes", "loki", "cloudwatch", "slog", "text", "events",
                   "elastic", "splunk", "gcp", "datadog"]
ENVELOPES: tuple[Envelope, ...] = get_args(Envelope)

# findings.kind (docs/contract.md §3).
FindingKind = Literal[
    "failed_run", "dirty_open", "forced_recovery", "duration_outlier", "failure_spike", "lock_timeout",
    "prod_rollback", "promotion_skipped", "non_idempotent", "missing_down", "interrupted_run", "down_test_failed",
]
FINDING_KINDS: tuple[FindingKind, ...] = get_args(FindingKind)

# verify: the checks run per version, in order, and their statuses (docs/contract.md §4; verify_results).
VerifyCheck = Literal["up", "down", "schema_restored", "data_restored", "reapply", "idempotent_up"]
VERIFY_CHECKS: tuple[VerifyCheck, ...] = get_args(VerifyCheck)
VerifyStatus = Literal["pass", "fail", "skip", "missing"]
VERIFY_STATUSES: tuple[VerifyStatus, ...] = get_args(VerifyStatus)
# The checks a rollback test is judged on (the ledger's "down tested in CI"): down_test_failed names them.
DOWN_TEST_CHECKS: tuple[VerifyCheck, ...] = ("down", "schema_restored", "data_restored", "reapply")


def severity_rank(severity: str) -> int:
    """0 for the most urgent severity; unknown values sort last."""
    return SEVERITIES.index(severity) if severity in SEVERITIES else len(SEVERITIES)  # type: ignore[arg-type]


def at_or_above(severity: str, threshold: str) -> bool:
    """True when `severity` is as urgent as `threshold` or more."""
    return severity_rank(severity) <= severity_rank(threshold)


def lint_rank(level: str) -> int:
    """0 for the most urgent lint level; unknown values sort last."""
    return LINT_LEVELS.index(level) if level in LINT_LEVELS else len(LINT_LEVELS)  # type: ignore[arg-type]


def _sql_list(values: tuple[str, ...]) -> str:
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)


def vocabulary_macros() -> str:
    """SQL macros carrying the vocabulary into DuckDB, for the schema, the report SQL and the named queries."""
    ranks = " ".join(f"WHEN '{s}' THEN {i}" for i, s in enumerate(SEVERITIES))
    return (
        f"CREATE OR REPLACE MACRO is_failure(outcome) AS outcome IN ({_sql_list(FAILURE_OUTCOMES)});\n"
        f"CREATE OR REPLACE MACRO is_clean_outcome(outcome) AS outcome IN ({_sql_list(CLEAN_OUTCOMES)});\n"
        f"CREATE OR REPLACE MACRO severity_rank(s) AS CASE s {ranks} ELSE {len(SEVERITIES)} END;\n"
    )

"""What lint reports: its rules (id, level, why, fix), issues and result, shared by the checks and the formats."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pipeline.core.vocabulary import LINT_LEVELS, LINT_RULES, LintLevel, LintRule, lint_rank

Direction = Literal["up", "down"]


@dataclass(frozen=True)
class Rule:
    level: LintLevel  # the default; `[lint.levels]` replaces it
    title: str  # what the rule flags, one line
    why: str  # what goes wrong in production, one line
    fix: str  # what to write instead, one line


RULES: dict[LintRule, Rule] = {
    "missing-down": Rule(
        "warning", "An up migration has no .down file",
        "`migrate down` steps past the version and undoes nothing (it logs <empty>).",
        "Add N_name.down.sql with the statements that undo the up."),
    "empty-down": Rule(
        "warning", "A .down file holds no statement (info when a comment says why)",
        "`migrate down` marks the version rolled back and changes nothing.",
        "Write the statements that undo the up, or a comment saying why there are none."),
    "duplicate-version": Rule(
        "error", "Two up or two down files share a version",
        "migrate refuses the whole folder: no migration runs.",
        "Give one of the files a new version."),
    "not-idempotent": Rule(
        "warning", "DDL that fails when run twice (no IF [NOT] EXISTS / OR REPLACE and no guard in the file)",
        "A re-run after a failure or a `force` stops on 'already exists' / 'does not exist' and leaves the "
        "database dirty.",
        "Write IF NOT EXISTS / IF EXISTS / OR REPLACE, or guard the statement with a DO block that checks the "
        "catalog."),
    "concurrently-in-transaction": Rule(
        "error", "CONCURRENTLY in a file PostgreSQL runs inside a transaction",
        "PostgreSQL refuses it ('cannot run inside a transaction block') and migrate leaves the version dirty.",
        "Put the CONCURRENTLY statement alone in a migration file, without BEGIN/COMMIT."),
    "destructive-in-up": Rule(
        "warning", "An up migration drops, truncates or deletes data",
        "No down can bring the data back.",
        "Copy the data first, or split the change so the drop ships after the code stops using it."),
    "unparsable": Rule(
        "error", "A statement PostgreSQL rejects",
        "migrate fails on the file and leaves the version dirty.",
        "Fix the SQL at the line and column PostgreSQL names."),
    "index-not-concurrent": Rule(
        "warning", "CREATE INDEX / DROP INDEX without CONCURRENTLY on an existing table",
        "It holds a lock that blocks every write to the table (DROP: every read too) until it finishes.",
        "Write CREATE INDEX CONCURRENTLY / DROP INDEX CONCURRENTLY, alone in its migration file."),
    "add-column-not-null-no-default": Rule(
        "error", "ADD COLUMN ... NOT NULL without a DEFAULT on an existing table",
        "It fails on any table that has rows ('column contains null values').",
        "Add the column nullable (or with a constant DEFAULT), backfill it, then set NOT NULL."),
    "add-column-volatile-default": Rule(
        "warning", "ADD COLUMN with a volatile DEFAULT (or a serial / stored generated column)",
        "PostgreSQL rewrites the whole table under an ACCESS EXCLUSIVE lock.",
        "Add the column without the default, set the default, then backfill in batches."),
    "constraint-not-valid-missing": Rule(
        "warning", "ADD FOREIGN KEY / CHECK without NOT VALID on an existing table",
        "Validation scans the whole table while holding a lock that blocks writes.",
        "Add the constraint NOT VALID, then VALIDATE CONSTRAINT in a later statement or migration."),
    "set-not-null": Rule(
        "warning", "ALTER COLUMN SET NOT NULL without a validated CHECK (col IS NOT NULL) first",
        "It scans the whole table under an ACCESS EXCLUSIVE lock.",
        "Add CHECK (col IS NOT NULL) NOT VALID, VALIDATE it, then SET NOT NULL (PostgreSQL 12+ skips the scan)."),
    "column-type-change": Rule(
        "warning", "ALTER COLUMN ... TYPE on an existing table",
        "Most type changes rewrite the table and its indexes under an ACCESS EXCLUSIVE lock.",
        "Add a new column, backfill it, switch the code, then drop the old one."),
    "rename": Rule(
        "warning", "RENAME of a table or a column",
        "The code that is running still uses the old name and fails until it is deployed.",
        "Add the new name (a view or a new column), move the code, drop the old name later."),
    "no-lock-timeout": Rule(
        "warning", "A lock-taking statement on an existing table with no SET lock_timeout before it",
        "Waiting behind a long transaction, it queues every other query on the table behind itself.",
        "Start the file with SET lock_timeout = '5s' (and retry the migration when it times out)."),
    "down-not-inverse": Rule(
        "warning", "A down that does not drop what the up created or re-create what it dropped",
        "`migrate down` reports success and leaves the schema between two versions.",
        "Drop in the down what the up creates and re-create what it drops."),
    "unmatched-name": Rule(
        "warning", "A .sql file whose name golang-migrate does not load",
        "migrate skips it silently: its statements never run.",
        "Rename it N_name.up.sql / N_name.down.sql, or move it out of the migrations folder."),
    "missing-up": Rule(
        "warning", "A .down file without an up file of the same version",
        "migrate records the version as applied and runs nothing for it.",
        "Add the up file, or remove the stray down file."),
}
assert tuple(RULES) == LINT_RULES, "core/vocabulary.py LintRule and RULES list the same ids in the same order"


@dataclass(frozen=True)
class LintIssue:
    rule: LintRule
    severity: LintLevel
    path: str  # relative to the linted folder
    line: int  # 1-based: the statement's first line; PostgreSQL's error line for unparsable; 1 for a file
    version: int | None  # None only for unmatched-name (the file has no version)
    direction: Direction | None
    message: str
    column: int | None = None  # 1-based, where known (unparsable)


@dataclass(frozen=True)
class LintResult:
    folder: Path
    files: int
    versions: int
    issues: tuple[LintIssue, ...]
    suppressed: int = 0  # issues silenced by an ignore comment in the files or by `[lint] disable`

    def summary(self) -> str:
        n = Counter(i.severity for i in self.issues)
        found = ", ".join(_count(n[s], s) for s in LINT_LEVELS if n[s]) or "no issues"
        counts = f"{_count(self.files, 'file')}, {_count(self.versions, 'version')}"
        quiet = f" ({self.suppressed} suppressed)" if self.suppressed else ""
        return f"linted {self.folder}: {counts}; {found}{quiet}"

    def worst(self) -> str | None:
        return min((i.severity for i in self.issues), key=lint_rank, default=None)


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 and word != 'info' else ''}"

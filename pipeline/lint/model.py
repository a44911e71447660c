"""What lint reports: its rules, issues and result (shared by the checks and the output formats)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pipeline.core.vocabulary import LINT_LEVELS, LintLevel, lint_rank

Direction = Literal["up", "down"]
RULES: dict[str, tuple[LintLevel, str]] = {
    "missing-down": ("warning", "An up migration has no .down file to roll it back"),
    "empty-down": ("warning", "A .down file holds no statement"),
    "duplicate-version": ("error", "Two up or two down files share a version; migrate refuses the folder"),
    "not-idempotent": ("warning", "DDL that fails when run twice (no IF [NOT] EXISTS / OR REPLACE)"),
    "concurrently-in-transaction": ("error", "CONCURRENTLY in a file PostgreSQL runs inside a transaction"),
    "destructive-in-up": ("warning", "An up migration drops, truncates or deletes data: review it"),
    "unparsable": ("info", "sqlglot cannot parse a statement; it was checked with patterns only"),
}

@dataclass(frozen=True)
class LintIssue:
    rule: str
    severity: LintLevel
    path: str  # relative to the linted folder
    line: int  # 1-based first line of the statement; 1 for a whole-file issue
    version: int
    direction: Direction | None
    message: str


@dataclass(frozen=True)
class LintResult:
    folder: Path
    files: int
    versions: int
    issues: tuple[LintIssue, ...]

    def summary(self) -> str:
        n = Counter(i.severity for i in self.issues)
        found = ", ".join(_count(n[s], s) for s in LINT_LEVELS if n[s]) or "no issues"
        counts = f"{_count(self.files, 'file')}, {_count(self.versions, 'version')}"
        return f"linted {self.folder}: {counts}; {found}"

    def worst(self) -> str | None:
        return min((i.severity for i in self.issues), key=lint_rank, default=None)


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 and word != 'info' else ''}"

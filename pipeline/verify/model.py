"""What `verify` reports: per version, each check's status and detail, and the verdict over the folder."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pipeline.core.vocabulary import FINDINGS_EXIT, VERIFY_CHECKS, VerifyCheck, VerifyStatus

# Exit 3 on these always; `data_restored` and `idempotent_up` count only with --strict, since many sound
# folders use plain CREATE TABLE (not idempotent) or downs that drop what the up added (and its rows).
BLOCKING: tuple[VerifyCheck, ...] = ("up", "down", "schema_restored", "reapply")
STRICT_ONLY: tuple[VerifyCheck, ...] = ("data_restored", "idempotent_up")


@dataclass(frozen=True)
class CheckResult:
    check: VerifyCheck
    status: VerifyStatus
    detail: str = ""  # the error text or the schema/data difference; why, for a skip
    seconds: float = 0.0


@dataclass(frozen=True)
class VersionResult:
    version: int
    name: str
    checks: tuple[CheckResult, ...]  # one per check, in VERIFY_CHECKS order

    def status(self, check: VerifyCheck) -> VerifyStatus:
        return next(c.status for c in self.checks if c.check == check)

    def problems(self, *, strict: bool, allow_missing_down: bool) -> list[CheckResult]:
        """The checks that make the run fail under these options."""
        counted = BLOCKING + (STRICT_ONLY if strict else ())
        return [c for c in self.checks if (c.status == "fail" and c.check in counted)
                or (c.status == "missing" and not allow_missing_down)]


@dataclass(frozen=True)
class VerifyResult:
    folder: Path
    server: str  # what ran the checks, redacted: "PostgreSQL 15.8 at postgres://ci:***@db/postgres"
    versions: tuple[VersionResult, ...]  # in order; a failed up is the last
    not_reached: tuple[int, ...]  # versions after a failed up
    skipped_files: tuple[str, ...]  # names that do not match N_title.up|down.ext
    strict: bool
    allow_missing_down: bool
    multi_statement: bool
    verified_at: datetime  # UTC, naive
    seconds: float

    @property
    def ok(self) -> bool:
        return not any(self.problems())

    def problems(self) -> list[tuple[VersionResult, CheckResult]]:
        return [(v, c) for v in self.versions
                for c in v.problems(strict=self.strict, allow_missing_down=self.allow_missing_down)]

    def exit_code(self) -> int:
        """3 when a counted check failed or a down is missing (docs/contract.md §4), else 0."""
        return 0 if self.ok else FINDINGS_EXIT

    def summary(self) -> str:
        counts = Counter(c.status for v in self.versions for c in v.checks)
        found = ", ".join(f"{counts[s]} {s}" for s in ("pass", "fail", "missing", "skip") if counts[s])
        tail = f"; {len(self.not_reached)} not reached after the failed up" if self.not_reached else ""
        verdict = "ok" if self.ok else f"FAILED ({len(self.problems())} counted)"
        return (f"verified {self.folder}: {len(self.versions)} version{'s' if len(self.versions) != 1 else ''} "
                f"in {self.seconds:.1f} s on {self.server}; checks: {found or 'none'}{tail}; {verdict}")


def checks_in_order(found: dict[VerifyCheck, CheckResult]) -> tuple[CheckResult, ...]:
    """Every check once, in VERIFY_CHECKS order; one never reached is a skip."""
    return tuple(found.get(c) or CheckResult(c, "skip", "not reached") for c in VERIFY_CHECKS)

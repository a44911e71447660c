"""The weekly job: every stage in order, for `migrate-lens run`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from .alerts import AlertResult, alert, load_rules
from .analyze import AnalyzeResult, analyze
from .ingest import IngestResult, ingest
from .report import ReportResult, report

if TYPE_CHECKING:
    from .cli import Context


@dataclass(frozen=True)
class JobResult:
    """What the weekly job did, stage by stage."""

    ingest: IngestResult
    outcomes: tuple[tuple[str, int], ...]  # runs by outcome, over the whole warehouse
    analysis: AnalyzeResult
    report: ReportResult
    alerts: AlertResult

    def summary(self) -> str:
        by_outcome = ", ".join(f"{n:,} {outcome}" for outcome, n in self.outcomes) or "no runs"
        return (f"{self.ingest.summary()}\nruns by outcome: {by_outcome}\n{self.analysis.summary()}\n"
                f"{self.report.summary()}\n{self.alerts.summary()}")


def weekly_job(ctx: Context, sources: list[str], *, envelope: str | None = None, week: str | None = None,
               rules_path: Path | None = None, dry_run: bool = False, since: datetime | None = None) -> JobResult:
    """Ingest `sources`, analyze as of the clock, write the weekly review, then alert."""
    rules = load_rules(rules_path)  # a broken rules file stops the job before it changes anything
    con = ctx.connect()
    try:
        result = ingest(con, sources, config=ctx.config, envelope=envelope, progress=ctx.progress, since=since)
        outcomes = con.execute(
            "SELECT outcome, count(*) FROM runs GROUP BY outcome ORDER BY count(*) DESC, outcome"
        ).fetchall()
        analysis = analyze(con, config=ctx.config, as_of=ctx.as_of)
        review = report(con, config=ctx.config, as_of=ctx.as_of, out=ctx.out, week=week)
        alerted = alert(con, rules=rules, as_of=ctx.as_of, out=ctx.out, dry_run=dry_run)
    finally:
        con.close()
    return JobResult(result, tuple((o, n) for o, n in outcomes), analysis, review, alerted)

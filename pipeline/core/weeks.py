"""ISO weeks, the unit of the weekly review (the report writes one page per week; alerts link it)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from pipeline.core.errors import ConfigError

_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")


@dataclass(frozen=True)
class Week:
    """An ISO week: [start, end) in UTC."""

    label: str
    start: datetime
    end: datetime

    @classmethod
    def parse(cls, label: str) -> Week:
        m = _WEEK.match(label)
        if not m:
            raise ConfigError(f"--week {label}: not an ISO week (use YYYY-Www, e.g. 2026-W46)")
        try:
            monday = date.fromisocalendar(int(m.group(1)), int(m.group(2)), 1)
        except ValueError:
            raise ConfigError(f"--week {label}: no such ISO week (use YYYY-Www, e.g. 2026-W46)") from None
        start = datetime.combine(monday, datetime.min.time())
        return cls(label, start, start + timedelta(days=7))

    @classmethod
    def before(cls, as_of: datetime) -> Week:
        """The last complete ISO week before the clock."""
        this_monday = datetime.combine(as_of.date() - timedelta(days=as_of.weekday()), datetime.min.time())
        start = this_monday - timedelta(days=7)
        year, week, _ = start.isocalendar()
        return cls(f"{year}-W{week:02d}", start, this_monday)

    def previous(self) -> Week:
        start = self.start - timedelta(days=7)
        year, week, _ = start.isocalendar()
        return Week(f"{year}-W{week:02d}", start, self.start)

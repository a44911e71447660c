"""The real golang-migrate captures in tests/fixtures/real-migrate-logs: their index, and each capture as
lines with the times a shipper would have stamped them."""

from __future__ import annotations

import csv
import hashlib
import re
import shlex
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

REAL = Path(__file__).resolve().parent.parent / "fixtures" / "real-migrate-logs"
CAPTURES = REAL / "captures"

VERBOSE_PREFIX = re.compile(r"^(\d{4}/\d\d/\d\d \d\d:\d\d:\d\d) ")
STEP = timedelta(microseconds=3417)  # a few ms between records, like a shipper tailing stderr
# Flags of the migrate CLI that take a value (the rest, like -verbose, stand alone).
VALUE_FLAGS = {"-path", "-source", "-database", "-prefetch", "-lock-timeout"}


def capture_index() -> list[dict[str, str]]:
    """Rows of index.tsv for the captures that are present, with `path` added."""
    rows = []
    with (REAL / "index.tsv").open(encoding="utf-8") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            path = REAL / row["file"]
            if path.exists():
                row["path"] = str(path)
                rows.append(row)
    return rows


def cycle_sleeps(scenario: str) -> dict[str, float] | None:
    """pg_sleep seconds of an `updown-cycle-NN sleeps(up4=…,down4=…,up8=…,down8=…)` scenario."""
    m = re.search(r"sleeps\((.*)\)", scenario)
    if not m:
        return None
    return {k: float(v) for k, v in (kv.split("=") for kv in m.group(1).split(","))}


@dataclass(frozen=True)
class Capture:
    """One capture: its physical lines, how migrate exited, when it started and the command it ran."""

    name: str
    lines: tuple[str, ...]
    exit_code: int
    start: datetime
    command: str | None
    args: tuple[str, ...]

    @property
    def tag(self) -> str:
        """A short per-capture suffix for pod names, container ids, stream names."""
        return hashlib.sha256(self.name.encode()).hexdigest()[:5]

    @property
    def cid(self) -> str:
        return hashlib.sha256(self.name.encode()).hexdigest()

    @property
    def bare(self) -> Path:
        return CAPTURES / f"{self.name}.txt"


@cache
def _index() -> dict[str, dict[str, str]]:
    return {Path(row["file"]).stem: row for row in capture_index()}


@cache
def capture(name: str) -> Capture:
    """The capture `name` (its file stem, e.g. `0012_up`)."""
    row = _index()[name]
    text = Path(row["path"]).read_text(encoding="utf-8")
    argv = shlex.split(row["command"].rsplit("| ", 1)[-1])[1:]  # drop `printf 'y\n' |` and `migrate`
    i = 0
    while i < len(argv) and argv[i].startswith("-") and argv[i] not in ("-help", "-version"):
        i += 2 if argv[i] in VALUE_FLAGS else 1
    return Capture(
        name=name,
        lines=tuple(text.removesuffix("\n").split("\n")) if text else (),
        exit_code=int(row["exit_code"]),
        start=datetime.fromisoformat(row["start_utc"]),
        command=argv[i] if i < len(argv) else None,
        args=tuple(argv),
    )


def stamps(cap: Capture) -> list[datetime]:
    """Arrival times: from the capture's start, STEP apart, never before a line's own verbose second."""
    t, out = cap.start, []
    for line in cap.lines:
        m = VERBOSE_PREFIX.match(line)
        if m:
            t = max(t, datetime.strptime(m[1], "%Y/%m/%d %H:%M:%S").replace(tzinfo=UTC))
        out.append(t)
        t += STEP
    return out

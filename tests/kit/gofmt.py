"""How Go prints times and durations, byte for byte: what golang-migrate and the shippers around it write.

Times are epoch nanoseconds (`int`) or `datetime`s (naive ones are UTC); Go keeps nanoseconds, so the kit
does too. Renderings of a whole second are cached: a benchmark corpus prints millions of lines.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from functools import lru_cache

NS = 1_000_000_000
MS = 1_000_000
US = 1_000
MICRO = "\u00b5"  # Go writes the micro sign U+00B5, not the Greek mu U+03BC

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_ns(t: int | datetime) -> int:
    """Epoch nanoseconds of `t` (exact: no float on the way)."""
    if isinstance(t, int):
        return t
    delta = (t if t.tzinfo else t.replace(tzinfo=UTC)) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * NS + delta.microseconds * US


def utc_ns(text: str) -> int:
    """`2026-10-26 09:41` or `2026-10-26 09:41:07`, read as UTC, in epoch nanoseconds."""
    fmt = "%Y-%m-%d %H:%M:%S" if text.count(":") == 2 else "%Y-%m-%d %H:%M"
    return to_ns(datetime.strptime(text, fmt))


def utc_date(t: int | datetime) -> str:
    """`2026-11-10`: the UTC day of `t`."""
    return _second(to_ns(t) // NS, "%Y-%m-%d")


def iso_week(t: int | datetime) -> str:
    """`2026-W46`: the ISO week of `t` in UTC."""
    year, week, _ = datetime.fromtimestamp(to_ns(t) // NS, UTC).isocalendar()
    return f"{year}-W{week:02d}"


def _fraction(value: int, unit: int) -> str:
    whole, rest = divmod(value, unit)
    digits = str(rest).rjust(len(str(unit)) - 1, "0").rstrip("0")
    return f"{whole}.{digits}" if digits else str(whole)


def go_duration(ns: int) -> str:
    """Go's `time.Duration.String()` at full precision: `0s`, `850ns`, `616.265µs`, `7.738874ms`,
    `8.024545544s`, `2m0.5s`, `1h0m0s`, `-1.5s`."""
    if ns < 0:
        return "-" + go_duration(-ns)
    if ns == 0:
        return "0s"
    if ns < US:
        return f"{ns}ns"
    if ns < MS:
        return _fraction(ns, US) + MICRO + "s"
    if ns < NS:
        return _fraction(ns, MS) + "ms"
    hours, rest = divmod(ns, 3600 * NS)
    minutes, rest = divmod(rest, 60 * NS)
    seconds = _fraction(rest, NS) + "s"
    if hours:
        return f"{hours}h{minutes}m{seconds}"
    return f"{minutes}m{seconds}" if minutes else seconds


@lru_cache(maxsize=8192)
def _second(sec: int, fmt: str) -> str:
    return time.strftime(fmt, time.gmtime(sec))


def verbose_prefix(t: int | datetime) -> str:
    """The prefix of migrate's `-verbose` lines, Go `log` default flags: `2026/11/10 14:02:11 ` (UTC in the
    official image)."""
    return _second(to_ns(t) // NS, "%Y/%m/%d %H:%M:%S ")


def rfc3339nano(t: int | datetime, offset_min: int = 0) -> str:
    """Go's `time.RFC3339Nano`: trailing zeros of the fraction trimmed (so 0 to 9 digits), `Z` for UTC, else
    `+01:00` (logcli's `--timezone Local`). Docker, containerd, Fluent Bit, logcli and slog all print it."""
    sec, frac = divmod(to_ns(t), NS)
    digits = f"{frac:09d}".rstrip("0")
    head = _second(sec + offset_min * 60, "%Y-%m-%dT%H:%M:%S") + ("." + digits if digits else "")
    if offset_min == 0:
        return head + "Z"
    hours, minutes = divmod(abs(offset_min), 60)
    return f"{head}{'+' if offset_min > 0 else '-'}{hours:02d}:{minutes:02d}"


def iso_fixed(t: int | datetime, digits: int) -> str:
    """UTC with exactly `digits` fraction digits (truncated, never trimmed), `Z`."""
    sec, frac = divmod(to_ns(t), NS)
    return _second(sec, "%Y-%m-%dT%H:%M:%S") + f".{f'{frac:09d}'[:digits]}Z"


def iso_ms(t: int | datetime) -> str:
    """Milliseconds, always three digits, `Z`: CloudWatch's S3 export and the migrate-lens/v1 `ts`."""
    return iso_fixed(t, 3)

"""The one jinja2 environment (report pages and e-mail) and the formats people read: durations, metrics, times."""

from __future__ import annotations

import re
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING

from pipeline.core.assets import templates_folder

if TYPE_CHECKING:
    import jinja2

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def inert(text: str) -> str:
    """Text from logs, safe for a terminal, a CSV cell or a header: control characters (escape sequences
    included) shown as `\\xNN`, not obeyed. Tab and newline stay."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def human_duration(ms: float | None, missing: str = "?") -> str:
    """A duration in ms as a person reads it: `523 ms`, `2.1 s`, `1.1 min` (findings, report and e-mail)."""
    if ms is None:
        return missing
    if ms >= 60_000:
        return f"{ms / 60_000:.1f} min"
    if ms >= 1000:
        return f"{ms / 1000:.1f} s"
    return f"{ms:.0f} ms"


def human_minutes(minutes: float) -> str:
    """A span in minutes: `42 min`, `3.5 h`, `2.1 days`."""
    if minutes >= 2 * 24 * 60:
        return f"{minutes / (24 * 60):.1f} days"
    if minutes >= 120:
        return f"{minutes / 60:.1f} h"
    return f"{minutes:.0f} min"


def _duration(ms: float | None) -> str:
    return human_duration(ms, missing="—")


def _metric(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "percent":
        return f"{value:.1f} %"
    if unit == "ms":
        return _duration(value)
    if unit == "minutes":
        return f"{value:.0f} min" if value < 120 else f"{value / 60:.1f} h"
    return f"{value:,.0f}"


def _when(ts: datetime | None) -> str:
    return "—" if ts is None else f"{ts:%Y-%m-%d %H:%M}"


@cache
def environment() -> jinja2.Environment:
    """The one jinja2 environment: autoescape, StrictUndefined, every filter registered here."""
    import jinja2  # here, not at the top: `lint` and `--help` import this module for inert() alone

    class _PackageLoader(jinja2.BaseLoader):
        """Templates read through importlib.resources, so an installed wheel (or a zip) serves them."""

        def get_source(self, environment: jinja2.Environment, template: str) -> tuple[str, str, None]:
            path = templates_folder().joinpath(template)
            if not path.is_file():
                raise jinja2.TemplateNotFound(template)
            return path.read_text(encoding="utf-8"), template, None

        def list_templates(self) -> list[str]:
            return sorted(p.name for p in templates_folder().iterdir() if p.name.endswith(".j2"))

    env = jinja2.Environment(
        loader=_PackageLoader(),
        # HTML templates escape every value; the plain-text e-mail part (`*.txt.j2`) has nothing to escape.
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), disabled_extensions=("txt.j2",),
                                            default=True, default_for_string=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["duration"] = _duration
    env.filters["metric"] = _metric
    env.filters["when"] = _when
    return env

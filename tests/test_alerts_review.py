"""The weekly review's alerting section: per rule over the last four weeks, fired, resolved, repeats, median time
to resolve, silenced and escalated, with the noisiest rules named, from what `alert` recorded in alert_history."""

from __future__ import annotations

import datetime as dt
import re
import tomllib

from pipeline.alerts import Rules, alert
from pipeline.core.config import Config
from pipeline.report import report

from .conftest import rows
from .test_alerts import _finding

RULES = """
[[routes]]
name = "oncall"
to = ["oncall@localhost"]

[[rules]]
name = "dirty"
kinds = ["dirty_open"]
route = "oncall"
repeat_interval = "4h"

[[rules]]
name = "slow"
kinds = ["duration_outlier"]
route = "oncall"

[[silences]]
matchers = { rule = "slow", database = "tenant_009" }
until = 2026-11-20T00:00:00Z
"""


def _cells(html: str, rule: str) -> list[str]:
    row = re.search(rf'<tr data-alerting="{rule}">(.*?)</tr>', html, re.DOTALL)
    assert row, rule
    return [c.strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row.group(1), re.DOTALL)]


def test_the_review_counts_alerting_per_rule_over_four_weeks_and_names_the_noisiest(warehouse, tmp_path):
    rules = Rules.model_validate(tomllib.loads(RULES))
    t0 = dt.datetime(2026, 11, 9, 8, 0)  # Monday of 2026-W46
    # dirty: fires, repeats twice (4h interval), resolves after 9 h; fires again, resolves after 1 h.
    _finding(warehouse, "d1")
    for hours in (0, 1, 4, 8):
        alert(warehouse, rules=rules, as_of=t0 + dt.timedelta(hours=hours), out=tmp_path)
    _finding(warehouse, "d1", status="resolved")
    alert(warehouse, rules=rules, as_of=t0 + dt.timedelta(hours=9), out=tmp_path)
    _finding(warehouse, "d1")
    alert(warehouse, rules=rules, as_of=t0 + dt.timedelta(hours=24), out=tmp_path)
    _finding(warehouse, "d1", status="resolved")
    alert(warehouse, rules=rules, as_of=t0 + dt.timedelta(hours=25), out=tmp_path)
    # slow: one alert fires and stays open; another is silenced from the start.
    _finding(warehouse, "s1", kind="duration_outlier", severity="warning", database="tenant_001")
    _finding(warehouse, "s2", kind="duration_outlier", severity="warning", database="tenant_009")
    alert(warehouse, rules=rules, as_of=t0 + dt.timedelta(hours=30), out=tmp_path)
    # Long before the four weeks: not counted.
    warehouse.execute("INSERT INTO alert_history VALUES ('old', 'dirty', 'fired', ?, ?, NULL)",
                      [dt.datetime(2026, 9, 1), dt.datetime(2026, 9, 1)])
    assert rows(warehouse, "SELECT event, count(*) FROM alert_history WHERE rule = 'dirty' AND alert_id <> 'old' "
                           "GROUP BY 1 ORDER BY 1") == [("fired", 2), ("repeat", 2), ("resolved", 2)]

    result = report(warehouse, config=Config(), as_of=dt.datetime(2026, 11, 16), out=tmp_path)
    html = result.path.read_text()
    assert _cells(html, "dirty") == ["dirty", "2", "2", "2", "5.0 h", "0", "0"]  # median of 9 h and 1 h
    assert _cells(html, "slow") == ["slow", "2", "0", "0", "—", "1", "0"]
    noisiest = re.search(r"<p data-noisiest>(.*?)</p>", html, re.DOTALL).group(1)
    assert noisiest.endswith("Noisiest: <b>dirty</b>, <b>slow</b>.")
    assert html.index('<tr data-alerting="dirty">') < html.index('<tr data-alerting="slow">')


def test_the_review_says_when_no_alert_fired(warehouse, tmp_path):
    html = report(warehouse, config=Config(), as_of=dt.datetime(2026, 11, 16), out=tmp_path).path.read_text()
    assert 'data-empty="alerting"' in html and "No alert fired in these four weeks." in html

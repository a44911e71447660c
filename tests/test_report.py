"""The weekly review: numbers match the warehouse, log text is inert, nothing leaks, and a real browser
renders it with no console error and no network request."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta
from html.parser import HTMLParser

import pytest
from click.testing import CliRunner

from pipeline.analyze import analyze
from pipeline.api import ingest
from pipeline.cli import main
from pipeline.core.config import Config
from pipeline.report import Week, report
from pipeline.warehouse import connect

from .conftest import IN_CI, ROOT, SampleTemplate, rows, sample_as_of, sample_truth

AS_OF = sample_as_of()
TRUTH = sample_truth()
WEEK = TRUTH["weeks"][-1]  # the default week: the last complete one before the demo's clock
ARTIFACTS = ROOT / "tests" / ".artifacts"


class _Page(HTMLParser):
    """Attributes of every element, and the text, of a rendered page."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def attr(self, name: str) -> dict[str, dict[str, str | None]]:
        return {a[name]: a for _, a in self.elements if a.get(name) is not None}


def _parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    return page


@pytest.fixture(scope="module")
def fleet_report(sample_template: SampleTemplate, tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    con = connect(sample_template.copy(root / "w.duckdb"))
    result = report(con, config=Config(), as_of=AS_OF, out=root / "out")
    yield con, result, result.path.read_text(encoding="utf-8")
    con.close()


def test_default_week_is_the_last_complete_iso_week_before_the_clock():
    assert Week.before(datetime(2026, 11, 16)).label == "2026-W46"
    assert Week.before(datetime(2026, 11, 18, 9)).label == "2026-W46"
    assert Week.before(datetime(2026, 11, 15, 23, 59)).label == "2026-W45"
    assert Week.parse("2026-W46").start == datetime(2026, 11, 9)
    assert Week.parse("2027-W01").start == datetime(2027, 1, 4)


def test_report_and_index_are_written(fleet_report):
    _, result, _ = fleet_report
    assert result.path.name == f"{WEEK}.html"
    assert f'href="{WEEK}.html"' in result.index.read_text(encoding="utf-8")


def test_headline_figures_match_the_warehouse(fleet_report):
    con, _, html = fleet_report
    metrics = {k: a["data-value"] for k, a in _parse(html).attr("data-metric").items()}
    start = Week.parse(WEEK).start
    end = start + timedelta(days=7)
    runs, ok, failures, locked = rows(con, """
        SELECT count(*), count(*) FILTER (WHERE outcome IN ('success', 'no_change')),
               count(*) FILTER (WHERE outcome IN ('failed', 'dirty', 'locked', 'error', 'interrupted')),
               count(*) FILTER (WHERE outcome = 'locked')
        FROM runs WHERE started_at >= ? AND started_at < ?""", [start, end])[0]
    assert runs > 0 and float(metrics["runs"]) == runs
    assert float(metrics["failures"]) == failures
    assert float(metrics["lock_timeouts"]) == locked == TRUTH["runs_by_week"][WEEK].get("locked", 0) > 0
    assert float(metrics["success_rate"]) == pytest.approx(100 * ok / runs)
    [(p95,)] = rows(con, "SELECT quantile_cont(own_ms, 0.95) FROM migrate_events WHERE kind = 'applied' "
                         "AND ts >= ? AND ts < ?", [start, end])
    assert float(metrics["p95_own_ms"]) == pytest.approx(p95)


def test_per_service_runs_and_data_quality_match(fleet_report):
    con, _, html = fleet_report
    page = _parse(html)
    start = Week.parse(WEEK).start
    [(prod_billing,)] = rows(con, "SELECT count(*) FROM runs WHERE env = 'prod' AND service = 'billing' "
                                  "AND started_at >= ? AND started_at < ?", [start, start + timedelta(days=7)])
    cells = [a for tag, a in page.elements if tag == "tr" and a.get("data-env") == "prod"
             and a.get("data-service") == "billing"]
    assert len(cells) == 1
    assert f"<td class=\"num\" data-runs>{prod_billing}</td>" in html
    rejects = dict(rows(con, "SELECT reason, count(*) FROM rejects GROUP BY 1"))
    assert set(page.attr("data-reject")) == set(rejects)


def test_attention_lists_the_open_dirty_database_with_its_runbook(fleet_report):
    _, result, html = fleet_report
    dirty = [s for s in TRUTH["final_state"] if s["dirty"]]
    assert dirty
    for s in dirty:
        assert f"{s['env']}/{s['service']}/{s['database']} is dirty at version {s['version']}" in html
    assert "migrate force N-1" in html
    assert result.attention >= 1


def test_prod_rollback_week_counts_it(fleet_report):
    con, _, _ = fleet_report
    rollbacks: dict[str, set[str]] = {}
    for step in TRUTH["down_steps"]:
        if step["env"] == "prod":
            rollbacks.setdefault(step["week"], set()).add(step["run_first_line"])
    assert rollbacks
    for week, runs in rollbacks.items():
        out = report(con, config=Config(), as_of=AS_OF, out=fleet_report[1].path.parent.parent, week=week)
        metrics = _parse(out.path.read_text(encoding="utf-8")).attr("data-metric")
        assert float(metrics["prod_rollbacks"]["data-value"]) == len(runs), week


def test_page_is_self_contained_small_and_leaks_no_secret(fleet_report):
    _, result, html = fleet_report
    page = _parse(html)
    assert result.size_bytes < 200_000
    assert not [t for t, _ in page.elements if t in ("script", "link", "iframe", "img")]
    for _, attrs in page.elements:
        for name in ("src", "href"):
            value = attrs.get(name) or ""
            assert "//" not in value, f"external reference {value}"
    for secret in TRUTH["secrets"]:
        assert secret not in html


def test_hostile_text_from_logs_is_inert(tmp_path):
    log = tmp_path / "env=prod" / "service=shop" / "database=db1" / "x-json.log"
    log.parent.mkdir(parents=True)
    lines = [
        '1/u <script>alert(1)</script> (2.5ms)',
        "2/u " + "very_long_name_" * 700 + " (3.5ms)",
        ('error: migration failed: syntax error at or near "<img src=x onerror=alert(2)>" in line 1: '
         "CREATE TABLE t (</td></table><script>alert(3)</script>"),
        ' (details: pq: syntax error at or near "<img src=x onerror=alert(2)>")',
    ]
    log.write_text("".join(f'{{"log": {json.dumps(ln + chr(10))}, "stream": "stderr", '
                           f'"time": "2026-11-10T10:00:0{i}.000000000Z"}}\n' for i, ln in enumerate(lines)),
                   encoding="utf-8")
    con = connect(tmp_path / "w.duckdb")
    ingest(con, [str(log)], config=Config(), progress=False)
    analyze(con, config=Config(), as_of=AS_OF)
    html = report(con, config=Config(), as_of=AS_OF, out=tmp_path / "out").path.read_text(encoding="utf-8")
    con.close()
    assert "<script" not in html and "<img" not in html
    assert "very_long_name_" * 700 in html and len(html) < 200_000  # shown whole once, the page stays small
    assert "&lt;img src=x onerror=alert(2)&gt;" in html or "&#34;&lt;img" in html


def test_bad_week_is_one_error_line(tmp_path):
    result = CliRunner().invoke(main, ["--db", str(tmp_path / "w.duckdb"), "--out", str(tmp_path), "report",
                                       "--week", "2026-46"])
    assert result.exit_code == 1
    assert result.stderr == "Error: --week 2026-46: not an ISO week (use YYYY-Www, e.g. 2026-W46)\n"


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.slow
def test_report_renders_in_headless_chromium_without_errors_or_network(fleet_report, tmp_path):
    browser_path = _chromium()
    if browser_path is None:
        if IN_CI:
            pytest.fail("CI must install Debian's chromium (see .ci/run)")
        pytest.skip("chromium is not installed (apt-get install chromium); CI installs it")
    from playwright.sync_api import sync_playwright

    _, result, _ = fleet_report
    errors: list[str] = []
    requests: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=browser_path,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"],
        )
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type in ("error", "warning") else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(result.path.as_uri())
            page.wait_for_load_state("networkidle")
            assert page.title() == f"migrate review {WEEK}"
            assert page.locator("[data-metric='runs'] .v").inner_text().strip() != ""
            shot = tmp_path / f"report-{WEEK}.png"
            page.screenshot(path=str(shot), full_page=True)
            phone = browser.new_page(viewport={"width": 390, "height": 844})
            phone.goto(result.path.as_uri())
            width = phone.evaluate("document.documentElement.scrollWidth")
            phone.screenshot(path=str(tmp_path / f"report-{WEEK}-phone.png"))
        finally:
            browser.close()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for png in tmp_path.glob("*.png"):
        shutil.copy(png, ARTIFACTS / png.name)
    assert errors == []
    assert requests == [result.path.as_uri()], "the page fetched something besides itself"
    assert width <= 390 + 1, "the page scrolls sideways on a phone"
    assert shot.stat().st_size > 10_000



def test_active_silences_and_silenced_alerts_are_shown(fleet_report, tmp_path):
    from pipeline.alerts import add_silence, alert, load_rules

    con, _, _ = fleet_report
    add_silence(con, matchers=["service=billing"], duration="2h", until=None, comment="tenant restore",
                created_by="sre", now=AS_OF)
    rules = load_rules(None).model_copy(update={"silences": []})
    alert(con, rules=rules, as_of=AS_OF, out=tmp_path)
    html = report(con, config=Config(), as_of=AS_OF, out=tmp_path).path.read_text(encoding="utf-8")
    page = _parse(html)
    assert len([a for _, a in page.elements if "data-silence" in a]) == 1
    assert "service=billing" in html and "tenant restore" in html
    held = [a for _, a in page.elements if "data-silenced" in a]
    assert held, "the billing alerts are shown as held back"
    later = report(con, config=Config(), as_of=AS_OF + timedelta(hours=3), out=tmp_path).path.read_text(encoding="utf-8")
    assert "tenant restore" not in later
    con.execute("DELETE FROM silences")
    con.execute("DELETE FROM alerts")

"""`metrics`: the exposition of the demo fleet parsed back with prometheus-client's own parser and its values
checked against the fleet's ground truth; the textfile written atomically; the Pushgateway push; pooled envs as
one series per pool; `run` writing them when configured; the shipped Grafana dashboard naming only emitted
metrics and labels."""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families
from pytest_httpserver import HTTPServer

from pipeline.api import Config, Lens, ingest
from pipeline.api import metrics as api_metrics
from pipeline.cli import main
from pipeline.core.assets import dashboards_folder
from pipeline.core.config import MetricsConfig
from pipeline.metrics import METRICS, POOLED
from pipeline.warehouse import connect

from .conftest import ROOT, rows, sample_as_of, sample_truth

README = (ROOT / "README.md").read_text(encoding="utf-8")
CONTRACT = (ROOT / "docs" / "contract.md").read_text(encoding="utf-8")


def _parse(text: str) -> dict[str, dict]:
    """name -> {"type", "help", "samples": [(sample name, labels, value)]} as Prometheus would read it."""
    out = {}
    for family in text_string_to_metric_families(text):
        name = family.name + ("_total" if family.type == "counter" else "")
        out[name] = {"type": family.type, "help": family.documentation,
                     "samples": [(s.name, s.labels, s.value) for s in family.samples]}
    return out


@pytest.fixture
def exposition(sample_warehouse) -> dict[str, dict]:
    result = api_metrics(sample_warehouse, config=Config(), as_of=sample_as_of())
    assert result.text.startswith("# HELP migrate_lens_")
    return _parse(result.text)


def test_every_documented_metric_is_emitted_with_its_type_and_help(exposition):
    for name, kind, labels, help_text in METRICS:
        assert exposition[name]["type"] == kind and exposition[name]["help"] == help_text, name
        assert exposition[name]["samples"], f"{name} has no sample on the demo fleet"
        for sample_name, sample_labels, _ in exposition[name]["samples"]:
            assert sample_name == name and set(sample_labels) == set(labels), (name, sample_labels)
        assert f"`{name}`" in README and f"`{name}`" in CONTRACT, f"{name} is not documented"


def test_runs_per_env_service_and_outcome_match_the_fleet(exposition):
    got: Counter[tuple[str, str, str]] = Counter()
    for _, labels, value in exposition["migrate_lens_runs_total"]["samples"]:
        got[(labels["service"], labels["env"], labels["outcome"])] += value
    want = Counter({(key.split("/")[0], key.split("/")[1], outcome): n
                    for key, by in sample_truth()["runs"].items() for outcome, n in by.items()})
    assert got == want
    failures = Counter()
    for _, labels, value in exposition["migrate_lens_run_failures_total"]["samples"]:
        failures[(labels["service"], labels["env"])] += value
    fail_outcomes = ("failed", "dirty", "locked", "error", "interrupted")
    expected: Counter[tuple[str, str]] = Counter()
    for (service, env, outcome), n in want.items():
        expected[(service, env)] += n if outcome in fail_outcomes else 0
    assert failures == +expected


def test_versions_dirty_state_and_last_runs_match_the_fleet(exposition, sample_warehouse):
    version = {(lb["env"], lb["service"], lb["database"]): v for _, lb, v in
               exposition["migrate_lens_database_version"]["samples"]}
    dirty = {(lb["env"], lb["service"], lb["database"]): v for _, lb, v in
             exposition["migrate_lens_database_dirty"]["samples"]}
    truth = sample_truth()["final_state"]
    assert version == {(d["env"], d["service"], d["database"]): d["version"] for d in truth}
    assert dirty == {(d["env"], d["service"], d["database"]): float(d["dirty"]) for d in truth}
    last = {(lb["env"], lb["service"], lb["database"]): v for _, lb, v in
            exposition["migrate_lens_last_run_timestamp_seconds"]["samples"]}
    want = {(e, s, d): t.replace(tzinfo=UTC).timestamp()  # the warehouse keeps naive UTC
            for e, s, d, t in rows(sample_warehouse, "SELECT env, service, database, max(started_at) FROM runs "
                                                     "GROUP BY ALL")}
    assert last == want and set(last) == set(version)


def test_durations_findings_lines_and_rejects_match_the_warehouse_and_the_truth(exposition, sample_warehouse):
    durations = {(lb["env"], lb["service"], lb["version"], lb["direction"], lb["quantile"]): v
                 for _, lb, v in exposition["migrate_lens_script_duration_seconds"]["samples"]}
    shift = sample_truth()["level_shift"]
    [(median, p95)] = rows(sample_warehouse, "SELECT median_ms, p95_ms FROM script_baselines WHERE env = ? AND "
                                             "service = ? AND version = ? AND direction = 'up'",
                           [shift["env"], shift["service"], shift["version"]])
    key = (shift["env"], shift["service"], str(shift["version"]), "up")
    assert durations[(*key, "0.5")] == pytest.approx(median / 1000)
    assert durations[(*key, "0.95")] == pytest.approx(p95 / 1000)
    assert durations[(*key, "0.95")] >= durations[(*key, "0.5")] > 1.0  # the backfill runs for seconds
    open_by = {(lb["kind"], lb["severity"]): v for _, lb, v in exposition["migrate_lens_findings_open"]["samples"]}
    assert sum(open_by.values()) == rows(sample_warehouse, "SELECT count(*) FROM findings WHERE status = 'open'")[0][0]
    for f in sample_truth()["findings"]:
        if f.get("status") == "open":
            assert sum(v for (k, _), v in open_by.items() if k == f["kind"]) >= 1, f
    [(_, _, lines)] = exposition["migrate_lens_ingest_lines_total"]["samples"]
    assert lines == sample_truth()["records"]
    rejects = {lb["reason"]: v for _, lb, v in exposition["migrate_lens_rejects_total"]["samples"]}
    assert rejects == dict(Counter(r["reason"] for r in sample_truth()["rejects"]))


def test_pooled_envs_are_one_series_per_pool(tmp_path):
    lines = ("2026/11/10 14:02:10 Start buffering 1/u create_carts\n"
             "2026/11/10 14:02:10 Read and execute 1/u create_carts\n"
             "2026/11/10 14:02:10 Finished 1/u create_carts (read 1.1ms, ran 20.5ms)\n"
             "2026/11/10 14:02:10 Start buffering 2/u add_totals\n"
             "2026/11/10 14:02:10 Read and execute 2/u add_totals\n"
             "2026/11/10 14:02:10 Finished 2/u add_totals (read 21.9ms, ran 5.2ms)\n"
             "2026/11/10 14:02:10 Finished after 27.8ms\n"
             "2026/11/10 14:02:10 Closing source and database\n")
    for pr in range(101, 106):
        folder = tmp_path / "logs" / f"env=preview-{pr}" / "service=shop" / f"database=shop_{pr}"
        folder.mkdir(parents=True)
        text = lines if pr != 105 else lines.split("2026/11/10 14:02:10 Start buffering 2/u")[0] + \
            "2026/11/10 14:02:10 Finished after 21.9ms\n"
        (folder / "up.txt").write_text(text)
        os.utime(folder / "up.txt", (1794319330, 1794319330))
    con = connect(tmp_path / "w.duckdb")
    ingest(con, [str(tmp_path / "logs")], config=Config())
    from pipeline.api import analyze

    analyze(con, config=Config(), as_of=datetime(2026, 11, 16))
    parsed = _parse(api_metrics(con, config=Config(), as_of=datetime(2026, 11, 16)).text)
    con.close()
    assert [(lb, v) for _, lb, v in parsed["migrate_lens_database_version"]["samples"]] == [
        ({"env": "preview", "service": "shop", "database": POOLED}, 2.0)]
    assert [(lb, v) for _, lb, v in parsed["migrate_lens_database_dirty"]["samples"]] == [
        ({"env": "preview", "service": "shop", "database": POOLED}, 0.0)]
    assert [(lb["env"], v) for _, lb, v in parsed["migrate_lens_runs_total"]["samples"]] == [("preview", 5.0)]
    assert len(parsed["migrate_lens_last_run_timestamp_seconds"]["samples"]) == 1
    assert {lb["env"] for _, lb, _ in parsed["migrate_lens_script_duration_seconds"]["samples"]} == {"preview"}


def test_metrics_command_writes_the_textfile_atomically_and_pushes_to_a_pushgateway(sample_template, tmp_path):
    db = sample_template.copy(tmp_path / "w.duckdb")
    target = tmp_path / "textfile" / "migrate_lens.prom"
    target.parent.mkdir()
    target.write_text("old content, complete\n")
    reader = target.open()  # a collector in the middle of reading the old file
    server = HTTPServer(host="127.0.0.1", port=0)
    server.expect_request("/metrics/job/migrate_lens", method="PUT").respond_with_data("", status=200)
    server.start()
    try:
        result = CliRunner().invoke(main, ["--db", str(db), "--as-of", "2026-11-16T00:00:00Z", "metrics", "--textfile",
                                           str(target), "--push", server.url_for("")])
        assert result.exit_code == 0, result.output
        assert result.stdout.startswith("metrics: ") and f"wrote {target}" in result.stdout
        assert "pushed to http://127.0.0.1:" in result.stdout and "(job migrate_lens)" in result.stdout
        [(request, _)] = server.log
        assert request.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        pushed = _parse(request.get_data().decode())
    finally:
        server.clear()
        server.stop()
    assert reader.read() == "old content, complete\n"  # replaced by a rename, not rewritten in place
    reader.close()
    written = _parse(target.read_text())
    assert set(written) == {m[0] for m in METRICS} and written == pushed
    assert sorted(p.name for p in target.parent.iterdir()) == ["migrate_lens.prom"]  # no temporary file left
    stdout = CliRunner().invoke(main, ["--db", str(db), "--as-of", "2026-11-16T00:00:00Z", "metrics"])
    assert stdout.exit_code == 0 and _parse(stdout.stdout) == written


def test_a_pushgateway_that_is_down_is_one_error_line(sample_template, tmp_path):
    db = sample_template.copy(tmp_path / "w.duckdb")
    result = CliRunner().invoke(main, ["--db", str(db), "metrics", "--push", "http://user:pw-Secret9@127.0.0.1:9/"])
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    assert result.stderr.startswith("Error: metrics: the Pushgateway at http://user:***@127.0.0.1:9/ refused or is down")
    assert "pw-Secret9" not in result.stderr


def test_run_writes_the_metrics_when_configured(tmp_path):
    from .conftest import SAMPLE_LOGS

    target = tmp_path / "prom" / "lens.prom"
    config = Config(metrics=MetricsConfig(textfile=target))
    job = Lens(tmp_path / "w.duckdb", config=config, out=tmp_path / "out", as_of=sample_as_of()).run(
        [str(SAMPLE_LOGS / "text")])
    assert job.metrics is not None and job.metrics.textfile == target
    assert f"wrote {target}" in job.summary()
    assert _parse(target.read_text())["migrate_lens_ingest_lines_total"]["samples"][0][2] > 0


# -- the Grafana dashboard ---------------------------------------------------------------------------------------

_PROMQL_WORDS = {"sum", "max", "min", "avg", "count", "by", "without", "rate", "increase", "topk", "bottomk",
                 "time", "clamp_min", "clamp_max", "sort_desc", "sort", "label_replace", "and", "or", "unless",
                 "on", "ignoring", "group_left", "group_right", "offset", "vector", "changes", "max_over_time",
                 "last_over_time", "count_values", "abs", "round", "bool", "absent", "delta", "idelta", "deriv"}


def _dashboard() -> dict:
    return json.loads(dashboards_folder().joinpath("migrate-lens.json").read_text(encoding="utf-8"))


def _exprs(panels: list[dict]) -> list[str]:
    out = []
    for p in panels:
        out += [t["expr"] for t in p.get("targets", [])]
        out += _exprs(p.get("panels", []))
    return out


def test_the_dashboard_is_provisioning_ready_and_names_only_emitted_metrics_and_labels(exposition):
    board = _dashboard()
    assert board["uid"] and board["title"] and board["schemaVersion"] >= 30 and board.get("id") is None
    assert {v["name"] for v in board["templating"]["list"]} >= {"datasource", "env"}
    titles = " ".join(p["title"].lower() for p in board["panels"])
    for needed in ("failure rate", "runs", "p95", "dirty", "version", "open findings"):
        assert needed in titles, needed
    labels = {name: {k for _, lb, _ in fam["samples"] for k in lb} for name, fam in exposition.items()}
    exprs = _exprs(board["panels"])
    assert len(exprs) >= 6
    for expr in exprs:
        names = set(re.findall(r"\bmigrate_lens_[a-z_]+\b", expr))
        assert names and names <= set(exposition), (expr, names - set(exposition))
        allowed = set().union(*(labels[n] for n in names)) | {"le", "quantile"}
        used = set(re.findall(r"([a-z_]+)\s*(?:=~|!~|!=|=)\s*\"", expr))
        for group in re.findall(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)", expr):
            used |= {g.strip() for g in group.split(",") if g.strip()}
        assert used <= allowed, (expr, used - allowed)
        words = set(re.findall(r"\b([a-z_]+)\s*\(", expr))
        assert words <= _PROMQL_WORDS | used, (expr, words - _PROMQL_WORDS)
    provider = dashboards_folder().joinpath("provisioning.yaml").read_text(encoding="utf-8")
    assert "apiVersion: 1" in provider and "providers:" in provider


def test_the_dashboard_and_its_provisioning_file_ship_in_the_package():
    names = sorted(p.name for p in dashboards_folder().iterdir() if not p.name.startswith("_"))
    assert {"migrate-lens.json", "provisioning.yaml", "README.md"} <= set(names)
    assert Path(str(dashboards_folder())).name == "dashboards"

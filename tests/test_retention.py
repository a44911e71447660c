"""The retention policy: raw lines and rejects go, history stays, the file shrinks, nothing comes back."""

from __future__ import annotations

from datetime import datetime

from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

import pipeline
from pipeline.cli import main
from pipeline.core.config import Config, RetentionConfig

from .conftest import SAMPLE_LOGS

AS_OF = datetime(2026, 11, 16)


def _counts(lens: pipeline.Lens) -> dict[str, int]:
    sql = ("SELECT (SELECT count(*) FROM log_lines) AS lines, (SELECT count(*) FROM rejects) AS rejects, "
           "(SELECT count(*) FROM runs) AS runs, (SELECT count(*) FROM migrate_events) AS events, "
           "(SELECT count(*) FROM ingested_sources) AS sources")
    return lens.query(sql).to_dicts()[0]


def test_prune_keeps_runs_events_and_findings_and_shrinks_the_file(tmp_path):
    db = tmp_path / "w.duckdb"
    lens = pipeline.Lens(db, out=tmp_path / "out", as_of=AS_OF)
    lens.ingest([str(SAMPLE_LOGS)])
    lens.analyze()
    before = _counts(lens)
    findings = lens.query("SELECT finding_id, status, explanation FROM findings ORDER BY finding_id").rows()

    # a week of raw lines: streams quiet since before 2026-11-09 lose theirs; newer ones keep them
    week = lens.prune(keep_days=7)
    mid = _counts(lens)
    assert 0 < week.lines < before["lines"] and mid["lines"] == before["lines"] - week.lines
    assert week.streams > 0 and week.rejects == 0  # every reject was ingested today, after the cutoff
    assert {k: mid[k] for k in ("runs", "events", "sources")} == {k: before[k] for k in ("runs", "events", "sources")}
    assert lens.query("SELECT min(last_line_at) < TIMESTAMP '2026-11-09' AND max(last_line_at) < TIMESTAMP "
                      "'2026-11-09' AS ok FROM pruned_streams")["ok"][0]

    everything = pipeline.Lens(db, out=tmp_path / "out", as_of=datetime(2100, 1, 1)).prune(keep_days=1)
    after = _counts(lens)
    assert (after["lines"], after["rejects"]) == (0, 0) and everything.rejects == before["rejects"]
    assert everything.bytes_after < everything.bytes_before
    lens.analyze()  # history is intact: the same findings come out of events and runs alone
    assert lens.query("SELECT finding_id, status, explanation FROM findings ORDER BY finding_id").rows() == findings
    assert lens.report().path.exists()
    again = lens.ingest([str(SAMPLE_LOGS)])  # unchanged sources stay skipped: pruned lines do not come back
    assert again.sources == 0 and _counts(lens)["lines"] == 0


def test_prune_needs_an_age(tmp_path):
    db = str(tmp_path / "w.duckdb")
    CliRunner().invoke(main, ["ingest", str(SAMPLE_LOGS / "events"), "--db", db])
    result = CliRunner().invoke(main, ["prune", "--db", db])
    assert result.exit_code == 1
    assert result.stderr == ("Error: prune: give --keep-days N or set [retention] keep_raw_days in the config "
                             "file\n")


def test_run_applies_the_configured_retention(tmp_path):
    config = tmp_path / "lens.toml"
    config.write_text("[retention]\nkeep_raw_days = 1\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["run", str(SAMPLE_LOGS / "events"), "--db", str(tmp_path / "w.duckdb"),
                                       "--config", str(config), "--out", str(tmp_path / "out"), "--dry-run",
                                       "--as-of", "2100-01-01T00:00:00Z"])
    assert result.exit_code == 0, result.output
    last = result.stdout.splitlines()[-1]
    assert last.startswith("pruned raw lines before 2099-12-31 00:00: ") and "compacted" in last
    assert RetentionConfig().keep_raw_days is None and Config().retention.compact


def _pod_log(path, day: int, versions: range) -> None:
    """One Fluent Bit file of a pod's migrate container: the same stream (pod + container) every day."""
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for i, v in enumerate(versions):
            f.write(json.dumps({"time": f"2026-11-{day:02d}T10:00:0{i}.000000Z", "stream": "stderr", "_p": "F",
                                "log": f"{v}/u step_{v} ({10 + i}.5ms)\n",
                                "kubernetes": {"namespace_name": "shop", "pod_name": "orders-db-0",
                                               "container_name": "migrate",
                                               "labels": {"env": "prod", "app": "orders"}}}) + "\n")


def test_a_pruned_stream_that_speaks_again_keeps_its_old_events_and_runs(tmp_path):
    logs = tmp_path / "logs"
    _pod_log(logs / "day1.jsonl", 1, range(1, 4))
    lens = pipeline.Lens(tmp_path / "w.duckdb", out=tmp_path / "out", as_of=datetime(2026, 11, 20))
    lens.ingest([str(logs)])
    old = lens.query("SELECT event_id, run_id, version, own_ms FROM migrate_events ORDER BY ts").rows()
    old_runs = lens.query("SELECT run_id, applied, to_version FROM runs").rows()
    assert len(old) == 3 and len(old_runs) == 1
    assert lens.prune(keep_days=7).streams == 1  # the pod's raw lines go; its events and run stay

    _pod_log(logs / "day21.jsonl", 21, range(4, 6))  # weeks later the same pod runs migrate again
    lens.ingest([str(logs)])
    events = lens.query("SELECT event_id, run_id, version, own_ms FROM migrate_events ORDER BY ts").rows()
    assert events[:3] == old and [e[2] for e in events[3:]] == [4, 5]
    runs = lens.query("SELECT run_id, applied, from_version, to_version FROM runs ORDER BY started_at").rows()
    assert [r[:2] for r in runs] == [(old_runs[0][0], 3), (events[3][1], 2)]
    assert runs[1][2:] == (3, 5)  # the new run is chained onto the kept one
    seqs = lens.query("SELECT seq FROM migrate_events ORDER BY ts").rows()
    assert [s[0] for s in seqs] == sorted(s[0] for s in seqs) and len({s[0] for s in seqs}) == 5


def test_pruned_rejects_stay_counted_so_the_rejects_counter_never_drops(tmp_path):
    lens = pipeline.Lens(tmp_path / "w.duckdb", out=tmp_path / "out", as_of=AS_OF)
    lens.ingest([str(SAMPLE_LOGS)])
    lens.analyze()

    def counter() -> dict[str, float]:
        families = text_string_to_metric_families(lens.metrics().text)
        return {s.labels["reason"]: s.value for f in families if f.name == "migrate_lens_rejects"
                for s in f.samples if s.name == "migrate_lens_rejects_total"}

    before = counter()
    by_reason = dict(lens.query("SELECT reason, count(*) AS n FROM rejects GROUP BY ALL").rows())
    assert before == by_reason and sum(by_reason.values()) > 1
    pruned = pipeline.Lens(tmp_path / "w.duckdb", out=tmp_path / "out", as_of=datetime(2100, 1, 1)).prune(keep_days=1)
    assert pruned.rejects == sum(by_reason.values()) and _counts(lens)["rejects"] == 0
    assert counter() == before
    assert dict(lens.query("SELECT reason, sum(rejects) AS n FROM pruned_rejects GROUP BY ALL").rows()) == by_reason
    assert lens.prune(keep_days=1).rejects == 0 and counter() == before  # a second prune removes and counts nothing

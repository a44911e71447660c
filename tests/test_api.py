"""The public Python API: a user's script does what the CLI does, through `pipeline.Lens` or the functions."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime

import pipeline
from pipeline import api

from .conftest import CAPTURES


def test_a_script_runs_the_weekly_job_through_lens(tmp_path):
    lens = pipeline.Lens(tmp_path / "w.duckdb", out=tmp_path / "out", as_of=datetime(2100, 1, 1))
    job = lens.run([str(CAPTURES / "0012_up.txt"), str(CAPTURES / "0035_up_dirty.txt")], dry_run=True)
    assert job.ingest.sources == 2 and job.ingest.runs == 2
    assert dict(job.outcomes) == {"success": 1, "dirty": 1}
    assert job.report.path.exists() and job.report.path.parent == tmp_path / "out" / "reports"
    assert job.summary().splitlines()[1] == "runs by outcome: 1 dirty, 1 success"
    runs = lens.query("SELECT outcome FROM runs ORDER BY outcome")
    assert runs["outcome"].to_list() == ["dirty", "success"]
    failed = lens.query("failed_runs", {"as_of": "2100-01-01", "days": "100000"})  # a named query, clock bound
    assert failed["outcome"].to_list() == ["dirty"]


def test_the_functions_share_one_connection(tmp_path):
    con = api.connect(tmp_path / "w.duckdb")
    config = api.Config()
    loaded = api.ingest(con, [str(CAPTURES / "0012_up.txt")], config=config)
    assert (loaded.sources, loaded.runs) == (1, 1)
    again = api.ingest(con, [str(CAPTURES / "0012_up.txt")], config=config)
    assert (again.sources, again.skipped, again.runs) == (0, 1, 0)
    analysis = api.analyze(con, config=config, as_of=datetime(2100, 1, 1))
    assert analysis.baselines == 6
    con.close()


def test_importing_the_package_loads_neither_duckdb_nor_polars():
    code = "import sys, pipeline; print(sorted(m for m in ('duckdb', 'polars') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"

"""`tests/bench.py` prints its one Markdown table (timings are reported, never asserted), and the shapes it
generates (tests/kit/pods.py) are what it says they are."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path

import pytest

from tests.kit import pods

ROOT = Path(__file__).resolve().parent.parent
NUMERIC = ["ours s", "floor s", "ours ÷ floor", "ours peak RSS MB", "floor peak RSS MB"]


def markdown_table(text: str, first_header: str) -> list[dict[str, str]]:
    """The rows of the Markdown table whose header starts with `first_header`, as dicts by column name."""
    lines = text.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith(f"| {first_header} "))
    cells = [[c.strip() for c in ln.strip().strip("|").split("|")] for ln in lines[start:]
             if ln.startswith("|")]
    header, sep, body = cells[0], cells[1], []
    assert all(set(c) == {"-"} for c in sep), sep
    for row in cells[2:]:
        body.append(dict(zip(header, row, strict=True)))
    return body


@pytest.mark.slow
def test_quick_bench_prints_a_row_per_case_with_numbers_for_ours_and_the_floor(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "bench.py"), "--quick", "--cases", "analyze,report",
         "--bench-dir", str(tmp_path)],
        capture_output=True, text=True, cwd=ROOT, timeout=900, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = markdown_table(proc.stdout, "case")

    assert [r["case"] for r in rows] == ["analyze 100k", "report"], proc.stdout[-3000:]
    for row in rows:
        for column in NUMERIC:
            assert float(row[column].replace(",", "")) > 0, (row["case"], column, row[column])
    assert rows[0]["input"].startswith("100,000 events, ")
    assert rows[1]["floor"] == "DuckDB week summary + findings"
    # the generated warehouse is cached for the next run, and the children's work files are gone
    assert (tmp_path / "analyze-100000.duckdb").is_file()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("work-")] == []


# -- the generated shapes (tests/kit/pods.py) ----------------------------------------------------------------


def records(folder: Path) -> dict[Path, list[dict]]:
    return {p: [json.loads(ln) for ln in p.read_text(encoding="utf-8").splitlines()]
            for p in sorted(folder.rglob("*.jsonl"))}


def test_node_files_hold_whole_pods_in_time_order_up_to_the_size_asked() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        written = pods.write_node_files(Path(tmp), 3000, 4, seed=1, tenants=20)
        files = records(Path(tmp))
    assert 2800 < written <= 3000 and written == sum(map(len, files.values()))
    assert len(files) == 4
    where: dict[str, set[Path]] = {}
    for path, recs in files.items():
        assert [r["time"] for r in recs] == sorted(r["time"] for r in recs), path
        for r in recs:
            where.setdefault(r["kubernetes"]["pod_name"], set()).add(path)
    assert all(len(paths) == 1 for paths in where.values())  # a pod runs on one node
    # the labels name the service, env and database of each record
    assert all({"app", "env", "db"} <= set(r["kubernetes"]["labels"])
               for recs in files.values() for r in recs)


def test_pod_files_are_one_pod_each_of_about_thirty_records_and_the_same_for_the_same_seed() -> None:
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        written = pods.write_pod_files(Path(a), 40, seed=3)
        pods.write_pod_files(Path(b), 40, seed=3)
        files = records(Path(a))
        same = all((Path(b) / p.relative_to(a)).read_bytes() == p.read_bytes() for p in files)
    assert len(files) == 40 and written == sum(map(len, files.values()))
    assert 25 <= written / 40 <= 35
    assert all(len({r["kubernetes"]["pod_name"] for r in recs}) == 1 for recs in files.values())
    assert same


def test_weekly_fleet_files_a_run_under_its_week_and_day_and_releases_reach_prod_after_staging() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        written = pods.write_weekly_fleet(Path(tmp), 2, 3, seed=5, monday=datetime(2026, 9, 28))
        files = records(Path(tmp))
    assert written == sum(map(len, files.values()))
    assert {p.parent.parent.name for p in files} == {"2026-W40", "2026-W41"}
    first_seen: dict[tuple[str, str, str], str] = {}  # (service, script, env) -> first time applied
    for path, recs in files.items():
        day = path.parent.name.removeprefix("dt=")
        assert min(r["time"][:10] for r in recs) == day, path  # a file opens with its day's first run
        for r in sorted(recs, key=lambda r: r["time"]):
            k = r["kubernetes"]["labels"]
            if r["log"].endswith(")") and "/u " in r["log"] and "error" not in r["log"]:
                script = r["log"].split("/u ", 1)[0].split()[-1]
                first_seen.setdefault((k["app"], script, k["env"]), r["time"])
    promoted = [(svc, v) for (svc, v, env) in first_seen if env == "prod"]
    assert promoted, "no script reached prod in two weeks"
    # a script failing in staging is re-applied there only with the next release, so a few skip ahead
    in_order = [first_seen.get((svc, v, "staging"), "~") < first_seen[(svc, v, "prod")]
                for svc, v in promoted]
    assert sum(in_order) >= 0.9 * len(promoted)

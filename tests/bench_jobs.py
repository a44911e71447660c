"""The measured work of tests/bench.py: each side of each case, run in a fresh interpreter of its own.

    .venv/bin/python tests/bench_jobs.py JOB ARGS-JSON

prints one `CHILD-RESULT {json}` line: the job's wall time (the work only, after imports), its note, and the
process's peak RSS (VmHWM), so each number is that side's alone. `child(job, **args)` runs one and reads it.
Ours is the public API, `pipeline.api.Lens`, as the CLI calls it; the floors are DuckDB or the file system
doing the least work that gives the same answer. Not collected by pytest.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.bench_ingest import FLOOR_SQL, LEAST_SQL, vm_hwm_kb
from tests.bench_verify import job_verify, job_verify_floor

# The rolling baseline of every application over the 30 before it, per scope: what analyze must compute.
ANALYZE_FLOOR_SQL = """
SELECT count(*), sum(med), sum(q25) FROM (
    SELECT median(own_ms) OVER w AS med, quantile_cont(own_ms, 0.25) OVER w AS q25
    FROM migrate_events
    WHERE kind = 'applied' AND own_ms IS NOT NULL AND ts <= $as_of
    WINDOW w AS (PARTITION BY env, service, version, direction ORDER BY ts, event_id
                 ROWS BETWEEN 30 PRECEDING AND 1 PRECEDING))
"""
REPORT_FLOOR_SQL = [
    "SELECT env, service, outcome, count(*), max(ended_at - started_at) FROM runs "
    "WHERE started_at >= $start AND started_at < $end GROUP BY ALL",
    "SELECT * FROM findings WHERE status = 'open' OR (ts >= $start AND ts < $end) ORDER BY ts DESC",
]

# ------------------------------------------------------------------------------------------------- children
# Each job does one side of one case and returns {"note": ...}; the child wrapper times it and adds VmHWM.


def _lens(a: dict[str, Any]) -> Any:
    from pipeline.api import Config, Lens

    return Lens(a["db"], config=Config(), out=Path(a.get("out", a["db"] + ".out")),
                as_of=datetime.fromisoformat(a["as_of"]) if a.get("as_of") else None)


def job_ingest(a: dict[str, Any]) -> dict[str, Any]:
    lens = _lens(a)
    t = time.perf_counter()
    r = lens.ingest(a["sources"])
    return {"wall": time.perf_counter() - t, "note": r.summary(), "skipped": r.skipped}


def job_ingest_floor(a: dict[str, Any]) -> dict[str, Any]:
    import duckdb

    t = time.perf_counter()
    con = duckdb.connect(a["db"])
    con.execute(FLOOR_SQL, {"path": a["glob"]})
    n = con.execute("SELECT count(*) FROM floor_lines").fetchall()[0][0]
    con.close()
    return {"wall": time.perf_counter() - t, "note": f"{n:,} rows"}


def job_ingest_least(a: dict[str, Any]) -> dict[str, Any]:
    """The contract's two tables written in two statements and nothing else (`LEAST_SQL`): how far below the
    floor's speed an ingest must fall just by keeping every line and every event."""
    import duckdb

    t = time.perf_counter()
    con = duckdb.connect(a["db"])
    for statement in LEAST_SQL:
        con.execute(statement, {"path": a["glob"]} if "$path" in statement else None)
    lines, events = con.execute("SELECT (SELECT count(*) FROM log_lines), (SELECT count(*) FROM migrate_events)"
                                ).fetchall()[0]
    con.close()
    return {"wall": time.perf_counter() - t, "note": f"{lines:,} lines, {events:,} events"}


def job_stat_floor(a: dict[str, Any]) -> dict[str, Any]:
    """The least a re-run must do to know nothing changed: list the files, read each one's size and mtime."""
    t = time.perf_counter()
    seen: dict[str, tuple[int, int]] = {}
    for folder, _dirs, names in os.walk(a["folder"]):
        for name in names:
            st = os.stat(path := os.path.join(folder, name))
            seen[path] = (st.st_size, st.st_mtime_ns)
    return {"wall": time.perf_counter() - t, "note": f"{len(seen):,} files listed and stat'ed"}


def job_analyze(a: dict[str, Any]) -> dict[str, Any]:
    lens = _lens(a)
    t = time.perf_counter()
    r = lens.analyze()
    return {"wall": time.perf_counter() - t, "note": r.summary()}


def job_analyze_floor(a: dict[str, Any]) -> dict[str, Any]:
    import duckdb

    t = time.perf_counter()
    con = duckdb.connect(a["db"], read_only=True)
    n = con.execute(ANALYZE_FLOOR_SQL, {"as_of": datetime.fromisoformat(a["as_of"])}).fetchall()[0][0]
    con.close()
    return {"wall": time.perf_counter() - t, "note": f"{n:,} applications with a rolling median and q25"}


def job_report(a: dict[str, Any]) -> dict[str, Any]:
    lens = _lens(a)
    t = time.perf_counter()
    r = lens.report()
    return {"wall": time.perf_counter() - t, "note": r.summary()}


def job_report_floor(a: dict[str, Any]) -> dict[str, Any]:
    import duckdb

    from pipeline.core.weeks import Week

    week = Week.before(datetime.fromisoformat(a["as_of"]))
    t = time.perf_counter()
    con = duckdb.connect(a["db"], read_only=True)
    bounds = {"start": week.start, "end": week.end}
    rows = [len(con.execute(sql, bounds).fetchall()) for sql in REPORT_FLOOR_SQL]
    con.close()
    note = f"week {week.label}: {rows[0]:,} summary rows, {rows[1]:,} findings"
    return {"wall": time.perf_counter() - t, "note": note}


def job_run(a: dict[str, Any]) -> dict[str, Any]:
    lens = _lens(a)
    t = time.perf_counter()
    r = lens.run(a["sources"])
    return {"wall": time.perf_counter() - t, "note": r.summary()}


def job_run_floor(a: dict[str, Any]) -> dict[str, Any]:
    first = job_ingest_floor(a)
    second = job_analyze_floor({"db": a["base"], "as_of": a["as_of"]})
    return {"wall": first["wall"] + second["wall"], "note": f"{first['note']}; {second['note']}"}


JOBS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "ingest": job_ingest, "ingest_floor": job_ingest_floor, "ingest_least": job_ingest_least,
    "stat_floor": job_stat_floor,
    "analyze": job_analyze, "analyze_floor": job_analyze_floor, "report": job_report,
    "report_floor": job_report_floor, "run": job_run, "run_floor": job_run_floor,
    "verify": job_verify, "verify_floor": job_verify_floor,  # tests/bench_verify.py
}


def child_main(job: str, args: str) -> None:
    try:
        out = JOBS[job](json.loads(args))
    except Exception as e:
        first = str(e).splitlines()[0] if str(e) else ""
        out = {"wall": float("nan"), "error": f"{type(e).__name__}: {first}"}
    out["hwm_kb"] = vm_hwm_kb()
    print("CHILD-RESULT " + json.dumps(out, default=str), flush=True)


def child(job: str, **args: Any) -> dict[str, Any]:
    """Run one job in a fresh interpreter; its result, with `proc` the whole process's wall time."""
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), job, json.dumps(args)],
                          check=False, capture_output=True, text=True, cwd=ROOT)
    for ln in proc.stdout.splitlines():
        if ln.startswith("CHILD-RESULT "):
            res = json.loads(ln[len("CHILD-RESULT "):])
            res["proc"] = time.perf_counter() - t
            return res
    return {"wall": float("nan"), "hwm_kb": -1, "proc": time.perf_counter() - t,
            "error": f"child exited {proc.returncode}: {(proc.stderr.strip().splitlines() or ['?'])[-1]}"}


if __name__ == "__main__":
    child_main(sys.argv[1], sys.argv[2])

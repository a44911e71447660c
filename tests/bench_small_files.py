"""Small-files ingest benchmark: a fleet's N short Fluent Bit pod logs against the DuckDB read_json floor.

Run from the repo root:

    .venv/bin/python tests/bench_small_files.py [--files 5000]

It writes (once, cached in `.bench/`) N Kubernetes Fluent Bit `json_lines` files of one migrate pod each
(about 30 records; the pod runs of `tests/kit/corpus.py`), and the same records in one file. Each
measurement runs in a fresh child process, which reports its wall time and its own peak RSS (VmHWM):

* floor     — DuckDB `read_json` over the glob + `regexp_extract` into a table (bench_ingest's floor);
* ours      — `migrate-lens ingest` (ingest + parse, the API call) of the folder into a fresh warehouse;
* re-run    — the same ingest again on that warehouse: every source unchanged;
* one file  — `migrate-lens ingest` of the same records in one file, for the per-source overhead
              ((ours - one file) / N).

Timings are printed, never asserted; it always exits 0. Not collected by pytest (no test_ prefix).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import bench_ingest as bench
from tests.kit.corpus import CORPUS_SERVICES, IMAGES, pod_kubernetes, pod_noise, pod_run
from tests.kit.envelopes import fluent_bit_line, k8s_suffix
from tests.kit.fleet import script_names

GENERATOR_VERSION = 2  # 2: the kit's pod runs and Fluent Bit records


def generate(folder: Path, n_files: int) -> int:
    """N pod logs under `folder/<namespace>/`, one migrate run (plus sidecar noise) each; returns records."""
    rng = random.Random(bench.SEED + n_files)
    names = {svc[0]: script_names(rng, 200) for svc in CORPUS_SERVICES}
    now = 1_715_644_800 * 1_000_000_000
    records = 0
    for i in range(n_files):
        svc = rng.choice(CORPUS_SERVICES)
        pod = f"{svc[0]}-migrate-{k8s_suffix(rng)}{i}"
        image = rng.choice(IMAGES)
        kubes = (pod_kubernetes(rng, svc, pod, "migrate", image),
                 pod_kubernetes(rng, svc, pod, "istio-proxy", "docker.io/istio/proxyv2:1.21.2"))
        lines = pod_run(rng, now, svc, names[svc[0]])
        lines += pod_noise(rng, now, lines[-1][0], svc, int(len(lines) * 0.053 + rng.random()))
        lines.sort(key=lambda r: r[0])
        out = folder / svc[1] / f"{pod}.jsonl"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("".join(fluent_bit_line(text, at, kubes[container]) + "\n" for at, container, text in lines),
                       encoding="utf-8")
        records += len(lines)
        now += rng.randint(5, 120) * 1_000_000_000
    return records


def corpus(n_files: int) -> tuple[Path, Path, int]:
    """(folder of N files, one file with the same records, records), generated if missing or stale."""
    base = bench.BENCH / f"pods-{n_files}"
    meta_path = bench.BENCH / f"pods-{n_files}.meta.json"
    want = {"files": n_files, "generator": GENERATOR_VERSION, "bench": bench.GENERATOR_VERSION}
    one = base / "all-in-one.jsonl"
    if meta_path.exists() and one.exists():
        meta = json.loads(meta_path.read_text())
        if {k: meta.get(k) for k in want} == want:
            return base / "pods", one, meta["records"]
    shutil.rmtree(base, ignore_errors=True)
    records = generate(base / "pods", n_files)
    with one.open("wb") as f:
        for p in sorted((base / "pods").rglob("*.jsonl")):
            f.write(p.read_bytes())
    meta_path.write_text(json.dumps({**want, "records": records}))
    return base / "pods", one, records


def child(what: str, target: str, db: str) -> dict:
    """One measurement in this (fresh) process."""
    if what == "floor":
        import duckdb

        t = time.perf_counter()
        con = duckdb.connect(db)
        con.execute(bench.FLOOR_SQL, {"path": target})
        rows = con.execute("SELECT count(*) FROM floor_lines").fetchall()[0][0]
        con.close()
        return {"wall": time.perf_counter() - t, "rows": rows}
    from pipeline.api import ingest
    from pipeline.core.config import Config
    from pipeline.warehouse import connect

    t = time.perf_counter()
    con = connect(db)
    result = ingest(con, [target], config=Config(), progress=False)
    con.close()
    return {"wall": time.perf_counter() - t, "rows": result.lines, "skipped": result.skipped,
            "summary": result.summary()}


def measure(what: str, target: Path | str, db: Path) -> dict:
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", what, str(target), str(db)],
                          check=False, capture_output=True, text=True, cwd=ROOT)
    for ln in proc.stdout.splitlines():
        if ln.startswith("CHILD-RESULT "):
            return json.loads(ln[len("CHILD-RESULT "):])
    print(f"  ! {what} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return {"wall": float("nan"), "rows": 0, "hwm_kb": -1}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=5000, help="pod logs (default 5,000)")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        res = child(*args.child)
        print("CHILD-RESULT " + json.dumps({**res, "hwm_kb": bench.vm_hwm_kb()}), flush=True)
        return

    folder, one, records = corpus(args.files)
    size = sum(p.stat().st_size for p in folder.rglob("*.jsonl"))
    work = bench.BENCH / "work-small-files"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    for p in [*folder.rglob("*.jsonl"), one]:  # warm the page cache for every measurement alike
        p.read_bytes()
    try:
        floor = measure("floor", f"{folder}/*/*.jsonl", work / "floor.duckdb")
        ours = measure("ours", folder, work / "ours.duckdb")
        rerun = measure("ours", folder, work / "ours.duckdb")
        single = measure("ours", one, work / "one.duckdb")
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def mb(r: dict) -> str:
        return f"{r['hwm_kb'] / 1024:,.0f} MB" if r.get("hwm_kb", -1) > 0 else "–"

    print(f"=== small files: {args.files:,} Fluent Bit pod logs, {records:,} records, {size / 1e6:,.1f} MB, "
          f"{folder.relative_to(ROOT)} ===")
    print(bench.machine())
    print(f"floor (read_json over the glob + regexp_extract): {floor['wall']:7.2f} s  rows {floor['rows']:,}  "
          f"peak RSS {mb(floor)}")
    print(f"ours (migrate-lens ingest of the folder):         {ours['wall']:7.2f} s  rows {ours['rows']:,}  "
          f"peak RSS {mb(ours)}")
    print(f"  {ours.get('summary', '')}")
    print(f"ratio floor / ours:                                {floor['wall'] / ours['wall']:7.3f}")
    print(f"same records in one file:                          {single['wall']:7.2f} s  rows {single['rows']:,}  "
          f"peak RSS {mb(single)}")
    print(f"per-source overhead ((ours - one file) / files):   "
          f"{(ours['wall'] - single['wall']) / args.files * 1000:7.2f} ms")
    print(f"unchanged re-run ({rerun.get('skipped', 0):,} skipped):                {rerun['wall']:7.2f} s  "
          f"(floor {floor['wall']:.2f} s)  peak RSS {mb(rerun)}")


if __name__ == "__main__":
    main()

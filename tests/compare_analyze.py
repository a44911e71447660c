"""Does this tree's `analyze` write exactly what an earlier commit's wrote? Run from the repo root:

    .venv/bin/python tests/compare_analyze.py [--before REF] [--targets sample captures bench:1000000]

For each target warehouse it runs `pipeline.analyze.analyze` of REF (the `pipeline/` of that commit, exported
with `git archive`) and of this tree, each in its own child process on its own copy of the warehouse, and
compares `findings`, `script_baselines` and `rollback_readiness`: every column, every row, exact equality
(`EXCEPT ALL` both ways, so a duplicated row counts). REF's analyze runs `--before-runs` times (default 3): where
its own runs disagree with each other (an order it left to chance), this tree must give the answer of one of
them, and everything all of them agree on. Targets: `sample` (sample_logs/ at the demo's clock),
`captures` (every real capture in tests/fixtures/real-migrate-logs, as of 2100-01-01) and `bench:N` (the
benchmark's warehouse of N events, .bench/analyze-N.duckdb, built by tests/bench_analyze.py, at its last event).

Exits 1 when a table differs beyond that, printing the first differing rows. Not collected by pytest (no test_ prefix).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from datetime import datetime
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TABLES = ("findings", "script_baselines", "rollback_readiness")

# Run in a child: analyze the warehouse at argv[2] as of argv[3] with the `pipeline` found first on sys.path.
CHILD = """
import json, resource, sys, time
from datetime import datetime
if sys.argv[1]:
    sys.path.insert(0, sys.argv[1])
import pipeline
from pipeline.analyze import analyze
from pipeline.core.config import Config
from pipeline.warehouse import connect
con = connect(sys.argv[2])
as_of = (datetime.fromisoformat(sys.argv[3]) if sys.argv[3] else
         con.execute("SELECT max(ts) FROM migrate_events").fetchall()[0][0])
t = time.perf_counter()
result = analyze(con, config=Config(), as_of=as_of)
wall = time.perf_counter() - t
con.close()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print("COMPARE-RESULT " + json.dumps({"pipeline": pipeline.__file__, "wall": wall, "peak_mb": peak / 1024,
                                      "summary": result.summary()}))
"""


def export(ref: str, dest: Path) -> Path:
    """The `pipeline` package of commit `ref`, laid out as the installed package is (queries, templates inside)."""
    archive = subprocess.run(["git", "archive", ref, "pipeline", "queries", "reports"], cwd=ROOT,
                             capture_output=True, check=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(dest, filter="data")
    (dest / "queries").rename(dest / "pipeline" / "queries")
    (dest / "reports").rename(dest / "pipeline" / "templates")
    return dest


def build_sample(path: Path) -> str:
    from pipeline.api import ingest
    from pipeline.core.config import Config
    from pipeline.warehouse import connect

    truth = json.loads((ROOT / "sample_logs" / "expected.jsonc").read_text(encoding="utf-8"))
    con = connect(path)
    ingest(con, [str(ROOT / "sample_logs")], config=Config(), progress=False)
    con.close()
    return datetime.fromisoformat(truth["as_of"].replace("Z", "+00:00")).replace(tzinfo=None).isoformat()


def build_captures(path: Path) -> str:
    from pipeline.api import ingest
    from pipeline.core.config import Config
    from pipeline.warehouse import connect
    from tests.kit.captures import capture_index

    con = connect(path)
    ingest(con, [r["path"] for r in capture_index()], config=Config(), progress=False)
    con.close()
    return datetime(2100, 1, 1).isoformat()


def target(name: str, work: Path) -> tuple[Path, str]:
    """The input warehouse of a target (built here, or the benchmark's cached one) and its clock ('' = last event)."""
    if name.startswith("bench:"):
        src = ROOT / ".bench" / f"analyze-{int(name.split(':')[1])}.duckdb"
        if not src.exists():
            sys.exit(f"{src}: missing; build it with tests/bench_analyze.py --events {name.split(':')[1]}")
        return src, ""
    path = work / f"{name}.duckdb"
    as_of = {"sample": build_sample, "captures": build_captures}[name](path)
    return path, as_of


def analyze_copy(src: Path, dest: Path, as_of: str, pipeline_root: str) -> dict:
    shutil.copyfile(src, dest)
    proc = subprocess.run([sys.executable, "-c", CHILD, pipeline_root, str(dest), as_of], cwd=ROOT,
                          capture_output=True, text=True, check=False)
    for line in proc.stdout.splitlines():
        if line.startswith("COMPARE-RESULT "):
            return json.loads(line[len("COMPARE-RESULT "):])
    sys.exit(f"analyze of {dest} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")


def differences(befores: list[Path], after: Path) -> dict[str, dict[str, object]]:
    """Per table: rows before (first run) and after, whether the runs of REF agree, rows REF always wrote that
    are missing after (`missing`), and rows after that no run of REF wrote (`extra`); each cut to 5."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for i, path in enumerate(befores):
        con.execute(f"ATTACH '{path}' AS b{i} (READ_ONLY)")
    con.execute(f"ATTACH '{after}' AS a (READ_ONLY)")
    out: dict[str, dict[str, object]] = {}
    for table in TABLES:
        runs = [f"FROM b{i}.{table}" for i in range(len(befores))]
        always = " INTERSECT ALL ".join(runs)
        ever = " UNION ".join(runs)

        def rows(sql: str) -> list[tuple]:
            return con.execute(f"SELECT * FROM ({sql}) ORDER BY ALL").fetchall()

        varying = rows(f"({ever}) EXCEPT ({always})")
        out[table] = {
            "before": con.execute(f"SELECT count(*) FROM b0.{table}").fetchall()[0][0],
            "after": con.execute(f"SELECT count(*) FROM a.{table}").fetchall()[0][0],
            "varying": varying,
            "missing": rows(f"({always}) EXCEPT ALL FROM a.{table}"),
            "extra": rows(f"FROM a.{table} EXCEPT ({ever})"),
            "changed": rows(f"(FROM b0.{table} EXCEPT ALL FROM a.{table}) UNION ALL "
                            f"(FROM a.{table} EXCEPT ALL FROM b0.{table})"),
        }
    con.close()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before", default=None, help="commit to compare with (default: merge-base with main)")
    ap.add_argument("--targets", nargs="+", default=["sample", "captures", "bench:1000000"])
    ap.add_argument("--before-runs", type=int, default=3, help="times to run REF's analyze on each target")
    args = ap.parse_args()
    ref = args.before or subprocess.run(["git", "merge-base", "HEAD", "main"], cwd=ROOT, capture_output=True,
                                        text=True, check=True).stdout.strip()
    failed = False
    with tempfile.TemporaryDirectory(prefix="compare-analyze-") as tmp:
        work = Path(tmp)
        old = export(ref, work / "before")
        print(f"before: {ref} ({old / 'pipeline'}); after: this tree ({ROOT / 'pipeline'})")
        for name in args.targets:
            t = time.perf_counter()
            src, as_of = target(name, work)
            bs = [analyze_copy(src, work / f"{name}-before-{i}.duckdb", as_of, str(old))
                  for i in range(args.before_runs)]
            a = analyze_copy(src, work / f"{name}-after.duckdb", as_of, "")
            assert all(b["pipeline"].startswith(str(old)) for b in bs), bs
            assert a["pipeline"].startswith(str(ROOT)), a
            diff = differences([work / f"{name}-before-{i}.duckdb" for i in range(args.before_runs)],
                               work / f"{name}-after.duckdb")
            walls = ", ".join(f"{b['wall']:.2f}" for b in bs)
            print(f"\n{name}: analyze before {walls} s, {max(b['peak_mb'] for b in bs):,.0f} MB peak; "
                  f"after {a['wall']:.2f} s, {a['peak_mb']:,.0f} MB peak ({time.perf_counter() - t:.0f} s in all)")
            print(f"  before: {bs[0]['summary']}\n  after:  {a['summary']}")
            for table, d in diff.items():
                bad = d["missing"] or d["extra"]
                failed |= bool(bad)
                if not d["changed"]:
                    verdict = "identical"
                elif not bad:
                    verdict = (f"{len(d['changed']) // 2 or 1:,} row(s) differ from the first run before, only where "
                               f"the {args.before_runs} runs before disagree among themselves "
                               f"({len(d['varying']):,} varying rows); the rest identical")
                else:
                    verdict = f"DIFFERENT: {len(d['missing']):,} rows every run before wrote are missing, " \
                              f"{len(d['extra']):,} rows no run before wrote"
                print(f"  {table}: {d['before']:,} rows before, {d['after']:,} after: {verdict}")
                for label in ("missing", "extra", "varying"):
                    for row in d[label][:5]:
                        print(f"    {label}: {row}")
    print("\nresult: " + ("DIFFERENT" if failed else "identical on every target"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""Ingest benchmark: migrate-lens `ingest` against the DuckDB read_json + regexp floor.

Run from the repo root:

    .venv/bin/python tests/bench_ingest.py [--lines N] [--rss-scale] [--profile]

It generates (once, cached in `.bench/`) a deterministic corpus of N Kubernetes Fluent Bit `json_lines`
records of golang-migrate output, then measures on that file, in this process:

* floor   — DuckDB `read_json` (explicit columns) + `regexp_extract` of the APPLIED / FINISHED fields into a
            table of a fresh DuckDB file (what the issue calls the "DuckDB read_json + regexp floor");
* pyloop  — a hand-written Python loop, orjson + re, building a list of tuples (a second reference);
* ours    — `pipeline.ingest.ingest` into a fresh warehouse file, and the no-op re-run (everything skipped).

Peak RSS of each approach is measured in a separate child process (this script with the hidden
`--child APPROACH FILE` mode; the child prints its own VmHWM) so the numbers do not contaminate each other.
`--rss-scale` also writes a 10x corpus and prints our peak RSS at 1x and 10x side by side.

Timings are reported, never asserted: this always exits 0. It is not collected by pytest (no test_ prefix).
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BENCH = ROOT / ".bench"
GENERATOR_VERSION = 6  # 6: the kit's Fluent Bit records (RFC3339Nano trimmed as Go prints it, `µ` as \u00b5)
SEED = 20240514

from tests.kit.corpus import write_fluent_bit_corpus

# --------------------------------------------------------------------------------------------------------
# Corpus (tests/kit/corpus.py writes it)
# --------------------------------------------------------------------------------------------------------


def corpus(n_lines: int) -> Path:
    """The cached corpus of `n_lines` records, generated if missing or stale."""
    BENCH.mkdir(exist_ok=True)
    path = BENCH / f"fluentbit-{n_lines}.jsonl"
    meta_path = BENCH / f"fluentbit-{n_lines}.meta.json"
    want = {"lines": n_lines, "seed": SEED, "generator": GENERATOR_VERSION}
    if path.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if {k: meta.get(k) for k in want} == want and meta.get("bytes") == path.stat().st_size:
            print(f"corpus: reusing {path.relative_to(ROOT)} ({n_lines:,} lines, {path.stat().st_size / 1e6:,.0f} MB)")
            return path
    t = time.perf_counter()
    write_fluent_bit_corpus(path, n_lines, SEED)
    meta_path.write_text(json.dumps({**want, "bytes": path.stat().st_size}))
    print(f"corpus: wrote {path.relative_to(ROOT)} ({n_lines:,} lines, {path.stat().st_size / 1e6:,.0f} MB) "
          f"in {time.perf_counter() - t:.1f} s")
    return path


# --------------------------------------------------------------------------------------------------------
# Approaches
# --------------------------------------------------------------------------------------------------------

PREFIX_RE = r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d "
APPLIED_RE = r"^(\d+)/([ud]) (.*) \((\S+)\)$"
FINISHED_RE = r"^Finished (\d+)/([ud]) (.*) \(read (\S+), ran (\S+)\)$"

FLOOR_SQL = f"""
CREATE TABLE floor_lines AS
WITH src AS (
    SELECT time, log, kubernetes
    FROM read_json($path, format = 'newline_delimited', columns = {{
        'time': 'VARCHAR', 'log': 'VARCHAR',
        'kubernetes': 'STRUCT(pod_name VARCHAR, container_name VARCHAR, namespace_name VARCHAR)'
    }})
), s AS (
    SELECT time, log, kubernetes, regexp_replace(log, '{PREFIX_RE}', '') AS msg FROM src
)
SELECT
    try_cast(time AS TIMESTAMPTZ) AS ts,
    kubernetes.namespace_name AS namespace, kubernetes.pod_name AS pod, kubernetes.container_name AS container,
    log,
    regexp_extract(msg, '{APPLIED_RE}', ['v', 'd', 'name', 'dur']) AS applied,
    regexp_extract(msg, '{FINISHED_RE}', ['v', 'd', 'name', 'read', 'ran']) AS finished
FROM s
"""


# The least an ingest that keeps the contract's two tables must do (CONTRACT.md §3): every line into `log_lines`
# with its id, source, line number, time, stream and labels, every migrate line into `migrate_events` with
# its id, run and fields. Two statements and nothing else: no deduplication, redaction, rejects, per-source
# accounting, Docker/CRI piece joining, error blocks, own times or runs. It is not a floor for ingest (it
# skips what the contract asks ingest to do); it shows what share of the floor's speed is left after writing
# the two tables alone. Durations are cast from their text without unit conversion: the cost, not the value,
# is what it measures.
LEAST_SQL = ["""
CREATE TABLE log_lines AS
SELECT md5(concat_ws('|', filename, time, log)) AS line_id, filename AS source_uri,
       row_number() OVER (PARTITION BY filename) AS line_no, try_cast(time AS TIMESTAMPTZ) AS ts,
       concat_ws('/', kubernetes.namespace_name, kubernetes.pod_name, kubernetes.container_name) AS stream_key,
       coalesce(kubernetes.labels['env'], 'unknown') AS env,
       coalesce(kubernetes.labels['app'], 'unknown') AS service,
       coalesce(kubernetes.labels['db'], 'unknown') AS database, log AS message
FROM read_json($path, format = 'newline_delimited', filename = true, columns = {
    'time': 'VARCHAR', 'log': 'VARCHAR',
    'kubernetes': 'STRUCT(pod_name VARCHAR, container_name VARCHAR, namespace_name VARCHAR,
                          labels MAP(VARCHAR, VARCHAR))'
})
""", f"""
CREATE TABLE migrate_events AS
WITH s AS (
    SELECT *, regexp_replace(message, '{PREFIX_RE}', '') AS msg FROM log_lines
), x AS (
    SELECT *, regexp_extract(msg, '{APPLIED_RE}', ['v', 'd', 'name', 'dur']) AS a,
           regexp_extract(msg, '{FINISHED_RE}', ['v', 'd', 'name', 'read', 'ran']) AS f
    FROM s
)
SELECT md5(line_id || ':event') AS event_id, ts, md5(stream_key) AS run_id, env, service, database,
       CASE WHEN a.v <> '' OR f.v <> '' THEN 'applied' ELSE 'error' END AS kind,
       try_cast(coalesce(nullif(a.v, ''), f.v) AS BIGINT) AS version, coalesce(nullif(a.d, ''), f.d) AS direction,
       coalesce(nullif(a.name, ''), f.name) AS name,
       try_cast(rtrim(nullif(a.dur, ''), 'ms') AS DOUBLE) AS duration_ms,
       try_cast(rtrim(nullif(f.read, ''), 'ms') AS DOUBLE) AS read_ms,
       try_cast(rtrim(nullif(f.ran, ''), 'ms') AS DOUBLE) AS ran_ms, NULL::DOUBLE AS own_ms,
       NULL::VARCHAR AS error_class, CASE WHEN msg LIKE 'error:%' THEN msg END AS error_text
FROM x
WHERE a.v <> '' OR f.v <> '' OR msg LIKE 'error:%'
"""]


def run_floor(path: Path, work: Path) -> dict:
    import duckdb

    db = work / "floor.duckdb"
    db.unlink(missing_ok=True)
    t = time.perf_counter()
    con = duckdb.connect(str(db))
    con.execute(FLOOR_SQL, {"path": str(path)})
    rows = con.execute("SELECT count(*), count(*) FILTER (WHERE applied.v <> '' OR finished.v <> '') "
                       "FROM floor_lines").fetchone()
    con.close()
    wall = time.perf_counter() - t
    db.unlink(missing_ok=True)
    return {"wall": wall, "rows": rows[0], "note": f"{rows[1]:,} APPLIED/FINISHED"}


def run_pyloop(path: Path, work: Path) -> dict:
    import orjson

    prefix = re.compile(PREFIX_RE)
    applied = re.compile(APPLIED_RE)
    finished = re.compile(FINISHED_RE)
    loads = orjson.loads
    t = time.perf_counter()
    out = []
    append = out.append
    hits = 0
    with path.open("rb") as f:
        for line in f:
            rec = loads(line)
            log = rec.get("log") or ""
            k = rec.get("kubernetes") or {}
            m = prefix.match(log)
            msg = log[m.end():] if m else log
            a = applied.match(msg)
            fi = None if a else finished.match(msg)
            hits += a is not None or fi is not None
            append((rec.get("time"), k.get("namespace_name"), k.get("pod_name"), k.get("container_name"), log,
                    a.groups() if a else None, fi.groups() if fi else None))
    wall = time.perf_counter() - t
    return {"wall": wall, "rows": len(out), "note": f"{hits:,} APPLIED/FINISHED", "_keep": out}


class TimedConnection:
    """Wraps a DuckDB connection and accounts the time of every execute() by statement."""

    def __init__(self, con) -> None:
        self._con = con
        self.stats: dict[str, list] = defaultdict(lambda: [0, 0.0])

    @staticmethod
    def label(sql: str) -> str:
        for ln in sql.splitlines():
            s = ln.strip()
            if s and not s.startswith("--"):
                s = re.sub(r"\s+", " ", s)
                if s.startswith("CREATE OR REPLACE TEMP VIEW typed_batch"):
                    return "CREATE TEMP VIEW typed_batch (json_valid/json_type)"
                if s.startswith("WITH stripped AS"):
                    return "parse: a chunk's lines with their shapes (line_shapes.sql)"
                if s.startswith("WITH unglued AS"):
                    return "parse: what the error blocks say (error_heads.sql)"
                return s[:88]
        return sql.strip()[:88]

    def execute(self, sql, *args, **kwargs):
        t = time.perf_counter()
        try:
            return self._con.execute(sql, *args, **kwargs)
        finally:
            st = self.stats[self.label(sql)]
            st[0] += 1
            st[1] += time.perf_counter() - t

    def _timed(self, label: str, fn, *args, **kwargs):
        t = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            st = self.stats[label]
            st[0] += 1
            st[1] += time.perf_counter() - t

    def register(self, name, obj):
        return self._timed(f"con.register({name!r}, <Arrow table>)", self._con.register, name, obj)

    def unregister(self, name):
        return self._timed(f"con.unregister({name!r})", self._con.unregister, name)

    def sql(self, query, *args, **kwargs):
        """A relation runs when it is read: its `.pl()` is what is timed (parse reads its lines this way)."""
        relation, label, timed = self._con.sql(query, *args, **kwargs), self.label(query) + " .pl()", self._timed

        class Timed:
            def __getattr__(self, name):
                return getattr(relation, name)

            def pl(self):
                return timed(label, relation.pl)

        return Timed()

    def __getattr__(self, name):
        return getattr(self._con, name)


def run_ours(path: Path, work: Path, *, timed: bool = False, profile: bool = False) -> dict:
    from pipeline.api import ingest
    from pipeline.core.config import Config
    from pipeline.parse import events, runs  # noqa: F401  (imported before timing)
    from pipeline.warehouse import connect

    db = work / "ours.duckdb"
    for p in (db, db.with_suffix(".duckdb.wal")):
        p.unlink(missing_ok=True)
    config = Config()
    t = time.perf_counter()
    con = connect(db)
    t_connect = time.perf_counter() - t
    c = TimedConnection(con) if timed else con
    prof = None
    if profile:
        import cProfile

        prof = cProfile.Profile()
        prof.enable()
    t1 = time.perf_counter()
    try:
        result = ingest(c, [str(path)], config=config, progress=False)
    except Exception as e:  # noqa: BLE001  (a crash of ours is a finding: report it, keep going)
        t_ingest = time.perf_counter() - t1
        if prof:
            prof.disable()
        con.close()
        for p in (db, db.with_suffix(".duckdb.wal")):
            p.unlink(missing_ok=True)
        err = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        return {"wall": float("nan"), "rows": 0, "error": err, "failed_after": t_ingest,
                "stats": dict(c.stats) if timed else None, "_prof": prof}
    t_ingest = time.perf_counter() - t1
    if prof:
        prof.disable()
    t2 = time.perf_counter()
    con.close()
    t_close = time.perf_counter() - t2
    wall = time.perf_counter() - t
    # the no-op re-run, as the CLI does it: open the warehouse again, ingest the same file
    t3 = time.perf_counter()
    con = connect(db)
    again = ingest(con, [str(path)], config=config, progress=False)
    con.close()
    noop = time.perf_counter() - t3
    size_mb = db.stat().st_size / 1e6
    for p in (db, db.with_suffix(".duckdb.wal")):
        p.unlink(missing_ok=True)
    return {
        "wall": wall, "rows": result.lines, "connect": t_connect, "ingest": t_ingest, "close": t_close,
        "noop": noop, "noop_skipped": again.skipped, "summary": result.summary(), "db_mb": size_mb,
        "note": f"{result.stored:,} stored, {result.rejected:,} rejected, {result.events:,} events, "
                f"{result.runs:,} runs",
        "stats": dict(c.stats) if timed else None, "_prof": prof,
    }


APPROACHES = {"floor": run_floor, "pyloop": run_pyloop, "ours": run_ours}


def vm_hwm_kb() -> int:
    with open("/proc/self/status") as f:
        for ln in f:
            if ln.startswith("VmHWM:"):
                return int(ln.split()[1])
    return -1


def child_main(approach: str, path: str) -> None:
    work = BENCH / f"work-child-{os.getpid()}"
    work.mkdir(parents=True, exist_ok=True)
    try:
        res = APPROACHES[approach](Path(path), work)
        out = {"wall": res["wall"], "rows": res["rows"], "hwm_kb": vm_hwm_kb(), "error": res.get("error")}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("CHILD-RESULT " + json.dumps(out), flush=True)


def in_child(approach: str, path: Path) -> dict:
    """Run one approach in a fresh interpreter; its own VmHWM (peak RSS) and wall time."""
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", approach, str(path)],
                          check=False, capture_output=True, text=True, cwd=ROOT)
    for ln in proc.stdout.splitlines():
        if ln.startswith("CHILD-RESULT "):
            return json.loads(ln[len("CHILD-RESULT "):])
    print(f"  ! child {approach} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return {"wall": float("nan"), "rows": 0, "hwm_kb": -1}


# --------------------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------------------


def machine() -> str:
    import duckdb
    import polars
    import pyarrow

    cpu = "?"
    try:
        for ln in Path("/proc/cpuinfo").read_text().splitlines():
            if ln.startswith("model name"):
                cpu = ln.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = "?"
    try:
        for ln in Path("/proc/meminfo").read_text().splitlines():
            if ln.startswith("MemTotal:"):
                ram = f"{int(ln.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    nproc = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (f"machine: nproc={nproc}, cpu={cpu}, ram={ram}, {platform.system()} {platform.release()}\n"
            f"versions: python {platform.python_version()}, duckdb {duckdb.__version__}, "
            f"polars {polars.__version__}, pyarrow {pyarrow.__version__}")


def table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]

    def line(r: list[str]) -> str:
        return "| " + " | ".join(str(c).rjust(w) if i else str(c).ljust(w)
                                 for i, (c, w) in enumerate(zip(r, widths))) + " |"

    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] + [line(r) for r in rows])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lines", type=int, default=2_000_000, help="records in the corpus (default 2,000,000)")
    ap.add_argument("--rss-scale", action="store_true", help="also ingest a 10x corpus and compare peak RSS")
    ap.add_argument("--profile", action="store_true", help="also print a cProfile of our in-process ingest")
    ap.add_argument("--no-children", action="store_true", help="skip the peak-RSS child runs")
    ap.add_argument("--child", nargs=2, metavar=("APPROACH", "FILE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child_main(*args.child)
        return

    path = corpus(args.lines)
    size = path.stat().st_size
    n = args.lines
    work = BENCH / f"work-{os.getpid()}"
    work.mkdir(parents=True, exist_ok=True)
    try:
        t = time.perf_counter()
        with path.open("rb") as f:  # warm the page cache, and measure reading it
            while f.read(16 << 20):
                pass
        cat = time.perf_counter() - t

        results: dict[str, dict] = {}
        print("timing floor (DuckDB read_json + regexp_extract) ...", flush=True)
        results["floor"] = run_floor(path, work)
        print(f"  {results['floor']['wall']:.2f} s")
        print("timing pyloop (orjson + re, list of tuples) ...", flush=True)
        results["pyloop"] = run_pyloop(path, work)
        results["pyloop"].pop("_keep")
        gc.collect()
        print(f"  {results['pyloop']['wall']:.2f} s")
        print("timing ours (pipeline.ingest.ingest into a fresh warehouse) ...", flush=True)
        results["ours"] = run_ours(path, work, timed=True, profile=args.profile)
        print(f"  {results['ours']['wall']:.2f} s; no-op re-run {results['ours']['noop']:.2f} s")

        rss: dict[str, dict] = {}
        if not args.no_children:
            for name in ("floor", "pyloop", "ours"):
                print(f"peak RSS of {name} in a child process ...", flush=True)
                rss[name] = in_child(name, path)
        rss10 = None
        if args.rss_scale:
            path10 = corpus(n * 10)
            print("peak RSS of ours on the 10x corpus in a child process ...", flush=True)
            rss10 = in_child("ours", path10)
            size10 = path10.stat().st_size
    finally:
        shutil.rmtree(work, ignore_errors=True)

    floor = results["floor"]["wall"]
    labels = {
        "floor": "DuckDB read_json + regexp_extract (floor)",
        "pyloop": "Python loop, orjson + re",
        "ours": "migrate-lens ingest",
    }

    def mb(kb: int) -> str:
        return f"{kb / 1024:,.0f}" if kb and kb > 0 else "–"

    def rate(count: float, wall: float, fmt: str = ",.0f") -> str:
        return format(count / wall, fmt) if not math.isnan(wall) and wall > 0 else "–"

    rows = [["read file from page cache", f"{cat:.2f}", rate(n, cat), rate(size / 1e6, cat), "–",
             rate(floor, cat, ".2f")]]
    for name in ("floor", "pyloop", "ours"):
        res = results[name]
        w = res["wall"]
        peak = rss.get(name, {})
        rows.append([labels[name] + (" — CRASHED" if res.get("error") else ""),
                     f"{w:.2f}" if not math.isnan(w) else f"failed after {res.get('failed_after', 0):.2f}",
                     rate(n, w), rate(size / 1e6, w),
                     mb(peak.get("hwm_kb", -1)) + (" (crashed)" if peak.get("error") else ""), rate(floor, w, ".2f")])
    o = results["ours"]
    if not o.get("error"):
        rows.append(["migrate-lens ingest, no-op re-run", f"{o['noop']:.2f}", "–", "–", "–", "–"])

    print()
    print(f"=== ingest benchmark: {n:,} Fluent Bit json_lines records, {size / 1e6:,.1f} MB "
          f"({size / n:.0f} B/record), {path.relative_to(ROOT)} ===")
    print(machine())
    print()
    print(table(rows, ["approach", "wall s", "lines/s", "MB/s", "peak RSS MB", "vs floor"]))
    print()
    print("vs floor = floor wall / approach wall (throughput relative to the floor; 1.00 = as fast as the floor).")
    print("floor and ours include writing their DuckDB file and closing it; pyloop only builds the list in memory.")
    print(f"floor: {results['floor']['rows']:,} rows, {results['floor']['note']}; "
          f"pyloop: {results['pyloop']['rows']:,} rows, {results['pyloop']['note']}")
    if o.get("error"):
        print(f"ours CRASHED after {o['failed_after']:.2f} s: {o['error']}")
    else:
        print(f"ours: {o['note']}; connect {o['connect']:.2f} s + ingest {o['ingest']:.2f} s + close "
              f"{o['close']:.2f} s; warehouse {o['db_mb']:,.0f} MB")
        print(f"ours no-op re-run (connect + ingest, {o['noop_skipped']} source skipped): {o['noop']:.2f} s")
    if rss:
        print("child runs (wall s, peak RSS MB): " + ", ".join(
            f"{k} {v['wall']:.2f} s / {mb(v['hwm_kb'])} MB" + (f" [{v['error']}]" if v.get("error") else "")
            for k, v in rss.items()))
    if rss10 is not None:
        one = rss.get("ours") or in_child("ours", path)
        print()
        print("peak RSS of migrate-lens ingest, 1x vs 10x corpus (each in its own child process):")
        print(table([
            ["1x", f"{n:,}", f"{size / 1e6:,.0f}", f"{one['wall']:.2f}", rate(n, one["wall"]), mb(one["hwm_kb"]),
             one.get("error") or ""],
            ["10x", f"{n * 10:,}", f"{size10 / 1e6:,.0f}", f"{rss10['wall']:.2f}", rate(n * 10, rss10["wall"]),
             mb(rss10["hwm_kb"]), rss10.get("error") or ""],
        ], ["corpus", "lines", "MB", "wall s", "lines/s", "peak RSS MB", "error"]))
        if one["hwm_kb"] > 0 and rss10["hwm_kb"] > 0:
            print(f"10x / 1x peak RSS: {rss10['hwm_kb'] / one['hwm_kb']:.2f}")

    stats = o.get("stats")
    if stats:
        spent = o.get("ingest", o.get("failed_after", 0.0))
        total_sql = sum(s[1] for s in stats.values())
        print()
        print(f"where our ingest's {spent:.2f} s go (time inside con.execute/register and relations read by .pl(), by statement; "
              f"{spent - total_sql:.2f} s outside SQL: reading, splitting, Arrow, Python):")
        srt = sorted(stats.items(), key=lambda kv: -kv[1][1])
        print(table([[k, f"{c}", f"{s:.2f}", f"{100 * s / spent:.1f}"] for k, (c, s) in srt[:20]],
                    ["statement", "calls", "s", "% of ingest"]))
    prof = o.get("_prof")
    if prof is not None:
        import io
        import pstats

        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(25)
        print()
        print(buf.getvalue())


if __name__ == "__main__":
    main()

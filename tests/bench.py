"""One benchmark table for every shape of input: migrate-lens against a floor measured in the same run.

Run from the repo root (`make bench`, `make bench-quick`):

    .venv/bin/python tests/bench.py [--quick] [--cases large-file,small-files,...] [--bench-dir DIR]

Cases (all by default; `--quick` shrinks every size for a smoke run of a few minutes):

* `large-file`        one Fluent Bit file of 2 M records (tests/kit/corpus.py)
* `pod-runs`          3 M records of short pod runs, one migrate process per pod, in 30 node files
* `small-files`       5,000 pod logs of ~30 records, one file each (tests/kit/pods.py)
* `small-files-rerun` the same 5,000 files again, unchanged
* `analyze`           analyze at 1 M and 10 M events (the warehouse tests/bench_analyze.py generates)
* `report`            the weekly review of the largest analyzed warehouse
* `weekly-run`        `run` (ingest, analyze, report, alert) of week 7 of a generated fleet onto weeks 1-6
* `lint`              `migrate-lens lint` of a generated 700-file folder vs squawk and a bare pglast parse
                      loop (tests/bench_lint.py)
* `storage`           bytes per raw line and per run in that fleet's warehouse, before and after `prune`,
                      extrapolated to a year of a 1,000-service fleet
* `verify`            `verify` of a generated sound folder of 300 versions on the throwaway PostgreSQL
                      (tests/bench_verify.py); floor: every up applied once on the same kind of cluster

Each side of each case runs in a fresh child process (tests/bench_jobs.py) that reports its wall time (the
work only: interpreter start and imports are not in it) and its own peak RSS (VmHWM). Ours is the public API
(`pipeline.api.Lens`), as the CLI calls it. Generated inputs are cached under `.bench/`. The table reports
ratios; nothing here passes or fails, and it always exits 0. Not collected by pytest.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import sys
import textwrap
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import bench_storage
from tests.bench_ingest import machine, table
from tests.bench_jobs import child
from tests.kit import pods
from tests.kit.corpus import write_fluent_bit_corpus

KIT_VERSION = 1  # bump when tests/kit/pods.py changes what it writes: cached corpora are regenerated
SIZES = {
    "full": {"large_lines": 2_000_000, "pod_lines": 3_000_000, "node_files": 30, "small_files": 5000,
             "events": [1_000_000, 10_000_000], "tenants": 200, "weeks": 7, "verify_versions": 300},
    "quick": {"large_lines": 200_000, "pod_lines": 300_000, "node_files": 30, "small_files": 500,
              "events": [100_000], "tenants": 20, "weeks": 7, "verify_versions": 30},
}
CASES = ["large-file", "pod-runs", "small-files", "small-files-rerun", "analyze", "report", "weekly-run",
         "storage", "lint", "verify"]
FLEET_MONDAY = datetime(2026, 9, 28)  # the weekly fleet's first Monday (2026-W40)
STORAGE_KEEP_DAYS = 7  # prune of the 7-week warehouse: the last week's raw lines stay


# ------------------------------------------------------------------------------------------------- the cases

Row = list[str]


def _mb(kb: int) -> str:
    return f"{kb / 1024:,.0f}" if kb and kb > 0 else "–"


def _s(res: dict[str, Any]) -> str:
    return "CRASHED" if res.get("error") else f"{res['wall']:.2f}"


def _count(n: int) -> str:
    """1,000,000 -> 1M, 100,000 -> 100k: a case's size in its name."""
    for div, unit in ((1_000_000, "M"), (1_000, "k")):
        if n >= div and n % div == 0:
            return f"{n // div}{unit}"
    return f"{n:,}"


def _du(path: Path) -> tuple[int, int]:
    """(files, bytes) of a file or a folder."""
    if path.is_file():
        return 1, path.stat().st_size
    sizes = [p.stat().st_size for p in path.rglob("*") if p.is_file()]
    return len(sizes), sum(sizes)


def _warm(path: Path) -> None:
    """Read the input once so both sides start from the page cache."""
    for p in [path] if path.is_file() else sorted(path.rglob("*.jsonl")):
        with p.open("rb") as f:
            while f.read(16 << 20):
                pass


def _weekly_clock(weeks: int) -> str:
    """When the weekly job runs after `weeks` weeks of the fleet: Monday, 06:00."""
    return (FLEET_MONDAY + timedelta(weeks=weeks, hours=6)).isoformat()


def _pipeline_hash() -> str:
    """The pipeline's code: a cached warehouse built by other code is built again."""
    h = hashlib.sha256()
    for p in sorted((ROOT / "pipeline").rglob("*")):
        if p.is_file() and p.suffix in {".py", ".sql", ".toml", ".html", ".j2", ".css", ".js"}:
            h.update(p.relative_to(ROOT).as_posix().encode() + p.read_bytes())
    return h.hexdigest()[:12]


class Bench:
    def __init__(self, bench_dir: Path, quick: bool) -> None:
        self.dir = bench_dir
        self.size = SIZES["quick" if quick else "full"]
        self.work = bench_dir / f"work-{os.getpid()}"
        self.work.mkdir(parents=True, exist_ok=True)
        self.rows: list[Row] = []
        self.notes: list[str] = []
        self.sizes_text: list[str] = []
        self.state: dict[str, Any] = {}

    def corpus(self, name: str, params: dict[str, Any], write: Callable[[Path], int]
               ) -> tuple[Path, dict[str, Any]]:
        """The cached input `name` (a file or a folder), by `write(path) -> records` if missing or stale."""
        path, meta_path = self.dir / name, self.dir / f"{name}.meta.json"
        want = {**params, "kit": KIT_VERSION}
        if path.exists() and meta_path.exists():
            meta = json.loads(meta_path.read_text())
            # what was asked for, not what was written (a generator may write a few records fewer)
            if meta.get("params") == want:
                return path, meta
        tmp = self.dir / f"tmp-{name}"
        for p in (path, tmp):
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
        print(f"generating {name} ...", flush=True)
        t = time.perf_counter()
        lines = write(tmp)
        tmp.replace(path)
        files, size = _du(path)
        meta = {**want, "lines": lines, "files": files, "bytes": size, "params": want}
        meta_path.write_text(json.dumps(meta))
        took = time.perf_counter() - t
        print(f"  {lines:,} records in {files:,} files, {size / 1e6:,.0f} MB, {took:.0f} s")
        return path, meta

    def row(self, case: str, what: str, ours: dict[str, Any], floor_name: str, floor: dict[str, Any], *,
            sides: tuple[str, ...] = ("ours", "floor")) -> None:
        ratio = ours["wall"] / floor["wall"] if floor.get("wall", 0) > 0 else float("nan")
        shown = "–" if math.isnan(ratio) else f"{ratio:.1f}"
        self.rows.append([case, what, _s(ours), floor_name, _s(floor), shown, _mb(ours["hwm_kb"]),
                          _mb(floor["hwm_kb"])])
        for side, res in zip(sides, (ours, floor), strict=False):  # a floor noted already is not noted again
            said = (res.get("error") or res.get("note", "")).replace("\n", "; ")
            self.notes.append(f"{case}, {side}: {said} (process {res['proc']:.1f} s with interpreter start)")
        print(f"  {case}: ours {_s(ours)} s, floor {_s(floor)} s", flush=True)

    def ingest_case(self, case: str, path: Path, meta: dict[str, Any], glob: str, *, least: bool = False
                    ) -> dict[str, Any]:
        """Ours against the floor; with `least`, also the contract's two tables written in two statements and
        nothing else (tests/bench_ingest.py's LEAST_SQL) against the same floor, on its own row."""
        _warm(path)
        db = self.work / f"{case}.duckdb"
        ours = child("ingest", db=str(db), sources=[str(path)])
        floor = child("ingest_floor", db=str(self.work / "floor.duckdb"), glob=glob)
        (self.work / "floor.duckdb").unlink(missing_ok=True)
        files = f"{meta['files']:,} file{'s' if meta['files'] != 1 else ''}"
        self.row(case, f"{meta['lines']:,} lines, {files}, {meta['bytes'] / 1e6:,.0f} MB", ours,
                 "DuckDB read_json + regexp_extract", floor)
        if least:
            bare = child("ingest_least", db=str(self.work / "least.duckdb"), glob=glob)
            (self.work / "least.duckdb").unlink(missing_ok=True)
            self.row(f"{case}, least", "log_lines + migrate_events in 2 statements, nothing else", bare,
                     "(same floor)", floor, sides=("two statements",))
        return ours

    # -- ingest shapes ---------------------------------------------------------------------------------------
    def large_file(self) -> None:
        n = self.size["large_lines"]
        path, meta = self.corpus(f"fluentbit-{n}.jsonl", {"lines": n, "seed": 20240514},
                                 lambda p: write_fluent_bit_corpus(p, n, 20240514) or n)
        self.ingest_case("large-file", path, meta, str(path), least=True)
        (self.work / "large-file.duckdb").unlink(missing_ok=True)

    def pod_runs(self) -> None:
        n, files = self.size["pod_lines"], self.size["node_files"]
        path, meta = self.corpus(f"pod-runs-{n}", {"lines": n, "files": files, "seed": 7},
                                 lambda p: pods.write_node_files(p, n, files, 7))
        self.ingest_case("pod-runs", path, meta, str(path / "*.jsonl"), least=True)
        (self.work / "pod-runs.duckdb").unlink(missing_ok=True)

    def small_files_corpus(self) -> tuple[Path, dict[str, Any]]:
        n = self.size["small_files"]
        return self.corpus(f"pod-files-{n}", {"files": n, "seed": 11},
                           lambda p: pods.write_pod_files(p, n, 11))

    def small_files(self) -> None:
        path, meta = self.small_files_corpus()
        ours = self.ingest_case("small-files", path, meta, str(path / "**" / "*.jsonl"))
        if not ours.get("error"):
            self.state["small_db"] = self.work / "small-files.duckdb"

    def small_files_rerun(self) -> None:
        path, meta = self.small_files_corpus()
        db = self.state.get("small_db")
        if db is None:  # the first ingest, unmeasured
            db = self.work / "small-files.duckdb"
            child("ingest", db=str(db), sources=[str(path)])
        _warm(path)
        ours = child("ingest", db=str(db), sources=[str(path)])
        floor = child("stat_floor", folder=str(path))
        skipped = f"{ours['skipped']:,}" if "skipped" in ours else "?"
        self.row("small-files-rerun", f"the same {meta['files']:,} files, unchanged: {skipped} skipped", ours,
                 "list + stat every file", floor)

    # -- analyze and report ----------------------------------------------------------------------------------
    def analyze_warehouse(self, n: int) -> tuple[Path, str, dict[str, Any]]:
        """bench_analyze's generated warehouse of `n` events (cached in the bench folder) and its clock."""
        import duckdb

        from tests import bench_analyze

        saved = bench_analyze.BENCH, bench_analyze.ROOT
        # warehouse() caches in its module's BENCH and prints paths relative to its ROOT
        bench_analyze.BENCH = self.dir
        if not self.dir.is_relative_to(bench_analyze.ROOT):
            bench_analyze.ROOT = Path(self.dir.anchor)
        try:
            path, meta = bench_analyze.warehouse(n, False)
        finally:
            bench_analyze.BENCH, bench_analyze.ROOT = saved
        con = duckdb.connect(str(path), read_only=True)
        as_of = con.execute("SELECT max(ts) FROM migrate_events").fetchall()[0][0]
        meta = {**meta, "runs": con.execute("SELECT count(*) FROM runs").fetchall()[0][0]}
        con.close()
        return path, as_of.isoformat(), meta

    def analyze(self) -> None:
        for n in self.size["events"]:
            db, as_of, meta = self.analyze_warehouse(n)
            ours = child("analyze", db=str(db), as_of=as_of)
            floor = child("analyze_floor", db=str(db), as_of=as_of)
            self.row(f"analyze {_count(n)}", f"{meta.get('events', n):,} events, {meta['runs']:,} runs", ours,
                     "DuckDB rolling median + q25 of own_ms", floor)
            if not ours.get("error"):
                self.state["analyzed"] = (db, as_of, meta)

    def report(self) -> None:
        if "analyzed" not in self.state:  # analyze first, unmeasured
            n = self.size["events"][-1]
            db, as_of, meta = self.analyze_warehouse(n)
            child("analyze", db=str(db), as_of=as_of)
            self.state["analyzed"] = (db, as_of, meta)
        db, as_of, meta = self.state["analyzed"]
        ours = child("report", db=str(db), as_of=as_of, out=str(self.work / "report"))
        floor = child("report_floor", db=str(db), as_of=as_of)
        self.row("report", f"the last week of the {_count(meta.get('events', 0))}-event warehouse", ours,
                 "DuckDB week summary + findings", floor)

    # -- the weekly job --------------------------------------------------------------------------------------
    def fleet(self) -> tuple[Path, dict[str, Any]]:
        tenants, weeks = self.size["tenants"], self.size["weeks"]

        def write(p: Path) -> int:
            n = pods.write_weekly_fleet(p, weeks, tenants, 5, monday=FLEET_MONDAY)
            self.state["week_lines"] = {w.name: sum(sum(1 for _ in f.open("rb")) for f in w.rglob("*.jsonl"))
                                        for w in sorted(p.iterdir())}
            return n

        params = {"tenants": tenants, "weeks": weeks, "seed": 5}
        path, meta = self.corpus(f"fleet-{weeks}w-{tenants}t", params, write)
        if "week_lines" in self.state:
            meta = {**meta, "week_lines": self.state.pop("week_lines")}
            (self.dir / f"{path.name}.meta.json").write_text(json.dumps(meta))
        return path, meta

    def weekly_base(self, path: Path, weeks: list[Path]) -> Path:
        """Weeks 1..N-1 after their own weekly run, cached per pipeline code (a previous job's warehouse)."""
        base = self.dir / f"{path.name}-base-{_pipeline_hash()}.duckdb"
        if not base.exists():
            for old in self.dir.glob(f"{path.name}-base-*.duckdb"):
                old.unlink()
            print(f"building {base.name} (weeks 1-{len(weeks) - 1}) ...", flush=True)
            tmp = self.work / "base.duckdb"
            res = child("run", db=str(tmp), sources=[str(w) for w in weeks[:-1]],
                        out=str(self.work / "base-out"), as_of=_weekly_clock(len(weeks) - 1))
            if res.get("error"):
                raise RuntimeError(f"bench: the weekly base warehouse could not be built: {res['error']}")
            shutil.move(tmp, base)
        return base

    def weekly_run(self) -> None:
        path, meta = self.fleet()
        weeks = sorted(p for p in path.iterdir() if p.is_dir())
        base = self.weekly_base(path, weeks)
        db = self.work / "weekly.duckdb"
        shutil.copy(base, db)
        as_of = _weekly_clock(len(weeks))
        _warm(weeks[-1])
        ours = child("run", db=str(db), sources=[str(path)], out=str(self.work / "weekly-out"), as_of=as_of)
        floor = child("run_floor", db=str(self.work / "floor.duckdb"), glob=str(weeks[-1] / "**" / "*.jsonl"),
                      base=str(db), as_of=as_of)
        (self.work / "floor.duckdb").unlink(missing_ok=True)
        lines = meta.get("week_lines", {})
        new = lines.get(weeks[-1].name, 0)
        files = len(list(weeks[-1].rglob("*.jsonl")))
        self.row("weekly-run", f"week {len(weeks)}: {new:,} lines in {files} files, "
                 f"onto weeks 1-{len(weeks) - 1} ({sum(lines.values()) - new:,} lines)", ours,
                 "read_json + regexp_extract (week) + rolling median", floor)
        if not ours.get("error"):
            self.state["weekly_db"] = (db, as_of, meta)

    # -- storage ---------------------------------------------------------------------------------------------
    def storage(self) -> None:
        if "weekly_db" not in self.state:  # the weekly run, unmeasured
            path, meta = self.fleet()
            weeks = sorted(p for p in path.iterdir() if p.is_dir())
            db = self.work / "weekly.duckdb"
            shutil.copy(self.weekly_base(path, weeks), db)
            as_of = _weekly_clock(len(weeks))
            child("run", db=str(db), sources=[str(path)], out=str(self.work / "weekly-out"), as_of=as_of)
            self.state["weekly_db"] = (db, as_of, meta)
        db, as_of, meta = self.state["weekly_db"]
        lines, self.state["sizes"] = bench_storage.measure(db, self.work, as_of=as_of,
                                                           keep_days=STORAGE_KEEP_DAYS, source=meta)
        self.sizes_text += lines


    # -- lint ------------------------------------------------------------------------------------------------
    def lint(self) -> None:
        from tests import bench_lint

        m = bench_lint.measure(700 if self.size is SIZES["full"] else 200, repeat=3)
        squawk = m["squawk_process"]
        none = {"wall": float("nan"), "hwm_kb": 0, "proc": float("nan"), "error": "squawk not installed"}
        ours = {"wall": m["ours_process"], "hwm_kb": 0, "proc": m["ours_process"], "note": "whole command"}
        self.row("lint", f"{m['files']} migration files, {m['issues']} issues", ours, "squawk (whole command)",
                 {"wall": squawk, "hwm_kb": 0, "proc": squawk, "note": m["squawk_version"]} if squawk else none)
        self.notes.extend(bench_lint.report(m)[1:])
    # -- verify ----------------------------------------------------------------------------------------------
    def verify(self) -> None:
        from tests.bench_verify import write_folder

        n = self.size["verify_versions"]
        path, meta = self.corpus(f"verify-folder-{n}", {"versions": n}, lambda p: write_folder(p, n))
        ours = child("verify", folder=str(path))
        floor = child("verify_floor", folder=str(path))
        self.row("verify", f"{n} versions, {meta['files']} files (peak RSS: ours only, not the server's)", ours,
                 "every up applied once (migrate up)", floor)


# --------------------------------------------------------------------------------------------------- output

LEGEND = (
    "ours s / floor s: wall time of the work in its own child process (interpreter start and imports not "
    "counted; `process` below counts them); peak RSS is that process's VmHWM. ours ÷ floor: 2.0 = twice "
    "the floor's time. Floors: the least work that gives the answer, in DuckDB where it can. Ingest: "
    "read_json of the same files + regexp_extract of the APPLIED/FINISHED fields into a table of a new "
    "DuckDB file. 'least' rows are not ours: the contract's log_lines and migrate_events written from the "
    "same files in two statements and nothing else (no deduplication, redaction, rejects, error blocks, own "
    "times or runs), against the same floor: what writing the two tables alone costs, before any of "
    "the work ingest does on top of it. "
    "Re-run: list the files and stat each. Analyze: the median and lower quartile of own_ms "
    "over the 30 applications before each one, per (env, service, version, direction). Report: the week's "
    "run counts by (env, service, outcome) and its findings. Weekly run: the ingest floor on the week's "
    "files plus the analyze floor on all events. Verify: every up applied once on the same kind of throwaway "
    "PostgreSQL cluster, cluster start included on both sides (ours runs six checks per version on database "
    "copies). Ours is pipeline.api.Lens (ingest, analyze, report, run) or pipeline.api.verify, as the CLI "
    "calls them."
)
HEADER = ["case", "input", "ours s", "floor", "floor s", "ours ÷ floor", "ours peak RSS MB",
          "floor peak RSS MB"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes: a smoke run of a few minutes")
    ap.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, of: {', '.join(CASES)}")
    ap.add_argument("--bench-dir", type=Path, default=ROOT / ".bench", help="generated inputs are kept here")
    ap.add_argument("--year-runs", type=float, default=30.0, help="runs per service per week, extrapolated")
    ap.add_argument("--year-lines", type=float, help="raw lines per run in it (default: the fleet's)")
    ap.add_argument("--year-keep-days", type=float, default=90.0, help="keep_raw_days in it")
    args = ap.parse_args()
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    for c in cases:
        if c not in CASES:
            ap.error(f"--cases: no case {c!r} (choose from {', '.join(CASES)})")
    from tests.bench_analyze import pipeline_revision

    bench = Bench(args.bench_dir.resolve(), args.quick)
    load0 = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    t0 = time.perf_counter()
    try:
        for case in (c for c in CASES if c in cases):
            print(f"case {case} ...", flush=True)
            try:
                getattr(bench, case.replace("-", "_"))()
            except Exception as e:  # noqa: BLE001  (one case's trouble must not hide the others' results)
                bench.notes.append(f"{case}: could not run: {type(e).__name__}: {e}")
                print(f"  ! {case}: {type(e).__name__}: {e}", flush=True)
        if "sizes" in bench.state:
            bench.sizes_text += [""] + bench_storage.year(
                bench.state["sizes"], services=1000, runs_per_week=args.year_runs,
                lines_per_run=args.year_lines, keep_days=args.year_keep_days)
    finally:
        shutil.rmtree(bench.work, ignore_errors=True)
    took = time.perf_counter() - t0
    load1 = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    print()
    print(f"=== migrate-lens benchmark, {'quick' if args.quick else 'full'} sizes, "
          f"{datetime.now().astimezone():%Y-%m-%d %H:%M %Z}, {took / 60:.1f} min ===")
    print(machine())
    print(f"pipeline at {pipeline_revision()}; load average {load0} before, {load1} after")
    print()
    print(table(bench.rows, HEADER))
    print()
    print(textwrap.fill(LEGEND, 110))
    print()
    for note in bench.notes:
        print(f"- {note}")
    if bench.sizes_text:
        print()
        print("=== warehouse size: measured per-row sizes, and a year extrapolated from them ===")
        print("\n".join(bench.sizes_text))


if __name__ == "__main__":
    main()

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
import random
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
GENERATOR_VERSION = 5
SEED = 20240514

# --------------------------------------------------------------------------------------------------------
# Corpus
# --------------------------------------------------------------------------------------------------------

SERVICES = [
    # (service, namespace, env, timestamp versions?)
    ("orders", "shop", "prod", False), ("billing", "billing", "prod", True), ("auth", "identity", "prod", False),
    ("catalog", "shop", "staging", False), ("shipping", "logistics", "prod", True),
    ("inventory", "logistics", "staging", False), ("payments", "billing", "prod", True),
    ("users", "identity", "dev", False), ("notifications", "comms", "prod", False),
    ("search", "shop", "prod", True), ("reporting", "analytics", "prod", False), ("ledger", "billing", "dev", True),
]
IMAGES = ["docker.io/migrate/migrate:v4.17.1", "docker.io/migrate/migrate:v4.18.3", "docker.io/migrate/migrate:v4.19.1",
          "docker.io/migrate/migrate:v4.15.2"]
VERBS = ["create", "add", "drop", "alter", "backfill", "rename", "index", "partition", "seed", "widen"]
NOUNS = ["users", "orders", "order_items", "invoices", "payments", "accounts", "sessions", "audit_log", "products",
         "prices", "shipments", "addresses", "tokens", "events", "refunds", "ledger_entries", "coupons", "carts"]
SUFFIX = ["table", "index", "column", "fk", "constraint", "view", "trigger", "defaults", "", "", ""]
FAILURES = [
    # (message after "migration failed: ", sql lines, details)
    ('syntax error at or near ")" (column 1) in line 5', [
        "CREATE TABLE {t} (", "  id bigserial PRIMARY KEY,", "  user_id bigint NOT NULL REFERENCES users(id),",
        "  total numeric(12,2) NOT NULL,", ");", ""], 'pq: syntax error at or near ")"'),
    ('relation "{t}_user_idx" already exists in line 0', [
        "CREATE INDEX {t}_user_idx ON {t} (user_id);", ""], 'pq: relation "{t}_user_idx" already exists'),
    ('column "customer_id" does not exist in line 3', [
        "ALTER TABLE {t}", "  ADD CONSTRAINT {t}_customer_fk", "  FOREIGN KEY (customer_id) REFERENCES customers(id);",
        ""], 'pq: column "customer_id" does not exist'),
    ('could not create unique index "{t}_email_key", Key (email)=(jane@example.com) is duplicated. in line 0', [
        "ALTER TABLE {t} ADD CONSTRAINT {t}_email_key UNIQUE (email);", ""],
     'pq: could not create unique index "{t}_email_key"'),
    ("CREATE INDEX CONCURRENTLY cannot run inside a transaction block in line 0", [
        "CREATE INDEX CONCURRENTLY {t}_created_idx ON {t} (created_at);", ""],
     "pq: CREATE INDEX CONCURRENTLY cannot run inside a transaction block"),
    ("canceling statement due to lock timeout in line 1", [
        "SET lock_timeout = '5s';", "ALTER TABLE {t} ADD COLUMN archived_at timestamptz;",
        "UPDATE {t} SET archived_at = now() WHERE status = 'archived';", ""],
     "pq: canceling statement due to lock timeout"),
]


def _lower(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(n))


def _hex(rng: random.Random, nbits: int) -> str:
    return f"{rng.getrandbits(nbits):0{nbits // 4}x}"


def go_duration(ns: int) -> str:
    """Go's time.Duration.String() for a positive duration."""
    if ns <= 0:
        return "0s"
    if ns < 1_000:
        return f"{ns}ns"
    if ns < 1_000_000:
        return f"{ns // 1000}.{ns % 1000:03d}".rstrip("0").rstrip(".") + "µs"
    if ns < 1_000_000_000:
        return f"{ns // 1_000_000}.{ns % 1_000_000:06d}".rstrip("0").rstrip(".") + "ms"
    minutes, rest = divmod(ns, 60_000_000_000)
    secs = f"{rest // 1_000_000_000}.{rest % 1_000_000_000:09d}".rstrip("0").rstrip(".") + "s"
    return f"{minutes}m{secs}" if minutes else secs


class _Clock:
    """Cached second-resolution renderings (seconds repeat a lot: much cheaper than strftime per line)."""

    def __init__(self) -> None:
        self.iso: dict[int, str] = {}
        self.verbose: dict[int, str] = {}

    def rfc3339(self, ns: int) -> str:
        s, frac = divmod(ns, 1_000_000_000)
        head = self.iso.get(s)
        if head is None:
            head = self.iso[s] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(s))
        return f"{head}.{frac:09d}Z"

    def prefix(self, ns: int) -> str:
        s = ns // 1_000_000_000
        p = self.verbose.get(s)
        if p is None:
            p = self.verbose[s] = time.strftime("%Y/%m/%d %H:%M:%S ", time.gmtime(s))
        return p


def _own_ns(rng: random.Random) -> int:
    """A script's own execution time: mostly milliseconds, sometimes seconds, rarely minutes."""
    if rng.random() < 0.01:
        return int(rng.uniform(20, 400) * 1e9)
    return max(200_000, int(rng.lognormvariate(16.5, 1.3)))  # median ~15 ms


def _pod_lines(rng: random.Random, clock: _Clock, t0: int, svc: tuple, names: list[str]) -> list[tuple[int, int, str]]:
    """One migrate run in one pod: (ns, container 0=migrate 1=istio-proxy, text) records."""
    ts_versions = svc[3]
    verbose = rng.random() < 0.4
    kind = rng.choices(["up", "fail", "nochange", "dirty"], weights=[72, 10, 12, 6])[0]
    out: list[tuple[int, int, str]] = []
    t = t0

    def emit(text: str, at: int, prefixed: bool = True, container: int = 0) -> None:
        out.append((at, container, (clock.prefix(at) + text) if (verbose and prefixed) else text))

    def version(i: int) -> int:
        # timestamp versions (`migrate create -format 20060102150405`) about a day and a half apart
        return int(time.strftime("%Y%m%d%H%M%S", time.gmtime(1_672_531_200 + i * 131_357))) if ts_versions else i

    start_v = rng.randint(0, 300)
    if kind == "nochange":
        t += rng.randint(20_000_000, 90_000_000)
        emit("no change", t)
        if verbose:
            emit(f"Finished after {go_duration(t - t0 - rng.randint(5_000_000, 15_000_000))}", t + 40_000)
            emit("Closing source and database", t + 90_000)
        return out
    if kind == "dirty":
        t += rng.randint(20_000_000, 90_000_000)
        emit(f"error: Dirty database version {version(start_v)}. Fix and force version.", t)
        return out

    k = rng.randint(6, 19) if verbose else rng.randint(20, 60)
    if kind == "fail":
        k = max(2, k - rng.randint(1, 4))
    t += rng.randint(20_000_000, 90_000_000)  # connect + ensureVersionTable
    start = t
    steps = [(version(start_v + 1 + i), names[(start_v + i) % len(names)]) for i in range(k)]
    n_ok = k - 1 if kind == "fail" else k
    buffered_at: list[int] = [0] * k
    finished: list[int] = []
    for i in range(min(k, 10)):
        buffered_at[i] = t + i * 30_000
        if verbose:
            emit(f"Start buffering {steps[i][0]}/u {steps[i][1]}", buffered_at[i])
    for i in range(n_ok + (kind == "fail")):
        v, name = steps[i]
        exec_at = finished[-1] + 100_000 if finished else start + 400_000
        if verbose:
            emit(f"Read and execute {v}/u {name}", exec_at)
        read_done = exec_at + rng.randint(50_000, 500_000)
        if kind == "fail" and i == n_ok:
            fail_at = read_done + _own_ns(rng)
            msg, sql, details = rng.choice(FAILURES)
            table = rng.choice(NOUNS)
            emit(f"error: migration failed: {msg.format(t=table)}: {sql[0].format(t=table)}", fail_at)
            body = [s.format(t=table) for s in sql[1:]]
            for j, s in enumerate(body[:-1]):
                emit(s, fail_at + (j + 1) * 3_000, prefixed=False)
            emit(f" (details: {details.format(t=table)})", fail_at + len(body) * 3_000, prefixed=False)
            break
        done = read_done + _own_ns(rng)
        finished.append(done)
        if verbose:
            emit(f"Finished {v}/u {name} (read {go_duration(read_done - buffered_at[i])}, ran "
                 f"{go_duration(done - read_done)})", done + 60_000)
        else:
            emit(f"{v}/u {name} ({go_duration(done - buffered_at[i])})", done + 60_000)
        if i + 10 < k:
            buffered_at[i + 10] = done + 10_000
            if verbose:
                emit(f"Start buffering {steps[i + 10][0]}/u {steps[i + 10][1]}", done + 70_000)
    if kind == "up" and verbose:
        end = finished[-1] + 200_000
        emit(f"Finished after {go_duration(end - start)}", end)
        emit("Closing source and database", end + 50_000)
    return out


def _noise(rng: random.Random, clock: _Clock, svc: tuple, t0: int, t1: int, count: int) -> list[tuple[int, int, str]]:
    """Non-migrate lines: the entrypoint script before migrate, and the istio-proxy sidecar meanwhile."""
    service, ns, _env, _ = svc
    out = []
    for _ in range(count):
        if rng.random() < 0.5:
            at = t0 - rng.randint(100_000_000, 3_000_000_000)
            text = rng.choice([
                f"Waiting for postgres at {service}-db.{ns}.svc.cluster.local:5432 ...",
                "postgres is up - executing command",
                (f"+ migrate -path /migrations -database postgres://{service}:Pw{_hex(rng, 32)}@{service}-db:5432/"
                 f"{service}?sslmode=disable up"),
                "Running migrations from /migrations",
                f"nc: connect to {service}-db port 5432 (tcp) failed: Connection refused",
            ])
            out.append((at, 0, text))
        else:
            at = rng.randint(t0, max(t0 + 1, t1))
            iso = clock.rfc3339(at)[:-4] + "Z"
            text = rng.choice([
                f"{iso}\tinfo\tEnvoy proxy is ready",
                (f'[{iso[:-4]}Z] "GET /healthz/ready HTTP/1.1" 200 - via_upstream - "-" 0 0 {rng.randint(0, 4)} 0 '
                 f'"-" "kube-probe/1.28" "{_hex(rng, 32)}" "10.0.{rng.randint(0, 255)}.{rng.randint(1, 254)}:15021" '
                 '"127.0.0.1:15020" inbound|15021|| 127.0.0.6:0 - default'),
                (f"{iso}\twarn\txds\tcache\tfailed to fetch root cert: connection error: desc = \"transport: "
                 f"Error while dialing: dial tcp 10.96.{rng.randint(0, 255)}.{rng.randint(1, 254)}:15012: i/o timeout\""),
                f"{iso}\tinfo\tads\tADS: new connection for node:{service}-migrate-{_lower(rng, 5)}.{ns}-1",
            ])
            out.append((at, 1, text))
    return out


def _kube(rng: random.Random, svc: tuple, pod: str, container: str, image: str) -> str:
    service, ns, env, _ = svc
    return json.dumps({
        "pod_name": pod, "namespace_name": ns,
        "pod_id": f"{_hex(rng, 32)}-{_hex(rng, 16)}-{_hex(rng, 16)}-{_hex(rng, 16)}-{_hex(rng, 48)}",
        "labels": {"batch.kubernetes.io/job-name": f"{service}-migrate", "job-name": f"{service}-migrate",
                   "app": service, "env": env},
        "host": f"ip-10-0-{rng.randint(0, 63)}-{rng.randint(1, 254)}.ec2.internal",
        "container_name": container, "docker_id": _hex(rng, 256),
        "container_hash": f"{image.split(':')[0]}@sha256:{_hex(rng, 256)}", "container_image": image,
    }, separators=(",", ":"))


def generate(path: Path, n_lines: int) -> None:
    """Write `n_lines` Fluent Bit records (deterministic for a given N) to `path`, atomically."""
    rng = random.Random(SEED)
    clock = _Clock()
    names = {
        svc[0]: [f"{rng.choice(VERBS)}_{rng.choice(NOUNS)}" + (f"_{s}" if (s := rng.choice(SUFFIX)) else "")
                 for _ in range(400)]
        for svc in SERVICES
    }
    dumps = json.JSONEncoder(ensure_ascii=False).encode
    now = 1_715_644_800 * 1_000_000_000  # 2024-05-14T00:00:00Z
    written = 0
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        buf: list[str] = []
        size = 0
        while written < n_lines:
            # A handful of services roll out at about the same time: their pods' lines interleave.
            group: list[tuple[int, str]] = []
            room = n_lines - written
            for _ in range(rng.randint(3, 8)):
                svc = rng.choice(SERVICES)
                pod = f"{svc[0]}-migrate-{_lower(rng, 5)}"
                image = rng.choice(IMAGES)
                kubes = (_kube(rng, svc, pod, "migrate", image),
                         _kube(rng, svc, pod, "istio-proxy", "docker.io/istio/proxyv2:1.21.2"))
                t0 = now + rng.randint(0, 20_000_000_000)
                lines = _pod_lines(rng, clock, t0, svc, names[svc[0]])
                lines += _noise(rng, clock, svc, t0, lines[-1][0], int(len(lines) * 0.053 + rng.random()))
                if len(lines) > room:
                    # The corpus ends on whole migrate runs (a run cut in the middle is another benchmark);
                    # the last few records are sidecar lines of the last pod.
                    at = lines[-1][0]
                    lines = [(at + i * 1_000_000, 1, (f"{clock.rfc3339(at)[:-4]}Z\tinfo\tads\tADS: new connection for "
                                                      f"node:{pod}.{svc[1]}-{i}")) for i in range(room)]
                room -= len(lines)
                for at, container, text in lines:
                    group.append((at, (f'{{"date":{at / 1e9:.6f},"time":"{clock.rfc3339(at)}","stream":"stderr",'
                                       f'"_p":"F","log":{dumps(text)},"kubernetes":{kubes[container]}}}\n')))
                if room == 0:
                    break
            group.sort(key=lambda r: r[0])
            take = group
            written += len(take)
            for _, rec in take:
                buf.append(rec)
                size += len(rec)
            if size > (16 << 20):
                f.write("".join(buf))
                buf, size = [], 0
            now += rng.randint(60, 900) * 1_000_000_000
        f.write("".join(buf))
    tmp.replace(path)


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
    generate(path, n_lines)
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

    def __getattr__(self, name):
        return getattr(self._con, name)


def run_ours(path: Path, work: Path, *, timed: bool = False, profile: bool = False) -> dict:
    from pipeline.parse import events, runs  # noqa: F401  (imported before timing)
    from pipeline.core.config import Config
    from pipeline.api import ingest
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
        print(f"where our ingest's {spent:.2f} s go (time inside con.execute/register, by statement; "
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

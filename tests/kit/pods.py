"""Fleets of Kubernetes Job pods running migrate, shipped by Fluent Bit: the shapes `tests/bench.py` measures.

Every pod runs one migrate process (`Migrate.simulate`, so versions, dirty states and durations follow each
database), and Fluent Bit writes its lines as `json_lines` records with the pod's `kubernetes` object, whose
labels (`app`, `env`, `db`) name the service, env and database. Three layouts:

* `write_node_files`: short runs (a release of 1-3 scripts, or `no change` on a config redeploy) on every
  database of a service, many pods at a time; each node's Fluent Bit appends to its own file: few large
  files, hundreds of thousands of streams.
* `write_pod_files`: one small file per pod (~30 records: a database catching up on many scripts), as an
  object store holds them when Fluent Bit ships each pod's log separately.
* `write_weekly_fleet`: weeks of a fleet, a file per node per day under `<ISO week>/dt=<date>/`: releases
  rolled out dev -> staging -> prod tenants (prod the next working day), config redeploys, failures left
  dirty (the Job's retry prints `Dirty database version`) and forced back, rare slow outliers.

Deterministic for a given seed and size. Records are written as they are made (a run at a time, in time
order per file), so memory stays flat whatever the size.
"""

from __future__ import annotations

import bisect
import math
import random
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

from .envelopes import delivered, fluent_bit_line, fluentbit_json, hex_id, k8s_suffix, kubernetes_meta, uuid4
from .fleet import ERRORS, SERVICES, script_names
from .gofmt import NS, iso_week, to_ns, utc_date
from .migrate import Database, Migrate, Migration, Run

ENVS = ("dev", "staging", "prod")
# Data-heavy scripts scale with the env's data volume; light ones hardly (as in sample_logs/sources.py).
SCALE = {True: {"dev": 0.03, "staging": 0.35, "prod": 1.0}, False: {"dev": 0.75, "staging": 0.9, "prod": 1.0}}
IMAGE = "docker.io/migrate/migrate:v4.17.1"
WAIT = ["Waiting for postgres ...", "postgres is up - executing command"]
MIN = 60 * NS
HOUR = 3600 * NS
Record = tuple[int, int, str]  # (time ns, order, record)


def migration_folder(rng: random.Random, n: int, ts_versions: bool) -> dict[int, Migration]:
    """`n` scripts: own times mostly tens of ms, 2 % data-heavy backfills of seconds to minutes, 3 % without a
    down file; versions 1..n or `migrate create -format 20060102150405` timestamps about a day apart."""
    names = script_names(rng, n)
    out: dict[int, Migration] = {}
    for i, name in enumerate(names, start=1):
        heavy = rng.random() < 0.02
        light = min(60_000.0, max(0.5, rng.lognormvariate(math.log(25), 1.2)))
        up = rng.uniform(4_000, 180_000) if heavy else light
        version = int((datetime(2019, 1, 1) + timedelta(seconds=i * 97_213)).strftime("%Y%m%d%H%M%S")) \
            if ts_versions else i
        out[version] = Migration(name, round(up, 3), round(up * 0.3, 3), rng.random() >= 0.03, heavy)
    return out


class PodFleet:
    """Services × envs × databases and what migrate prints in each of their pods.

    `head[(service, env)]` is the newest version shipped to an env; `release(service, k)` ships k more
    scripts to dev and staging (prod is promoted with `promote`). All randomness comes from `rng`.
    """

    def __init__(self, rng: random.Random, *, tenants: int, services: int = len(SERVICES),
                 scripts: int = 1200, start: int = 40) -> None:
        self.rng = rng
        self.services = SERVICES[:services]
        self.sources = {s.name: migration_folder(rng, scripts, s.ts_versions) for s in self.services}
        self.versions = {name: sorted(src) for name, src in self.sources.items()}
        self.sim = Migrate(rng, self.sources, ERRORS, SCALE)
        self.dbs = {"dev": ["main"], "staging": ["main", "replay"],
                    "prod": [f"tenant_{i:04d}" for i in range(1, tenants + 1)]}
        self.head: dict[tuple[str, str], int] = {}
        for s in self.services:
            v0 = self.versions[s.name][start - 1]
            for env in ENVS:
                self.head[(s.name, env)] = v0
                for db in self.dbs[env]:
                    self.sim.state[(s.name, env, db)] = Database(v0)
        self.nodes = [f"ip-10-0-{i // 200}-{i % 200 + 1}.ec2.internal" for i in range(64)]

    def release(self, service: str, k: int) -> int:
        """Ship the next `k` scripts of `service` to dev and staging; returns the new head."""
        vs = self.versions[service]
        head = vs[min(len(vs) - 1, bisect.bisect_right(vs, self.head[(service, "dev")]) + k - 1)]
        self.head[(service, "dev")] = self.head[(service, "staging")] = head
        return head

    def pending(self, service: str, env: str, db: str) -> int | None:
        """The first version an `up` would apply now, if any."""
        vs = self.versions[service]
        cur = self.sim.state[(service, env, db)].version or 0
        i = bisect.bisect_right(vs, cur)
        return vs[i] if i < len(vs) and vs[i] <= self.head[(service, env)] else None

    def run(self, service: str, env: str, db: str, t: int, *, verbose: bool | None = None,
            fail: bool = False, slow: bool = False) -> Run:
        """One `migrate up` on `db`; `fail` makes its first pending script fail (the database is left dirty),
        `slow` makes it, unless a data-heavy one, take ~30x its typical time (a lock wait, a bad plan)."""
        rng = self.rng
        spec: dict[str, Any] = {"service": service, "env": env, "db": db, "t": t, "cmd": "up",
                                "head": self.head[(service, env)],
                                "verbose": rng.random() < 0.3 if verbose is None else verbose}
        if rng.random() < 0.3:
            spec["noise_before"] = WAIT
        first = self.pending(service, env, db) if (fail or slow) else None
        if first is not None and fail:
            spec["fail"] = (first, rng.choice(sorted(ERRORS)))
        elif first is not None and not self.sources[service][first].heavy:  # a backfill is slow already
            src = self.sources[service][first]
            spec["own"] = {(first, "u"): src.up_ms * SCALE[src.heavy][env] * rng.uniform(20, 40)}
        return self.sim.simulate(spec)

    def records(self, run: Run, *, job: str, node: str, pod: str | None = None) -> list[tuple[int, str]]:
        """The run's lines as Fluent Bit records of a pod of Job `job` (a new one unless named) on `node`."""
        rng, s = self.rng, run.spec
        ns = next(x.namespace for x in self.services if x.name == s["service"])
        labels = {"app": s["service"], "batch.kubernetes.io/job-name": job, "db": s["db"], "env": s["env"],
                  "job-name": job}
        kube = fluentbit_json(kubernetes_meta(
            pod or f"{job}-{k8s_suffix(rng)}", f"{ns}-{s['env']}", pod_id=uuid4(rng), labels=labels,
            host=node, docker_id=hex_id(rng, 64), image=IMAGE,
            image_hash=f"docker.io/migrate/migrate@sha256:{hex_id(rng, 64)}"))
        return [(t, fluent_bit_line(text, t, kube)) for t, text in delivered(rng, run.lines)]

    def retry_after_failure(self, run: Run, *, job: str, node: str) -> list[tuple[int, str]]:
        """A failed run's Job retries once (the database is dirty: migrate says so); then someone runs
        `migrate force` to the version before the failed one, so the next release re-applies it."""
        s = run.spec
        retry = self.run(s["service"], s["env"], s["db"], run.end_ns + self.rng.randint(30, 90) * NS,
                         verbose=s["verbose"])
        out = self.records(retry, job=job, node=node)
        failed = s["fail"][0]
        vs = self.versions[s["service"]]
        self.sim.force(s["service"], s["env"], s["db"], vs[vs.index(failed) - 1])
        return out


class _Files:
    """Open output files by path; records are appended in the order given."""

    def __init__(self) -> None:
        self.open: dict[Path, IO[str]] = {}
        self.lines = 0

    def write(self, path: Path, records: list[Record]) -> None:
        f = self.open.get(path)
        if f is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            f = self.open[path] = path.open("w", encoding="utf-8", buffering=1 << 20)
        f.write("".join(r + "\n" for _t, _o, r in records))
        self.lines += len(records)

    def close(self, path: Path | None = None) -> None:
        for p in [path] if path else list(self.open):
            self.open.pop(p).close()


def write_node_files(folder: Path, n_lines: int, n_files: int, seed: int, *, tenants: int = 150) -> int:
    """About `n_lines` records of short pod runs in `n_files` node files under `folder`; returns the count.

    A rollout runs a service's release (or a config redeploy: `no change`) on all its databases, env after
    env, 12 pods at a time; each pod lands on a node, whose file gets its records. The corpus ends on a
    whole run, so it holds at most `n_lines` records."""
    rng = random.Random(seed)
    fleet = PodFleet(rng, tenants=tenants)
    nodes = fleet.nodes[:n_files]
    files, order = _Files(), 0
    t = to_ns(datetime(2026, 3, 2, 8))
    done = False
    while not done:
        svc = rng.choice(fleet.services).name
        head = fleet.release(svc, rng.randint(1, 3)) if rng.random() < 0.7 else None
        if head is not None:
            fleet.head[(svc, "prod")] = head
        job = f"{svc}-migrate-{k8s_suffix(rng, 8)}"
        by_node: dict[int, list[Record]] = defaultdict(list)
        end = t
        for env in ENVS:
            for i, db in enumerate(fleet.dbs[env]):
                start = t + (i // 12) * rng.randint(20, 40) * NS + rng.randint(0, 3 * NS)
                run = fleet.run(svc, env, db, start, fail=rng.random() < 0.005)
                node = rng.randrange(len(nodes))
                recs = fleet.records(run, job=job, node=nodes[node])
                if run.outcome == "failed":
                    recs += fleet.retry_after_failure(run, job=job, node=nodes[node])
                if files.lines + sum(map(len, by_node.values())) + len(recs) > n_lines:
                    done = True
                    break
                for at, rec in recs:
                    order += 1
                    by_node[node].append((at, order, rec))
                end = max(end, recs[-1][0] if recs else start)
            if done:
                break
            t = end + rng.randint(60, 600) * NS
        for node, recs in sorted(by_node.items()):
            recs.sort()
            files.write(folder / f"{nodes[node]}.jsonl", recs)
        t = end + rng.randint(5, 60) * MIN
    files.close()
    return files.lines


def write_pod_files(folder: Path, n_files: int, seed: int) -> int:
    """`n_files` pod logs of ~30 records, one file per pod (`<namespace>/<pod>.jsonl`); returns the count.

    Each pod is a prod tenant database catching up: `-verbose` on 7-10 pending scripts (3 lines each) or
    default mode on 24-32; a few fail. Pods start a few seconds apart over the day."""
    rng = random.Random(seed)
    fleet = PodFleet(rng, tenants=math.ceil(n_files / len(SERVICES)), start=400)
    t = to_ns(datetime(2026, 3, 2, 6))
    lines = 0
    for i in range(n_files):
        svc = fleet.services[i % len(fleet.services)].name
        db = fleet.dbs["prod"][i // len(fleet.services)]
        verbose = rng.random() < 0.5
        behind = rng.randint(7, 10) if verbose else rng.randint(24, 32)
        vs = fleet.versions[svc]
        fleet.sim.state[(svc, "prod", db)] = Database(vs[vs.index(fleet.head[(svc, "prod")]) - behind])
        t += rng.randint(1, 12) * NS
        run = fleet.run(svc, "prod", db, t, verbose=verbose, fail=rng.random() < 0.02)
        job = f"{svc}-migrate-{k8s_suffix(rng, 8)}"
        pod = f"{job}-{k8s_suffix(rng)}"
        recs = fleet.records(run, job=job, node=rng.choice(fleet.nodes), pod=pod)
        ns = f"{fleet.services[i % len(fleet.services)].namespace}-prod"
        path = folder / ns / f"{pod}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(r + "\n" for _t, r in recs), encoding="utf-8")
        lines += len(recs)
    return lines


def weekly_schedule(rng: random.Random, fleet: PodFleet, monday: datetime, weeks: int
                    ) -> Iterator[tuple[int, str, str, int | None, str]]:
    """(start, service, env, head the env gets or None, job) of every rollout, in time order: on working days
    each service releases with p 0.45 (dev ~10:00, staging ~14:00, prod the next working day ~10:00) and
    redeploys its config in prod with p 0.3 (every tenant prints `no change`)."""
    plan: list[tuple[int, str, str, int | None, str]] = []
    for day in range(weeks * 7):
        date = monday + timedelta(days=day)
        if date.weekday() >= 5:
            continue
        next_working = date + timedelta(days=3 if date.weekday() == 4 else 1)
        for s in fleet.services:
            at = to_ns(date)
            if rng.random() < 0.45:
                job = f"{s.name}-migrate-{k8s_suffix(rng, 8)}"
                head = fleet.release(s.name, rng.randint(1, 3))
                plan.append((at + 10 * HOUR + rng.randrange(HOUR), s.name, "dev", head, job))
                plan.append((at + 14 * HOUR + rng.randrange(2 * HOUR), s.name, "staging", head, job))
                if next_working < monday + timedelta(days=weeks * 7):
                    prod_at = to_ns(next_working) + 9 * HOUR + rng.randrange(2 * HOUR)
                    plan.append((prod_at, s.name, "prod", head, job))
            if rng.random() < 0.3:
                plan.append((at + 11 * HOUR + rng.randrange(5 * HOUR), s.name, "prod", None,
                             f"{s.name}-config-{k8s_suffix(rng, 8)}"))
    plan.sort(key=lambda p: (p[0], p[1], p[2]))
    return iter(plan)


def write_weekly_fleet(folder: Path, weeks: int, tenants: int, seed: int, *,
                       monday: datetime = datetime(2026, 9, 28), nodes: int = 3) -> int:
    """`weeks` weeks of 20 services (a dev, 2 staging and `tenants` prod databases each) as Fluent Bit
    files `<ISO week>/dt=<date>/<node>.jsonl`, one per node per day (a run lands in its start day's file);
    returns the record count. Failures (1 % in prod, 3 % elsewhere) leave the database dirty for the Job's
    retry, then it is forced back; 0.3 % of prod applications are slow outliers."""
    rng = random.Random(seed)
    fleet = PodFleet(rng, tenants=tenants)
    initial = dict(fleet.head)
    plan = list(weekly_schedule(rng, fleet, monday, weeks))  # releasing while planning moved the heads ahead
    fleet.head = initial
    files, order = _Files(), 0
    day_files: dict[str, dict[Path, list[Record]]] = defaultdict(lambda: defaultdict(list))
    for at, svc, env, head, job in plan:
        if head is not None:
            fleet.head[(svc, env)] = head
        day = utc_date(at)
        where = folder / iso_week(at) / f"dt={day}"
        for i, db in enumerate(fleet.dbs[env]):
            start = at + (i // 10) * rng.randint(15, 40) * NS + rng.randrange(3 * NS)
            p_fail = 0.01 if env == "prod" else 0.03
            run = fleet.run(svc, env, db, start, fail=rng.random() < p_fail,
                            slow=env == "prod" and rng.random() < 0.003)
            node = fleet.nodes[rng.randrange(nodes)]
            recs = fleet.records(run, job=job, node=node)
            if run.outcome == "failed":
                recs += fleet.retry_after_failure(run, job=job, node=node)
            for t, rec in recs:
                order += 1
                day_files[day][where / f"{node}.jsonl"].append((t, order, rec))
        for done in [d for d in day_files if d < day]:
            for path, recs in sorted(day_files.pop(done).items()):
                files.write(path, sorted(recs))
                files.close(path)
    for done in sorted(day_files):
        for path, recs in sorted(day_files.pop(done).items()):
            files.write(path, sorted(recs))
            files.close(path)
    return files.lines

#!/usr/bin/env python3
"""The demo fleet of sample_logs/: which services, which shippers, which incidents, seeded.

Run from the repository root with the project venv (the zstd file needs `zstandard`):

    .venv/bin/python sample_logs/generate.py [--out DIR]

It rewrites the log folders under DIR (default: this folder) and `expected.jsonc`, the ground truth the tests
read. Seeded with random.Random(46): two runs give byte-identical files, each file's mtime set to the time
of its last record. What migrate prints, how each shipper wraps it and how files are cut come from the test
kit (tests/kit); this file only says what happened in the fleet. The incidents are listed in README.md.
"""
from __future__ import annotations

import argparse
import random
import shutil
import sys
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the repository root: the kit is the package tests.kit

# (the script's own folder is on sys.path too: sources and truth are its siblings)
from sources import FAILURES, HEADS, K8S_NODES, SCALE, SOURCES, START_VERSIONS  # noqa: E402
from truth import Output, Planted, ground_truth, summary  # noqa: E402
from tests.kit.envelopes import hex_id, k8s_suffix, kubernetes_meta, uuid4  # noqa: E402
from tests.kit.gofmt import MS, NS, iso_week, utc_date, utc_ns  # noqa: E402
from tests.kit.migrate import Database, Migrate, Run  # noqa: E402
from tests.kit.shipping import Shipment  # noqa: E402

SEED = 46
FLEET_START, FLEET_END = "2026-10-26", "2026-11-15"  # Monday of 2026-W44 .. Sunday of 2026-W46
OUTPUTS = ("cloudwatch", "docker", "events", "kubernetes", "loki", "slog", "text")  # what --out gets rewritten

rng = random.Random(SEED)

T = utc_ns
sim = Migrate(rng, SOURCES, FAILURES, SCALE)
for key, v0 in START_VERSIONS.items():
    sim.state[key] = Database(v0)

WAIT_FOR_IT = {"noise_before": ["wait-for-it: waiting for db:5432"], "noise_after_wait": True}

SPECS: list[dict[str, Any]] = []
FORCES: list[tuple[int, str, str, str, int]] = []  # silent `migrate force V` (prints nothing)
NAMED: dict[str, dict[str, Any]] = {}
IMAGE_DIGEST: dict[int, str] = {}


def jit(ns: int, max_s: float = 50.0) -> int:
    """A random offset within the minute (seconds and nanoseconds)."""
    return ns + rng.randrange(int(max_s * NS))


def work_time(date: str, lo_h: float = 9.0, hi_h: float = 17.0) -> int:
    return T(f"{date} 00:00") + int(rng.uniform(lo_h, hi_h) * 3600 * NS)


def head_at(service: str, env: str, ns: int) -> int:
    return [h for t0, h in HEADS[(service, env)] if t0 <= ns][-1]


def spec(**kw: Any) -> dict[str, Any]:
    kw.setdefault("seq", len(SPECS))
    SPECS.append(kw)
    return kw


def force(t: int, service: str, env: str, database: str, version: int) -> None:
    FORCES.append((t, service, env, database, version))


# ------------------------------------------------------------------------------------- orders: Kubernetes, CRI
def orders_pod(env: str, t: int, job: str | None = None, head: int | None = None) -> dict[str, Any]:
    job = job or f"orders-migrate-{t // NS // 60}"
    head = head or head_at("orders", env, t)
    if head not in IMAGE_DIGEST:
        IMAGE_DIGEST[head] = hex_id(rng, 64)
    labels = {"app.kubernetes.io/name": "orders", "env": env, "db": "orders", "batch.kubernetes.io/job-name": job,
              "job-name": job}
    return kubernetes_meta(f"{job}-{k8s_suffix(rng)}", "orders", pod_id=uuid4(rng), labels=dict(sorted(labels.items())),
                           host=rng.choice(K8S_NODES[env]), docker_id=hex_id(rng, 64),
                           image_hash=f"registry.internal/orders/migrations@sha256:{IMAGE_DIGEST[head]}",
                           image=f"registry.internal/orders/migrations:v{head}-migrate4.17.1")


def orders_run(env: str, when: str | int, **kw: Any) -> dict[str, Any]:
    t = jit(T(when)) if isinstance(when, str) else when
    kw.setdefault("cmd", "up")
    kw.setdefault("verbose", env == "staging")
    head = kw.pop("head", None) or head_at("orders", env, t)
    pod = kw.pop("pod", None) or orders_pod(env, t, head=head)
    kw.setdefault("envelope", "kubernetes")
    return spec(service="orders", env=env, db="orders", t=t, head=head, pod=pod, **kw)


def plan_orders() -> None:
    orders_run("dev", "2026-10-26 09:41", **WAIT_FOR_IT)
    o2 = orders_run("staging", "2026-10-27 10:15", kill_at=15,
                    tag="5a interrupted: SIGTERM (pod evicted) while executing 15/u backfill_order_totals")
    orders_run("staging", o2["t"] + 6 * 60 * NS + rng.randrange(20 * NS),
               pod=orders_pod("staging", o2["t"], job=o2["pod"]["labels"]["job-name"], head=15),
               tag="5b dirty: Job retry pod prints Dirty database version 15")
    force(T("2026-10-27 10:41"), "orders", "staging", "orders", 14)
    orders_run("staging", "2026-10-27 10:46", tag="5c recovered after silent `force 14`: 15/u re-run succeeds")
    orders_run("prod", "2026-10-29 14:05")
    orders_run("staging", "2026-10-30 11:02", cmd="version")
    orders_run("dev", "2026-11-02 10:20")
    orders_run("staging", "2026-11-03 10:05")
    o9 = orders_run("prod", "2026-11-04 10:30", fail=(16, "syntax16"),
                    tag="1a failed: 16/u add_shipment_tracking syntax error, database left dirty at 16")
    orders_run("prod", o9["t"] + 70 * NS + rng.randrange(15 * NS),
               pod=orders_pod("prod", o9["t"], job=o9["pod"]["labels"]["job-name"], head=16),
               tag="1b dirty: Job retry pod prints Dirty database version 16")
    orders_run("dev", "2026-11-04 15:00", envelope="cri", **WAIT_FOR_IT,
               tag="cri node file (not shipped by Fluent Bit): 17/u applied in dev")
    orders_run("staging", "2026-11-05 09:30")
    force(T("2026-11-06 10:05"), "orders", "prod", "orders", 15)
    orders_run("prod", "2026-11-06 10:15",
               tag="1c forced recovery: after silent `force 15`, a clean run applies 16 and 17")
    for when, kw in [("2026-11-06 16:12", {"cmd": "goto", "n": 42,
                                           "tag": "10f doubled missing-file error (goto 42), exactly as capture 0026"}),
                     ("2026-11-06 16:14", {"cmd": "goto", "n": 4,
                                           "tag": "9a missing down file: goto 4 from 17 prints 5/d <empty>"}),
                     ("2026-11-06 16:21", {"tag": "9b (follow-up) dev re-applies 5..17"})]:
        orders_run("dev", when, pod=orders_pod("dev", T(when), job="orders-migrate-manual"), **kw)
    orders_run("dev", "2026-11-09 10:10", **WAIT_FOR_IT)
    orders_run("staging", "2026-11-10 10:40")
    orders_run("prod", "2026-11-12 14:30")


# ---------------------------------------------------------------------- catalog: migrate-lens/v1, bare text
def catalog_run(env: str, when: str | int, **kw: Any) -> dict[str, Any]:
    t = jit(T(when)) if isinstance(when, str) else when
    kw.setdefault("cmd", "up")
    head = kw.pop("head", None) or head_at("catalog", env, t)
    kw.setdefault("envelope", "events")
    return spec(service="catalog", env=env, db="catalog", t=t, head=head, run_id=uuid4(rng), **kw)


def plan_catalog() -> None:
    bare = "text/bare/env=staging/service=catalog/database=catalog/"
    catalog_run("dev", "2026-10-26 11:05")
    catalog_run("dev", "2026-10-28 09:05", pre_error="dial tcp 10.0.3.4:5432: connect: connection refused",
                pre_error_class="connection_refused", tag="10d connection refused (dev database restarting)")
    catalog_run("dev", "2026-10-28 09:12")
    catalog_run("staging", "2026-10-28 14:00")
    catalog_run("prod", "2026-11-02 11:20")
    catalog_run("prod", "2026-11-03 15:40", cmd="down", n=1,
                tag="3a prod rollback: down 1 prints 9/d add_search_vectors")
    catalog_run("dev", "2026-11-05 10:30")
    catalog_run("prod", "2026-11-06 11:00", cmd="version")
    catalog_run("staging", "2026-11-10 13:58", envelope="bare", path=bare + "up-2026-11-10.txt",
                tag="bare default-mode output (time = file mtime): 10/u applied in staging")
    catalog_run("staging", T("2026-11-10 14:02:11") + rng.randrange(NS // 2), verbose=True, envelope="bare",
                path=bare + "verbose-up-2026-11-10.txt")
    catalog_run("dev", "2026-11-10 15:20", n=3, tag="10e `up 3` with one pending: error: limit 2 short")
    catalog_run("prod", "2026-11-11 11:30", tag="3b prod re-applies 9/u (with 10/u)")
    catalog_run("prod", "2026-11-13 16:05",
                tag="8 promotion skipped: 11/u add_price_history applied in prod, never in staging")


# ---------------------------------------------------------------------- identity: a Go service logging slog
IDENTITY_RS: dict[tuple[str, int, Any], str] = {}


def identity_run(env: str, when: str | int, rs_variant: Any = 0, **kw: Any) -> dict[str, Any]:
    t = jit(T(when)) if isinstance(when, str) else when
    head = head_at("identity", env, t)
    if (env, head, rs_variant) not in IDENTITY_RS:
        IDENTITY_RS[(env, head, rs_variant)] = k8s_suffix(rng, 10)
    pod = f"identity-{IDENTITY_RS[(env, head, rs_variant)]}-{k8s_suffix(rng)}"
    return spec(service="identity", env=env, db="identity", t=t, head=head, cmd="up", envelope="slog", pod=pod,
                app_version=f"1.{head + 10}.{rng.randrange(0, 4)}", **kw)


def plan_identity() -> None:
    identity_run("dev", "2026-10-27 10:00")
    identity_run("staging", "2026-10-28 14:10", fail=(4, "lock_timeout4"),
                 tag="6a failed: 3/u applied, then 4/u add_login_attempts lock timeout (dirty at 4)")
    force(T("2026-10-28 14:28"), "identity", "staging", "identity", 2)  # the mistake: 3 had committed
    identity_run("staging", "2026-10-28 14:32", fail=(3, "exists3"), rs_variant=1,
                 tag="6b non-idempotent re-run after `force 2`: relation \"mfa_secrets\" already exists")
    force(T("2026-10-29 09:50"), "identity", "staging", "identity", 3)
    identity_run("staging", "2026-10-29 10:02", rs_variant=2, tag="6c recovered after `force 3`: 4/u applied")
    identity_run("prod", "2026-11-02 13:30")
    identity_run("dev", "2026-11-09 11:00")
    identity_run("staging", "2026-11-10 11:30")
    identity_run("prod", "2026-11-12 13:00")


# ------------------------------------------------------- billing: dev docker, staging Loki, prod CloudWatch
TENANTS_PROD = [f"tenant_{i:03d}" for i in range(1, 9)]
# Billing's release job re-runs its last migration, 23/u backfill_invoice_totals, on every release:
# `migrate force 22` (silent) then `migrate up`. The first release (B1) applies 22 and 23 for real.
RELEASES = {  # release -> (dev, staging, prod or None)
    "B1": ("2026-10-26 14:10", "2026-10-27 15:20", "2026-10-29 10:00"),
    "B2": ("2026-10-29 13:40", "2026-10-30 10:30", "2026-11-02 10:00"),
    "B3": ("2026-11-03 11:15", "2026-11-04 14:45", "2026-11-05 10:00"),
    "B4": ("2026-11-05 15:30", "2026-11-06 11:10", "2026-11-10 10:00"),
    "B5": ("2026-11-09 14:20", "2026-11-10 15:05", "2026-11-12 10:00"),
    "B6": ("2026-11-12 11:00", "2026-11-13 10:40", None),  # prod frozen after tenant_007
}
NEW_NORMAL_23 = 46000.0  # W46 prod: 23/u takes ~46 s on every tenant (it was ~2.1 s)


def billing_spec(env: str, database: str, t: int, release: str | None = None, name: str | None = None,
                 **kw: Any) -> dict[str, Any]:
    kw.setdefault("cmd", "up")
    kw.setdefault("verbose", env != "dev")
    meta: dict[str, str] = {}
    if env == "dev":
        meta["container_id"] = hex_id(rng, 64)
    elif env == "staging":
        meta["pod"] = f"billing-migrate-{database.replace('_', '-')}-{t // NS // 60}-{k8s_suffix(rng)}"
    else:
        meta["task_id"] = hex_id(rng, 32)
    envelope = {"dev": "docker", "staging": "loki", "prod": "cloudwatch"}[env]
    s = spec(service="billing", env=env, db=database, t=t, release=release, envelope=envelope, **meta, **kw)
    if name:
        NAMED[name] = s
    return s


def plan_billing() -> None:
    for rel, (t_dev, t_stg, t_prod) in RELEASES.items():
        refresh = rel != "B1"
        billing_spec("dev", "billing", jit(T(t_dev)), rel, f"{rel}-dev", refresh=refresh, **WAIT_FOR_IT)
        t = jit(T(t_stg))
        for tenant in ("tenant_001", "tenant_002"):
            billing_spec("staging", tenant, t, rel, refresh=refresh, chain_gap=True)
            t += int(rng.uniform(25, 40) * NS)  # provisional: the chain re-times each task at simulation
        if t_prod is None:
            continue
        t = jit(T(t_prod), 20)
        for tenant in TENANTS_PROD:
            own, kw = {}, {}
            if rel in ("B4", "B5"):
                own[(23, "u")] = NEW_NORMAL_23 * rng.uniform(0.88, 1.16)
                if tenant == "tenant_007":
                    own[(23, "u")] = 58500.0
            if rel == "B3" and tenant == "tenant_004":
                own[(23, "u")] = 63000.0  # the lone W45 outlier, ~30x
                kw["tag"] = "7a lone outlier: 23/u backfill_invoice_totals ~30x its baseline on tenant_004"
            if rel == "B4" and tenant == "tenant_001":
                kw["tag"] = "7b level shift starts: 23/u ~40-60 s on every prod tenant from here on (W46)"
            if rel == "B5" and tenant == "tenant_007":
                kw["fail"] = (23, "stmt_timeout23")
                kw["tag"] = "2a open dirty: 23/u hits statement_timeout (90s), tenant_007 dirty at 23 until the end"
            billing_spec("prod", tenant, t, rel, refresh=refresh, own=own, chain_gap=True, **kw)
            if rel == "B4" and tenant == "tenant_003":
                # the release was triggered twice: a second task for tenant_003 starts at the same instant
                billing_spec("prod", tenant, t + sim.usec(200, 3000), rel, refresh=True, lock_timeout=True,
                             tag="4 lock timeout: double-triggered task for tenant_003 starts with the other one")
            t += 1  # provisional: the chain starts each task after the previous one ended
    # manual and extra runs
    billing_spec("dev", "billing", jit(T("2026-10-28 15:02")), **WAIT_FOR_IT)
    billing_spec("dev", "billing", jit(T("2026-11-11 10:00")), cmd="version", **WAIT_FOR_IT)
    billing_spec("dev", "billing", jit(T("2026-11-13 09:35")), **WAIT_FOR_IT)
    billing_spec("staging", "tenant_001", jit(T("2026-11-06 16:05")), cmd="version")
    billing_spec("prod", "tenant_002", jit(T("2026-11-04 10:50")), cmd="version", verbose=False,
                 pre_error=('failed to open database, "postgres://billing:Sup3rS3cret@db-prod:5432/tenant_002'
                            '?sslmode=require": dial tcp: lookup db-prod on 10.0.0.2:53: no such host'),
                 pre_error_class="dns", pre_error_delay_ms=(18.0, 45.0),
                 tag="10c leaked DSN (migrate v4.18.0 image, typo'd host): the password must be redacted")
    billing_spec("prod", "tenant_002", jit(T("2026-11-04 10:52")), cmd="version", verbose=False)
    billing_spec("prod", "tenant_007", jit(T("2026-11-13 09:40")), cmd="version", verbose=False,
                 tag="2b (follow-up) on-call checks tenant_007: prints 23 (dirty); never fixed")


def plan_routine() -> None:
    """Every app deploy runs `up` too, so most runs print `no change`."""
    explicit = defaultdict(set)
    for s in SPECS:
        explicit[(s["service"], s["env"])].add(utc_date(s["t"]))
    d, end = datetime.strptime(FLEET_START, "%Y-%m-%d"), datetime.strptime(FLEET_END, "%Y-%m-%d")
    while d <= end:
        date, wd, d = d.strftime("%Y-%m-%d"), d.weekday(), d + timedelta(days=1)
        if wd >= 5:
            continue
        # orders: dev 2-4 deploys a day, staging 1-2, prod Mon/Tue/Wed/Fri (none on 11-05: prod was dirty)
        for env, n in (("dev", rng.choice([2, 3, 4])), ("staging", rng.choice([1, 2])),
                       ("prod", 1 if wd in (0, 1, 2, 4) else 0)):
            if date in explicit[("orders", env)] or (env, date) == ("prod", "2026-11-05"):
                continue
            for _ in range(n):
                t = work_time(date, 9.5, 16.8)
                orders_run(env, t, **(WAIT_FOR_IT if (env == "dev" and rng.random() < 0.3) else {}))
        # catalog: dev 1-3, staging Mon/Thu, prod 1-2 a day
        for env, n in (("dev", rng.choice([1, 2, 3, 3])), ("staging", 1 if wd in (0, 3) else 0),
                       ("prod", rng.choice([1, 1, 2]))):
            if date in explicit[("catalog", env)]:
                continue
            for _ in range(n):
                t = work_time(date, 9.2, 17.3)
                catalog_run(env, t, cmd="version" if (env == "prod" and date in ("2026-10-28", "2026-11-09")) else "up")
        # identity: a deploy (new pod) most weekdays
        for env, p in (("dev", 0.9), ("staging", 0.7), ("prod", 0.5)):
            if date not in explicit[("identity", env)] and rng.random() < p:
                identity_run(env, work_time(date, 9.5, 16.5), rs_variant=date)
        # billing dev: a developer runs `docker compose run migrate up` now and then
        if date not in explicit[("billing", "dev")] and rng.random() < 0.4:
            billing_spec("dev", "billing", work_time(date, 9.5, 17.5), **WAIT_FOR_IT)


# ------------------------------------------------------------------------------------------- simulation
def simulate_all() -> list[Run]:
    """Runs in time order with the silent forces between them; each billing release's tenants as a chain, each
    task starting after the previous one ended (+ ECS scheduling and the silent `force 22` task)."""
    runs: list[Run] = []

    def run_one(s: dict[str, Any]) -> Run:
        st = sim.state[(s["service"], s["env"], s["db"])]
        if s.get("refresh") and st.version == 23 and not st.dirty:
            st.version = 22  # `migrate force 22`: prints nothing
        r = sim.simulate(s)
        r.version_after = st.version
        runs.append(r)
        return r

    events: list[tuple[int, int, str, Any]] = sorted(
        [(s["t"], s["seq"], "run", s) for s in SPECS if not s.get("chain_gap")]
        + [(f[0], -1, "force", f) for f in FORCES], key=lambda x: (x[0], x[1]))
    chains: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for s in SPECS:
        if s.get("chain_gap"):
            chains[(s["service"], s["env"], s.get("release"))].append(s)
    events += [(lst[0]["t"], lst[0]["seq"], "chain", lst) for lst in chains.values()]
    events.sort(key=lambda x: (x[0], x[1]))
    dups = [s for s in SPECS if s.get("lock_timeout")]
    for _t, _seq, kind, obj in events:
        if kind == "force":
            sim.force(obj[1], obj[2], obj[3], obj[4])
        elif kind == "run":
            if not obj.get("lock_timeout"):  # the twin is simulated inside its chain
                run_one(obj)
        else:
            t = obj[0]["t"]
            for s in obj:
                s["t"] = t
                dup = [d for d in dups if (d["release"], d["db"], d["env"]) == (s["release"], s["db"], s["env"])]
                if dup:
                    dup[0]["t"] = t + sim.usec(200, 3000)
                    r_dup = sim.simulate(dup[0])  # loses the race: 15 s lock timeout, no state change
                    runs.append(r_dup)
                r = run_one(s)
                lo, hi, rlo, rhi = (6.0, 11.0, 5.0, 9.0) if s["env"] == "prod" else (3.0, 6.0, 3.0, 5.0)
                gap = rng.uniform(lo, hi) + (rng.uniform(rlo, rhi) if s.get("refresh") else 0.0)
                t = max(r.end_ns, r_dup.end_ns if dup else 0) + int(gap * NS) + rng.randrange(MS)
    runs.sort(key=lambda r: (r.spec["t"], r.spec["seq"]))
    return runs


# ---------------------------------------------------------------------------------------------- shipping
def ship(runs: list[Run]) -> Shipment:
    out = Shipment(rng)
    for r in runs:
        s, kind = r.spec, r.spec["envelope"]
        if kind == "kubernetes":
            out.kubernetes(r, s["pod"], lambda ns: f"kubernetes/orders-{iso_week(ns)}.jsonl")
        elif kind == "cri":
            out.cri(r, "text/cri/env=dev/service=orders/database=orders/0.log")
        elif kind == "docker":
            out.docker(r, f"docker/env=dev/service=billing/database=billing/{s['container_id']}-json.log")
        elif kind == "loki":
            out.loki_records(r, {"container": "migrate", "env": "staging", "service_name": "billing", "tenant": s["db"],
                                 "pod": s["pod"], "namespace": "billing", "stream": "stderr"})
        elif kind == "cloudwatch":
            out.cloudwatch_events(r, f"migrate/migrate/{s['task_id']}", lambda ms, db=s["db"]: (db, utc_date(ms * MS)))
        elif kind == "events":
            args = ["-verbose"] * bool(s.get("verbose")) + ["-path", "/migrations", "-database",
                                                            "postgres://catalog:***@db:5432/catalog", s["cmd"]]
            args += [str(s["n"])] if s.get("n") is not None else []
            out.events(r, f"events/catalog-{s['env']}.jsonl", s["run_id"],
                       {"env": s["env"], "service": "catalog", "database": "catalog"}, args)
        elif kind == "bare":
            out.bare_file(r, s["path"])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=HERE, help="where to write the fleet (default: sample_logs/)")
    root = ap.parse_args().out.resolve()
    try:
        import zstandard
    except ImportError:
        sys.exit("generate.py: identity-prod.jsonl.zst needs the `zstandard` package; "
                 "run it with the project venv: .venv/bin/python sample_logs/generate.py")
    plan_orders()
    plan_catalog()
    plan_identity()
    plan_billing()
    plan_routine()
    runs = simulate_all()
    shipped = ship(runs)
    slog = {env: shipped.slog_service([r for r in runs if (r.spec["service"], r.spec["env"]) == ("identity", env)],
                                      "identity", {"service": "identity", "env": env, "database": "identity"},
                                      f"identity-db.{env}.internal:5432", T(FLEET_START + " 00:00"),
                                      T(FLEET_END + " 23:59:59"))
            for env in ("dev", "staging", "prod")}

    root.mkdir(parents=True, exist_ok=True)
    for name in OUTPUTS:
        shutil.rmtree(root / name, ignore_errors=True)
    out = Output(root)
    planted = Planted(out, {name: s["container_id"] for name, s in NAMED.items()})
    planted.line_files(shipped.files)
    for path, (end_ns, text) in sorted(shipped.bare.items()):
        out.write(path, text.encode("utf-8"), end_ns, text.count("\n"))
    duplicates = planted.loki(shipped)
    for (tenant, date), events in sorted(shipped.cloudwatch.items()):
        events.sort(key=lambda x: (x[0], x[1]))
        form = {("tenant_006", "2026-11-10"): "jsonl", ("tenant_008", "2026-11-05"): "subscription",
                ("tenant_005", "2026-11-12"): "s3export"}.get((tenant, date), "filter")
        base = f"cloudwatch/env=prod/service=billing/database={tenant}/{date}"
        export = f"text/cloudwatch-export/env=prod/service=billing/database={tenant}/export-000000.log.gz"
        path = {"filter": base + ".json", "jsonl": base + ".jsonl", "subscription": base + ".json.gz",
                "s3export": export}[form]
        out.write(path, shipped.cloudwatch_file(form, events, "/ecs/billing-migrate"), events[-1][0] * MS, len(events))
        for *_, r in events:
            r.files.add(path)
    for env, recs in sorted(slog.items()):
        recs.sort(key=lambda x: (x[0], x[1]))
        data = b"".join(line.encode("utf-8") + b"\n" for _ns, _o, line in recs)
        path = f"slog/identity-{env}.jsonl"
        if env == "prod":  # prod's log is archived with zstd
            data, path = zstandard.ZstdCompressor(level=9, write_checksum=True).compress(data), path + ".zst"
        out.write(path, data, recs[-1][0], len(recs))
        for r in runs:
            if (r.spec["service"], r.spec["env"]) == ("identity", env):
                r.files.add(path)
    level_shift = {"env": "prod", "service": "billing", "version": 23, "name": SOURCES["billing"][23].name,
                   "typical_ms": {"2026-W45": SOURCES["billing"][23].up_ms, "2026-W46": NEW_NORMAL_23}}
    (root / "expected.jsonc").write_text(ground_truth(runs, sim.state, planted, duplicates, level_shift),
                                         encoding="utf-8")
    print(summary(runs, sim.state, planted))


if __name__ == "__main__":
    main()

"""The ingest benchmark's corpus: many migrate runs in pods rolling out together, as Fluent Bit records.

Each pod runs one random migrate `up` (72 % apply scripts, 10 % fail, 12 % `no change`, 6 % dirty; 40 % with
`-verbose`), next to the entrypoint's own lines and an istio-proxy sidecar; a handful of services roll out
at once, so their lines interleave. Deterministic for a given seed and size.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

from .envelopes import fluent_bit_line, fluentbit_json, hex_id, k8s_suffix, kubernetes_meta
from .fleet import NOUNS, SERVICES, script_names
from .gofmt import go_duration, iso_fixed, verbose_prefix

# The first twelve services of the fleet, each with the env its pods run in.
CORPUS_SERVICES = [(s.name, s.namespace, env, s.ts_versions) for s, env in zip(SERVICES, [
    "prod", "prod", "prod", "staging", "prod", "staging", "prod", "dev", "prod", "prod", "prod", "dev"])]
IMAGES = ["docker.io/migrate/migrate:v4.17.1", "docker.io/migrate/migrate:v4.18.3", "docker.io/migrate/migrate:v4.19.1",
          "docker.io/migrate/migrate:v4.15.2"]
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

def _own_ns(rng: random.Random) -> int:
    """A script's own execution time: mostly milliseconds, sometimes seconds, rarely minutes."""
    if rng.random() < 0.01:
        return int(rng.uniform(20, 400) * 1e9)
    return max(200_000, int(rng.lognormvariate(16.5, 1.3)))  # median ~15 ms


def pod_run(rng: random.Random, t0: int, svc: tuple, names: list[str]) -> list[tuple[int, int, str]]:
    """One migrate run in one pod: (ns, container 0=migrate 1=istio-proxy, text) records."""
    ts_versions = svc[3]
    verbose = rng.random() < 0.4
    kind = rng.choices(["up", "fail", "nochange", "dirty"], weights=[72, 10, 12, 6])[0]
    out: list[tuple[int, int, str]] = []
    t = t0

    def emit(text: str, at: int, prefixed: bool = True, container: int = 0) -> None:
        out.append((at, container, (verbose_prefix(at) + text) if (verbose and prefixed) else text))

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


def _sidecar_time(at: int) -> str:
    """istio-proxy's own log time: microseconds, `Z`."""
    return iso_fixed(at, 6)


def pod_noise(rng: random.Random, t0: int, t1: int, svc: tuple, count: int) -> list[tuple[int, int, str]]:
    """Non-migrate lines: the entrypoint script before migrate, and the istio-proxy sidecar meanwhile."""
    service, ns, _env, _ = svc
    out = []
    for _ in range(count):
        if rng.random() < 0.5:
            at = t0 - rng.randint(100_000_000, 3_000_000_000)
            text = rng.choice([
                f"Waiting for postgres at {service}-db.{ns}.svc.cluster.local:5432 ...",
                "postgres is up - executing command",
                (f"+ migrate -path /migrations -database postgres://{service}:Pw{hex_id(rng, 8)}@{service}-db:5432/"
                 f"{service}?sslmode=disable up"),
                "Running migrations from /migrations",
                f"nc: connect to {service}-db port 5432 (tcp) failed: Connection refused",
            ])
            out.append((at, 0, text))
        else:
            at = rng.randint(t0, max(t0 + 1, t1))
            iso = _sidecar_time(at)
            text = rng.choice([
                f"{iso}\tinfo\tEnvoy proxy is ready",
                (f'[{iso[:-4]}Z] "GET /healthz/ready HTTP/1.1" 200 - via_upstream - "-" 0 0 {rng.randint(0, 4)} 0 '
                 f'"-" "kube-probe/1.28" "{hex_id(rng, 8)}" "10.0.{rng.randint(0, 255)}.{rng.randint(1, 254)}:15021" '
                 '"127.0.0.1:15020" inbound|15021|| 127.0.0.6:0 - default'),
                (f"{iso}\twarn\txds\tcache\tfailed to fetch root cert: connection error: desc = \"transport: "
                 f"Error while dialing: dial tcp 10.96.{rng.randint(0, 255)}.{rng.randint(1, 254)}:15012: i/o timeout\""),
                f"{iso}\tinfo\tads\tADS: new connection for node:{service}-migrate-{k8s_suffix(rng)}.{ns}-1",
            ])
            out.append((at, 1, text))
    return out


def pod_kubernetes(rng: random.Random, svc: tuple, pod: str, container: str, image: str) -> str:
    """The pod's `kubernetes` object, serialised once for all its records."""
    service, ns, env, _ = svc
    return fluentbit_json(kubernetes_meta(
        pod, ns,
        pod_id=f"{hex_id(rng, 8)}-{hex_id(rng, 4)}-{hex_id(rng, 4)}-{hex_id(rng, 4)}-{hex_id(rng, 12)}",
        labels={"batch.kubernetes.io/job-name": f"{service}-migrate", "job-name": f"{service}-migrate",
                "app": service, "env": env},
        host=f"ip-10-0-{rng.randint(0, 63)}-{rng.randint(1, 254)}.ec2.internal",
        container=container, docker_id=hex_id(rng, 64),
        image_hash=f"{image.split(':')[0]}@sha256:{hex_id(rng, 64)}", image=image))


def write_fluent_bit_corpus(path: Path, n_lines: int, seed: int) -> None:
    """Write `n_lines` Fluent Bit records (deterministic for a given seed and N) to `path`, atomically."""
    rng = random.Random(seed)
    names = {svc[0]: script_names(rng, 400) for svc in CORPUS_SERVICES}
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
                svc = rng.choice(CORPUS_SERVICES)
                pod = f"{svc[0]}-migrate-{k8s_suffix(rng)}"
                image = rng.choice(IMAGES)
                kubes = (pod_kubernetes(rng, svc, pod, "migrate", image),
                         pod_kubernetes(rng, svc, pod, "istio-proxy", "docker.io/istio/proxyv2:1.21.2"))
                t0 = now + rng.randint(0, 20_000_000_000)
                lines = pod_run(rng, t0, svc, names[svc[0]])
                lines += pod_noise(rng, t0, lines[-1][0], svc, int(len(lines) * 0.053 + rng.random()))
                if len(lines) > room:
                    # The corpus ends on whole migrate runs (a run cut in the middle is another benchmark);
                    # the last few records are sidecar lines of the last pod.
                    at = lines[-1][0]
                    lines = [(at + i * 1_000_000, 1, f"{_sidecar_time(at)}\tinfo\tads\tADS: new connection for "
                                                     f"node:{pod}.{svc[1]}-{i}") for i in range(room)]
                room -= len(lines)
                for at, container, text in lines:
                    group.append((at, fluent_bit_line(text, at, kubes[container]) + "\n"))
                if room == 0:
                    break
            group.sort(key=lambda r: r[0])
            written += len(group)
            for _, rec in group:
                buf.append(rec)
                size += len(rec)
            if size > (16 << 20):
                f.write("".join(buf))
                buf, size = [], 0
            now += rng.randint(60, 900) * 1_000_000_000
        f.write("".join(buf))
    tmp.replace(path)

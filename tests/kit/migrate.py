"""What one golang-migrate v4.17 CLI process prints, simulated against a database's state.

`Migrate.simulate(spec)` returns a `Run`: the physical lines with the times they were written, the exit
code, and what the run did. The shapes follow the real captures (docs/log-format.md §2-§4):
default-mode APPLIED values are read + ran with `read` counted from when the script was buffered (up to
12 at start, as in capture 0031, then one more after each finish), so they are near-cumulative; `-verbose`
prints `Start buffering` / `Read and execute` / `Finished … (read X, ran Y)` / `Finished after`, with the
Go log prefix; `force` prints nothing; a killed run just stops. Every random draw comes from the `rng`
given, in a fixed order, so a seeded scenario is reproduced byte for byte.

A spec is a dict: `service`, `env`, `db`, `t` (start, epoch ns), `cmd` (`up`, `down`, `goto`, `version`),
optional `n` (limit or goto target), `head` (newest version shipped), `verbose`, `noise_before` (lines of
the entrypoint before migrate, e.g. wait-for-it), `noise_after_wait`, `pre_error` (+ `pre_error_class`,
`pre_error_delay_ms`: migrate.New fails), `lock_timeout`, `kill_at` (version being run when SIGTERM
arrives), `fail` ((version, failure kind)), `own` ({(version, 'u'|'d'): typical own ms} overrides).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .gofmt import MS, NS, US, go_duration, verbose_prefix

PREFETCH_QUEUE = 12  # -prefetch 10: up to 12 migrations are queued at start (capture 0031)


class Migration(NamedTuple):
    """One version of a service's migrations folder; own times are typical, in prod, in ms."""

    name: str
    up_ms: float
    down_ms: float
    has_down: bool  # a missing .down.sql prints `N/d <empty>`
    heavy: bool  # data-heavy: its own time scales with the env's data volume


class Failure(NamedTuple):
    """What postgres says when a script fails, as migrate wraps it (§2.2), and how the tool classifies it."""

    message: str  # pq message in the head line, e.g. `syntax error at or near "ADD" (column 5)`
    line: int  # `in line N`
    sql: str  # the whole script body migrate embeds (ends with a newline)
    details: str  # after ` (details: pq: `
    own_ms: tuple[float, float]  # how long the failing statement ran
    error_class: str  # the error_class of docs/contract.md for it

    def text(self) -> str:
        """The whole database.Error text, as migrate returns it (without the CLI's `error: `)."""
        return f"migration failed: {self.message} in line {self.line}: {self.sql} (details: pq: {self.details})"


@dataclass
class Database:
    version: int | None
    dirty: bool = False


@dataclass
class Run:
    spec: dict[str, Any]
    lines: list[tuple[int, str]] = field(default_factory=list)  # (written at, physical line, no newline)
    err_idx: set[int] = field(default_factory=set)  # indexes of the lines of the fatal error
    error_text: str | None = None  # fatal error without `error: ` (what an embedding app logs once)
    error_ns: int | None = None
    error_class: str | None = None
    exit_code: int = 0
    outcome: str = "success"  # or version, no_change, failed, dirty, locked, error, interrupted
    applied: list[str] = field(default_factory=list)  # `V/u` / `V/d` steps that finished
    version_after: int | None = None
    files: set[str] = field(default_factory=set)  # where the envelopes put it (filled in by the writers)
    end_ns: int = field(init=False)  # when the process exited

    def __post_init__(self) -> None:
        self.end_ns = self.spec["t"]


class Migrate:
    """The migrate CLI run against a fleet of databases whose state (version, dirty) it keeps."""

    def __init__(self, rng: random.Random, sources: dict[str, dict[int, Migration]],
                 failures: dict[str, Failure], scale: dict[bool, dict[str, float]]) -> None:
        self.rng = rng
        self.sources = sources
        self.failures = failures
        self.scale = scale  # heavy? -> env -> factor on the typical own time
        self.state: dict[tuple[str, str, str], Database] = {}

    def usec(self, lo: float, hi: float) -> int:
        """A random duration in ns between lo and hi microseconds."""
        return int(self.rng.uniform(lo, hi) * US)

    def msec(self, lo: float, hi: float) -> int:
        return int(self.rng.uniform(lo, hi) * MS)

    def force(self, service: str, env: str, database: str, version: int) -> None:
        """`migrate force V`: prints nothing in default mode, so it is only a change of state."""
        st = self.state[(service, env, database)]
        st.version, st.dirty = version, False

    def own_ns(self, spec: dict[str, Any], version: int, direction: str) -> int:
        """A script's own run time: its typical time (scaled by env and weight) with lognormal noise."""
        m = self.sources[spec["service"]][version]
        override = spec.get("own", {}).get((version, direction))
        if override is not None:
            ms = override * math.exp(self.rng.gauss(0, 0.05))
        else:
            base = m.up_ms if direction == "u" else m.down_ms
            ms = base * self.scale[m.heavy][spec["env"]] * math.exp(self.rng.gauss(0, 0.09))
        return int(ms * MS) + self.rng.randrange(1000)

    def simulate(self, spec: dict[str, Any]) -> Run:
        run = Run(spec)
        st = self.state[(spec["service"], spec["env"], spec["db"])]
        src = self.sources[spec["service"]]
        verbose = spec.get("verbose", False)
        out = run.lines
        usec, msec = self.usec, self.msec

        def emit(ns: int, text: str, prefix: bool = True, err: bool = False) -> int:
            if out:
                ns = max(ns, out[-1][0] + usec(2, 25))
            out.append((ns, (verbose_prefix(ns) + text) if (verbose and prefix) else text))
            if err:
                run.err_idx.add(len(out) - 1)
            return ns

        def fatal(ns: int, text: str, outcome: str, error_class: str) -> None:
            """Println("error:", err): first line prefixed, continuation lines bare."""
            parts = text.split("\n")
            ns = emit(ns, "error: " + parts[0], err=True)
            for p in parts[1:]:
                ns = emit(ns + usec(3, 12), p, prefix=False, err=True)
            run.error_text, run.error_ns = text, out[-len(parts)][0]
            run.exit_code, run.outcome, run.error_class = 1, outcome, error_class
            run.end_ns = ns + usec(200, 900)

        t = spec["t"]
        for noise in spec.get("noise_before") or []:
            # wait-for-it output is not a Go log line: never a verbose prefix
            t = emit(t + msec(2, 9), noise, prefix=False)
        t_m = t + (msec(250, 2400) if spec.get("noise_before") else 0)
        if spec.get("noise_after_wait"):
            waited = (t_m - spec["t"]) // NS
            t_m = emit(t_m, f"wait-for-it: db:5432 is available after {waited} seconds", prefix=False)
            t_m += msec(3, 12)

        # -- errors before migrate.New returns (cannot connect, DNS, bad DSN)
        if spec.get("pre_error"):
            fatal(t_m + msec(*spec.get("pre_error_delay_ms", (1.0, 4.0))), spec["pre_error"], "error",
                  spec["pre_error_class"])
            return run

        start = t_m + msec(8, 35)  # connect + ensureVersionTable; 'Finished after' counts from here
        cmd = spec["cmd"]

        if cmd == "version":
            ns = start + usec(400, 1800)
            if st.version is None:
                fatal(ns, "no migration", "error", "no_migration")
                return run
            emit(ns, f"{st.version} (dirty)" if st.dirty else f"{st.version}")
            if verbose:
                emit(ns + usec(30, 90), "Closing source and database")
            run.outcome = "version"
            run.end_ns = out[-1][0] + usec(200, 700)
            return run

        t_l = start + usec(600, 2600)  # lock acquired
        if spec.get("lock_timeout"):
            fatal(start + 15 * NS + usec(400, 2500), "timeout: can't acquire database lock", "locked", "lock_timeout")
            return run
        if st.dirty:
            fatal(t_l + usec(500, 1500), f"Dirty database version {st.version}. Fix and force version.", "dirty",
                  "dirty")
            return run

        versions = sorted(src)
        head = spec.get("head", max(versions))
        cur = st.version or 0
        plan: list[tuple[int, str]] = []
        short = 0
        if cmd == "up":
            pending = [v for v in versions if cur < v <= head]
            n = spec.get("n")
            plan = [(v, "u") for v in (pending[:n] if n else pending)]
            if n and n > len(pending):
                short = n - len(pending)
        elif cmd == "down":
            below = [v for v in reversed(versions) if v <= cur]
            n = spec["n"]
            plan = [(v, "d") for v in below[:n]]
            short = max(0, n - len(below))
        elif cmd == "goto":
            target = spec["n"]
            if target not in src and target != 0:
                msg = (f"no migration found for version {target}: read down for version {target} .: "
                       "file does not exist")
                if verbose:
                    emit(t_l + usec(500, 1200), "error: " + msg, err=True)
                    fatal(t_l + usec(1300, 2000), msg, "error", "missing_file")
                else:
                    # logErr prints without a newline, then the fatal Println: one physical line
                    ns = emit(t_l + usec(500, 1500), "error: " + msg + "error: " + msg, err=True)
                    run.error_text, run.error_ns, run.error_class = msg, ns, "missing_file"
                    run.exit_code, run.outcome, run.end_ns = 1, "error", ns + usec(200, 800)
                return run
            if target < cur:
                plan = [(v, "d") for v in reversed(versions) if target < v <= cur]
            else:
                plan = [(v, "u") for v in versions if cur < v <= target]
        else:
            raise ValueError(f"{cmd}: the simulator runs up, down, goto and version")

        if not plan:
            ns = emit(t_l + usec(700, 2500), "no change")
            if verbose:
                end = ns + usec(60, 200)
                emit(end, f"Finished after {go_duration(end - start)}")
                emit(end + usec(30, 80), "Closing source and database")
            run.outcome = "no_change"
            run.end_ns = out[-1][0] + usec(200, 700)
            return run

        def label(v: int, d: str) -> tuple[str, bool]:
            m = src[v]
            return f"{v}/{d} {m.name if (d == 'u' or m.has_down) else '<empty>'}", (d == "u" or m.has_down)

        b0 = t_l + usec(60, 300)
        buf_at: dict[int, int] = {}

        def buffer(i: int, ns: int) -> None:
            buf_at[i] = ns
            lab, has_body = label(*plan[i])
            if verbose:
                emit(ns, ("Start buffering " if has_body else "Scheduled ") + lab)

        ns = b0
        for i in range(min(len(plan), PREFETCH_QUEUE)):
            buffer(i, ns)
            ns += usec(15, 70)
        prev_end = ns + usec(1100, 2200)
        kill_at = spec.get("kill_at")
        fail = spec.get("fail")
        for i, (v, d) in enumerate(plan):
            lab, has_body = label(v, d)
            bk = buf_at[i]
            if not has_body:
                fin = prev_end + usec(150, 500) + usec(200, 1400)
                ran = fin - bk
                if verbose:
                    emit(fin, f"Finished {lab} (read 0s, ran {go_duration(ran)})")
                else:
                    emit(fin, f"{lab} ({go_duration(ran)})")
            else:
                e = max(prev_end + usec(150, 600), bk + usec(900, 1800))
                read = e - bk + usec(20, 350)
                if verbose:
                    emit(e, f"Read and execute {lab}")
                if kill_at == v:
                    st.version, st.dirty = v, True
                    run.exit_code, run.outcome, run.error_class = 143, "interrupted", "interrupted"
                    run.end_ns = e + msec(800, 2500)  # SIGTERM arrives mid-script
                    return run
                if fail and fail[0] == v:
                    st.version, st.dirty = v, True
                    failure = self.failures[fail[1]]
                    fatal(bk + read + msec(*failure.own_ms), failure.text(), "failed", failure.error_class)
                    return run
                own = self.own_ns(spec, v, d)
                fin = bk + read + own
                if verbose:
                    emit(fin, f"Finished {lab} (read {go_duration(read)}, ran {go_duration(own)})")
                else:
                    emit(fin, f"{lab} ({go_duration(read + own)})")
            run.applied.append(f"{v}/{d}")
            if d == "u":
                st.version = v
            else:
                lower = [x for x in versions if x < v]
                st.version = lower[-1] if lower else None
            prev_end = out[-1][0]
            if i + PREFETCH_QUEUE < len(plan):
                buffer(i + PREFETCH_QUEUE, prev_end + usec(10, 40))
        end = prev_end + usec(100, 450)
        if short:
            fatal(end, f"limit {short} short", "error", "limit_short")
            return run
        if verbose:
            emit(end, f"Finished after {go_duration(end - start)}")
            emit(end + usec(30, 80), "Closing source and database")
        run.end_ns = out[-1][0] + usec(200, 700)
        return run

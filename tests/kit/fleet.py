"""Fleets of services × envs × databases running migrate, written as the logs a test or a benchmark reads.

* `Fleet`: runs placed by hand (`up`, `fail`, `dirty`, `killed`, …), one Docker json-file log per run under
  `env=<env>/service=<svc>/database=<db>/`. Deterministic and noise-free: a script's own time is exactly the
  one given, so a test can assert on baselines and findings.
* `SERVICES`, `script_names`: the benchmark fleet's services and migration names (bench_ingest writes its
  runs as Fluent Bit records with `corpus.pod_run`; bench_analyze builds its warehouse from the same fleet).
* The demo fleet (sample_logs/generate.py) schedules `migrate.Migrate` runs with seeded noise instead.
"""

from __future__ import annotations

import hashlib
import random
from datetime import datetime, timedelta
from pathlib import Path
from typing import NamedTuple

from .envelopes import docker_line, write_lines
from .gofmt import go_duration, verbose_prefix
from .migrate import Failure

Script = tuple[int, str, float]  # version, name (or '<empty>'), own time in ms
PREFETCH = 10  # migrate's default -prefetch

# What postgres says for each error class, and the SQL body migrate embeds in the error (§2.2).
ERRORS = {
    "syntax_error": Failure('syntax error at or near "total_cents" (column 5)', 4, (
        "CREATE TABLE invoices (\n    id          BIGSERIAL PRIMARY KEY,\n"
        "    order_id    BIGINT NOT NULL REFERENCES orders (id)\n    total_cents INTEGER NOT NULL,\n"
        "    issued_at   TIMESTAMPTZ NOT NULL DEFAULT now()\n);\n"), 'syntax error at or near "total_cents"',
        (1.0, 1.0), "syntax_error"),
    "already_exists": Failure('relation "invoices" already exists', 0, (
        "CREATE TABLE invoices (\n    id          BIGSERIAL PRIMARY KEY,\n    total_cents INTEGER NOT NULL\n);\n"),
        'relation "invoices" already exists', (1.0, 1.0), "already_exists"),
    "statement_timeout": Failure("canceling statement due to statement timeout", 0,
                                 "CREATE INDEX orders_created_at_idx ON orders (created_at);\n",
                                 "canceling statement due to statement timeout", (1.0, 1.0), "statement_timeout"),
}


def _ns(ms: float) -> int:
    return round(ms * 1_000_000)


class Fleet:
    """Writes one log file per migrate run under `root`; `runs` lists the files written, in call order."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.runs: list[Path] = []

    # -- the runs ---------------------------------------------------------------------------------------------
    def up(self, env: str, service: str, database: str, at: datetime, scripts: list[Script]) -> Path:
        """A successful default-mode `up`: one APPLIED line per script."""
        lines, _ = self._applied(at, "u", scripts)
        return self._write(env, service, database, at, lines)

    def down(self, env: str, service: str, database: str, at: datetime, scripts: list[Script]) -> Path:
        """A default-mode `down N`: one `N/d name (DUR)` line per script, `<empty>` when it has no down file."""
        lines, _ = self._applied(at, "d", scripts)
        return self._write(env, service, database, at, lines)

    def fail(self, env: str, service: str, database: str, at: datetime, version: int, name: str,
             error_class: str = "syntax_error", applied_before: list[Script] | None = None) -> Path:
        """`up` that applies `applied_before`, then fails in `version` with migrate's multi-line postgres error.

        Default mode: the error names no version (`version` and `name` only document the scenario).
        """
        lines, end = self._applied(at, "u", applied_before or [])
        end += timedelta(milliseconds=40)
        text = ("error: " + ERRORS[error_class].text()).split("\n")
        lines += [(end + timedelta(microseconds=20 * i), t) for i, t in enumerate(text)]
        return self._write(env, service, database, at, lines)

    def dirty(self, env: str, service: str, database: str, at: datetime, version: int) -> Path:
        """Any `up`/`down`/`goto` on a dirty database."""
        return self._line(env, service, database, at, f"error: Dirty database version {version}. Fix and force version.")

    def no_change(self, env: str, service: str, database: str, at: datetime) -> Path:
        return self._line(env, service, database, at, "no change")

    def version(self, env: str, service: str, database: str, at: datetime, version: int, dirty: bool = False) -> Path:
        return self._line(env, service, database, at, f"{version} (dirty)" if dirty else str(version))

    def lock_timeout(self, env: str, service: str, database: str, at: datetime, lock_timeout_s: float = 15) -> Path:
        """A second runner gives up on the advisory lock after -lock-timeout seconds."""
        return self._line(env, service, database, at + timedelta(seconds=lock_timeout_s),
                          "error: timeout: can't acquire database lock")

    def killed(self, env: str, service: str, database: str, at: datetime, version: int, name: str,
               applied_before: list[Script] | None = None) -> Path:
        """A `-verbose up` killed (SIGTERM/OOM) while running `version`: no FINISHED, no `Finished after`."""
        before = applied_before or []
        lines = [(at, verbose_prefix(at) + f"Start buffering {v}/u {n}") for v, n, _ in [*before, (version, name, 0)]]
        t = at
        for v, n, own in before:
            lines.append((t, verbose_prefix(t) + f"Read and execute {v}/u {n}"))
            read = t - at
            t += timedelta(microseconds=_ns(own) // 1000)
            lines.append((t, verbose_prefix(t) + f"Finished {v}/u {n} (read {go_duration(_ns(read.total_seconds() * 1000))}, "
                                                 f"ran {go_duration(_ns(own))})"))
        lines.append((t, verbose_prefix(t) + f"Read and execute {version}/u {name}"))
        return self._write(env, service, database, at, lines)

    # -- plumbing ---------------------------------------------------------------------------------------------
    def _applied(self, at: datetime, d: str, scripts: list[Script]) -> tuple[list[tuple[datetime, str]], datetime]:
        # APPLIED shows read + ran, and `read` counts from when the script was queued: the first -prefetch
        # (10) scripts are queued at once, so their values are cumulative; later ones are queued as the
        # queue drains, so theirs cover only the last ~10 scripts (the arrival times still step by own time).
        lines, ends, cumulative = [], [], 0
        start = at + timedelta(milliseconds=5)  # connecting and reading the version table
        for k, (version, name, own_ms) in enumerate(scripts):
            cumulative += _ns(own_ms)
            ends.append(cumulative)
            shown = cumulative - (ends[k - PREFETCH - 1] if k > PREFETCH else 0)
            lines.append((start + timedelta(microseconds=cumulative // 1000),
                          f"{version}/{d} {name} ({go_duration(shown)})"))
        return lines, start + timedelta(microseconds=cumulative // 1000)

    def _line(self, env: str, service: str, database: str, at: datetime, text: str) -> Path:
        return self._write(env, service, database, at, [(at + timedelta(milliseconds=5), text)])

    def _write(self, env: str, service: str, database: str, at: datetime, lines: list[tuple[datetime, str]]) -> Path:
        run_id = hashlib.sha256(f"{env}/{service}/{database}/{at.isoformat()}/{len(self.runs)}".encode()).hexdigest()
        path = self.root / f"env={env}" / f"service={service}" / f"database={database}" / f"{run_id}-json.log"
        write_lines(path, (docker_line(text, t) for t, text in lines))
        self.runs.append(path)
        return path


# ------------------------------------------------------------------------------------------- benchmark fleet


class Service(NamedTuple):
    name: str
    namespace: str
    ts_versions: bool  # `migrate create -format 20060102150405` versions instead of 1, 2, 3


SERVICES = [Service(name, ns, i in (1, 4, 6, 9, 11)) for i, (name, ns) in enumerate([
    ("orders", "shop"), ("billing", "billing"), ("auth", "identity"), ("catalog", "shop"),
    ("shipping", "logistics"), ("inventory", "logistics"), ("payments", "billing"), ("users", "identity"),
    ("notifications", "comms"), ("search", "shop"), ("reporting", "analytics"), ("ledger", "billing"),
    ("pricing", "shop"), ("checkout", "shop"), ("accounts", "identity"), ("tenants", "platform"),
    ("audit", "platform"), ("files", "storage"), ("messaging", "comms"), ("scheduler", "platform"),
])]
VERBS = ["create", "add", "drop", "alter", "backfill", "rename", "index", "partition", "seed", "widen"]
NOUNS = ["users", "orders", "order_items", "invoices", "payments", "accounts", "sessions", "audit_log", "products",
         "prices", "shipments", "addresses", "tokens", "events", "refunds", "ledger_entries", "coupons", "carts"]
SUFFIX = ["table", "index", "column", "fk", "constraint", "view", "trigger", "defaults", "", "", ""]


def script_names(rng: random.Random, n: int) -> list[str]:
    """`n` migration names such as `backfill_invoices_column` or `add_tokens`."""
    return [f"{rng.choice(VERBS)}_{rng.choice(NOUNS)}" + (f"_{s}" if (s := rng.choice(SUFFIX)) else "")
            for _ in range(n)]

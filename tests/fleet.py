"""Build a fleet's golang-migrate logs in code: one Docker json-file log per migrate run.

Each run is written to `env=<env>/service=<svc>/database=<db>/<run-id>-json.log` under the root, one
`{"log": "<line>\\n", "stream": "stderr", "time": "<RFC3339Nano>Z"}` record per physical line, exactly as
migrate prints it (golang-migrate-log-format.md §3): default-mode APPLIED lines carry near-cumulative
durations (each value = the previous one + this script's own time), `force` prints nothing, a killed run
just stops. Everything is deterministic; the envelope time advances by each script's own time.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from pathlib import Path

Script = tuple[int, str, float]  # version, name (or '<empty>'), own time in ms
PREFETCH = 10  # migrate's default -prefetch

# What postgres says for each error class, and the SQL body migrate embeds in the error (§2.2).
_ERRORS = {
    "syntax_error": ('syntax error at or near "total_cents" (column 5)', 4, (
        "CREATE TABLE invoices (", "    id          BIGSERIAL PRIMARY KEY,",
        "    order_id    BIGINT NOT NULL REFERENCES orders (id)", "    total_cents INTEGER NOT NULL,",
        "    issued_at   TIMESTAMPTZ NOT NULL DEFAULT now()", ");"), 'syntax error at or near "total_cents"'),
    "already_exists": ('relation "invoices" already exists', 0, (
        "CREATE TABLE invoices (", "    id          BIGSERIAL PRIMARY KEY,", "    total_cents INTEGER NOT NULL",
        ");"), 'relation "invoices" already exists'),
    "statement_timeout": ("canceling statement due to statement timeout", 0, (
        "CREATE INDEX orders_created_at_idx ON orders (created_at);",),
        "canceling statement due to statement timeout"),
}


def go_duration(ns: int) -> str:
    """Go's time.Duration.String(): `0s`, `850ns`, `523.4µs`, `23.619417ms`, `1.601587s`, `1m2.5s`, `1h0m0s`."""
    def frac(value: int, unit: int) -> str:
        whole, rest = divmod(value, unit)
        digits = str(rest).rjust(len(str(unit)) - 1, "0").rstrip("0")
        return f"{whole}.{digits}" if digits else str(whole)

    if ns == 0:
        return "0s"
    if ns < 1_000:
        return f"{ns}ns"
    if ns < 1_000_000:
        return frac(ns, 1_000) + "µs"
    if ns < 1_000_000_000:
        return frac(ns, 1_000_000) + "ms"
    hours, rest = divmod(ns, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    seconds = frac(rest, 1_000_000_000) + "s"
    if hours:
        return f"{hours}h{minutes}m{seconds}"
    return f"{minutes}m{seconds}" if minutes else seconds


def rfc3339nano(t: datetime) -> str:
    """Docker's `time`: RFC3339Nano in UTC, trailing zeros of the fraction trimmed (as Go does)."""
    base = t.strftime("%Y-%m-%dT%H:%M:%S")
    frac = f"{t.microsecond:06d}000".rstrip("0")
    return f"{base}.{frac}Z" if frac else f"{base}Z"


def stamp(t: datetime) -> str:
    """migrate's -verbose prefix (Go `log` default flags, UTC in the official image)."""
    return t.strftime("%Y/%m/%d %H:%M:%S ")


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
        message, line_no, body, detail = _ERRORS[error_class]
        end += timedelta(milliseconds=40)
        text = [f"error: migration failed: {message} in line {line_no}: {body[0]}", *body[1:],
                f" (details: pq: {detail})"]
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
        lines = [(at, stamp(at) + f"Start buffering {v}/u {n}") for v, n, _ in [*before, (version, name, 0)]]
        t = at
        for v, n, own in before:
            lines.append((t, stamp(t) + f"Read and execute {v}/u {n}"))
            read = t - at
            t += timedelta(microseconds=_ns(own) // 1000)
            lines.append((t, stamp(t) + f"Finished {v}/u {n} (read {go_duration(_ns(read.total_seconds() * 1000))}, "
                                        f"ran {go_duration(_ns(own))})"))
        lines.append((t, stamp(t) + f"Read and execute {version}/u {name}"))
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
        folder = self.root / f"env={env}" / f"service={service}" / f"database={database}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{run_id}-json.log"
        with path.open("w", encoding="utf-8") as f:
            for t, text in lines:
                record = json.dumps({"log": text + "\n", "stream": "stderr", "time": rfc3339nano(t)},
                                    ensure_ascii=False, separators=(",", ":"))
                # Go's encoding/json escapes HTML characters: `<empty>` is stored as `\u003cempty\u003e`.
                f.write(record.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026") + "\n")
        self.runs.append(path)
        return path

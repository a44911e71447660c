"""`migrate-lens wrap -- migrate ARGS...`: run the migrate CLI, pass its output through unchanged, and append
what migrate itself never says — when it started and ended, where, with which command, and how it exited —
as `migrate-lens/v1` events that ingest into the same runs as the bare output would.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from pipeline.core.errors import SourceError
from pipeline.core.redact import redact

SCHEMA = "migrate-lens/v1"
COMMANDS = {"up", "down", "goto", "force", "version", "drop", "create"}
# migrate's flags that take a value (`-path X`), so the command is the first bare word after them.
_VALUE_FLAGS = {"-source", "-path", "-database", "-prefetch", "-lock-timeout", "-ext", "-dir", "-digits",
                "-format", "-tz"}


@dataclass(frozen=True)
class WrapResult:
    run_id: str
    exit_code: int
    signal: str | None
    lines: int
    events_file: Path


def command_of(args: list[str]) -> str | None:
    """The migrate subcommand in `args` (`up`, `down`, `goto`, …), skipping flags and their values."""
    skip = False
    for arg in args[1:]:
        if skip:
            skip = False
            continue
        flag = arg.split("=", 1)[0]
        if arg.startswith("-"):
            skip = flag in _VALUE_FLAGS and "=" not in arg
            continue
        return arg
    return None


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class _EventWriter:
    """Appends one JSON object per line, flushed at once, thread-safe (stdout and stderr readers share it)."""

    def __init__(self, path: Path, base: dict[str, Any]) -> None:
        self.file: IO[str] = path.open("a", encoding="utf-8")
        self.base = base
        self.lock = threading.Lock()
        self.lines = 0

    def write(self, event: str, **fields: Any) -> None:
        record = {"schema": SCHEMA, "ts": _now(), **self.base, "event": event, **fields}
        with self.lock:
            self.file.write(json.dumps(record, ensure_ascii=False) + "\n")
            self.file.flush()
            if event == "line":
                self.lines += 1

    def close(self) -> None:
        self.file.close()


def _pump(stream: IO[bytes], sink: IO[bytes], writer: _EventWriter) -> None:
    """Copy the child's output through unchanged and record every physical line (a last one without a
    newline too: migrate's non-fatal errors have none)."""
    for raw in iter(stream.readline, b""):
        sink.write(raw)
        sink.flush()
        text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        writer.write("line", line=redact(text))


def wrap(args: list[str], *, events: Path, env: str | None, service: str | None, database: str | None) -> WrapResult:
    """Run `args`, record its run, and return how it exited (the CLI exits with the same code)."""
    if not args:
        raise SourceError("wrap: nothing to run (usage: migrate-lens wrap [options] -- migrate ARGS...)")
    run_id = uuid.uuid4().hex
    base = {"run_id": run_id, **{k: v for k, v in (("env", env), ("service", service), ("database", database)) if v}}
    try:
        writer = _EventWriter(events, base)
    except OSError as e:
        raise SourceError(f"{events}: cannot write events ({e.strerror}); check --events") from None
    writer.write("run_start", command=command_of(args), args=[redact(a) for a in args],
                 host=os.uname().nodename if hasattr(os, "uname") else None)
    try:
        child = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except FileNotFoundError:
        writer.write("run_end", exit_code=127, error=f"{args[0]}: not found")
        writer.close()
        raise SourceError(f"{args[0]}: not found (is migrate on PATH?)") from None
    received: list[int] = []

    def forward(signum: int, _frame: object) -> None:
        # Kubernetes sends SIGTERM to the wrapper; migrate must get it too, and the record must say so.
        received.append(signum)
        child.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)}
    pumps = [threading.Thread(target=_pump, args=(child.stdout, sys.stdout.buffer, writer), daemon=True),
             threading.Thread(target=_pump, args=(child.stderr, sys.stderr.buffer, writer), daemon=True)]
    for t in pumps:
        t.start()
    try:
        code = child.wait()
        for t in pumps:
            t.join()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    name = signal.Signals(received[0]).name if received else (signal.Signals(-code).name if code < 0 else None)
    writer.write("run_end", exit_code=code, signal=name)
    writer.close()
    return WrapResult(run_id, code, name, writer.lines, events)

"""Start `migrate-lens ingest` in a child process and SIGKILL it once some batches are committed."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def cli() -> list[str]:
    """The installed console script of the checkout's venv, else the package run by this interpreter."""
    script = ROOT / ".venv" / "bin" / "migrate-lens"
    return [str(script)] if script.exists() else [sys.executable, "-c", "from pipeline.cli import main; main()"]


def ingest_killed_midway(db: Path, config: Path, logs: Path, *, wal_bytes: int, timeout: float = 120) -> int:
    """Run the ingest, SIGKILL it once its WAL holds `wal_bytes` (batches commit into it), and return the exit
    code: `-signal.SIGKILL` when it was killed mid-run, 0 when it finished first (the input was too small)."""
    proc = subprocess.Popen([*cli(), "--config", str(config), "--db", str(db), "--no-progress", "ingest", str(logs)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    wal = Path(str(db) + ".wal")
    while time.monotonic() < deadline and proc.poll() is None:
        if wal.exists() and wal.stat().st_size > wal_bytes:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    return proc.wait()

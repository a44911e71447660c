"""The `lint` benchmark: migrate-lens lint against squawk and against a bare pglast parse loop (the floor).

    .venv/bin/python tests/bench_lint.py [--files 700] [--repeat 5]

A generated golang-migrate folder (`--files` up and down files, cached under .bench/) is linted by each side;
each side's best of `--repeat` wall times is reported. The whole command is timed as a user runs it (process
start and imports included) for `migrate-lens lint` and `squawk` (squawk-cli from PyPI, a Rust binary); the
in-process times (work only) put lint() next to the floor: read every file and pglast.parser.parse_sql it.
tests/bench.py runs it as its `lint` case. Not collected by pytest.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# What real migration folders hold: tables, columns, indexes, constraints, backfills, functions, types.
_UPS = [
    "CREATE TABLE IF NOT EXISTS t{n} (\n  id bigserial PRIMARY KEY,\n  account_id bigint NOT NULL,\n"
    "  created_at timestamptz NOT NULL DEFAULT now(),\n  payload jsonb\n);\n",
    "SET lock_timeout = '5s';\nALTER TABLE accounts ADD COLUMN IF NOT EXISTS c{n} text;\n",
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS accounts_c{n} ON accounts (created_at);\n",
    "ALTER TABLE orders ADD CONSTRAINT orders_c{n} FOREIGN KEY (account_id) REFERENCES accounts (id) NOT VALID;\n",
    "UPDATE orders SET status = 'pending' WHERE status IS NULL AND id % {n} = 0;\n",
    "CREATE OR REPLACE FUNCTION f{n}() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n"
    "  NEW.updated_at := now();\n  RETURN NEW;\nEND;\n$$;\n",
    "DO $$ BEGIN\n  IF NOT EXISTS (SELECT 1 FROM pg_type WHERE typname = 'e{n}') THEN\n"
    "    CREATE TYPE e{n} AS ENUM ('a', 'b');\n  END IF;\nEND $$;\n",
    "ALTER TABLE accounts ALTER COLUMN c{n} TYPE varchar(200);\n",
    "COMMENT ON TABLE accounts IS 'accounts'\n  ' of version {n}';\n",
]
_DOWNS = [
    "DROP TABLE IF EXISTS t{n};\n", "ALTER TABLE accounts DROP COLUMN IF EXISTS c{n};\n",
    "DROP INDEX CONCURRENTLY IF EXISTS accounts_c{n};\n", "ALTER TABLE orders DROP CONSTRAINT IF EXISTS orders_c{n};\n",
    "-- a backfill: nothing to undo\n", "DROP FUNCTION IF EXISTS f{n}();\n", "DROP TYPE IF EXISTS e{n};\n",
    "ALTER TABLE accounts ALTER COLUMN c{n} TYPE text;\n", "COMMENT ON TABLE accounts IS NULL;\n",
]


def write_folder(folder: Path, files: int, seed: int = 18) -> None:
    rng = random.Random(seed)
    folder.mkdir(parents=True)
    for v in range(1, files // 2 + 1):
        k = rng.randrange(len(_UPS))
        extra = rng.randrange(3)  # most files hold one to three statements
        up = "".join(_UPS[(k + j) % len(_UPS)].format(n=v * 10 + j) for j in range(extra + 1))
        down = "".join(_DOWNS[(k + j) % len(_DOWNS)].format(n=v * 10 + j) for j in range(extra + 1))
        (folder / f"{v:06d}_change_{v}.up.sql").write_text(up, encoding="utf-8")
        (folder / f"{v:06d}_change_{v}.down.sql").write_text(down, encoding="utf-8")


def folder_of(files: int) -> Path:
    folder = ROOT / ".bench" / f"lint-{files}-files"
    if not folder.exists():
        write_folder(folder.with_name(folder.name + ".tmp"), files)
        folder.with_name(folder.name + ".tmp").replace(folder)
    return folder


def _best(run: Any, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        run()
        times.append(time.perf_counter() - t)
    return min(times)


def measure(files: int = 700, repeat: int = 5) -> dict[str, Any]:
    """Best-of-`repeat` seconds of each side on the generated folder; None where a side cannot run."""
    from pglast import parser

    from pipeline.lint import lint

    folder = folder_of(files)
    paths = sorted(str(p) for p in folder.iterdir())
    bin_dir = Path(sys.executable).parent
    squawk = shutil.which("squawk", path=str(bin_dir)) or shutil.which("squawk")
    ours_cmd = [str(bin_dir / "migrate-lens"), "lint", str(folder), "--fail-on", "never"]
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}

    def floor() -> None:
        for p in paths:
            parser.parse_sql(Path(p).read_text(encoding="utf-8"))

    issues = len(lint(folder).issues)
    return {
        "files": len(paths), "issues": issues,
        "ours_process": _best(lambda: subprocess.run(ours_cmd, check=True, **quiet), repeat),
        "squawk_process": _best(lambda: subprocess.run([squawk, *paths], **quiet), repeat) if squawk else None,
        "ours_work": _best(lambda: lint(folder), repeat),
        "floor_work": _best(floor, repeat),
        "squawk_version": subprocess.run([squawk, "--version"], capture_output=True, text=True).stdout.strip()
        if squawk else "squawk not installed",
    }


def report(m: dict[str, Any]) -> list[str]:
    squawk = m["squawk_process"]
    vs_squawk = f"{m['ours_process'] / squawk:.1f}x squawk" if squawk else "squawk not installed"
    return [
        f"lint of a generated folder of {m['files']} files ({m['issues']} issues), best of runs, on "
        f"{os.cpu_count()} cores; {m['squawk_version']}",
        f"  whole command:  migrate-lens lint {m['ours_process']:.3f} s, squawk "
        f"{'-' if squawk is None else f'{squawk:.3f} s'}  ->  ours = {vs_squawk} (target <= 5x)",
        f"  in-process:     lint() {m['ours_work']:.3f} s, bare pglast parse loop {m['floor_work']:.3f} s  ->  "
        f"ours = {m['ours_work'] / m['floor_work']:.1f}x the floor",
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=700)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    print("\n".join(report(measure(args.files, args.repeat))))


if __name__ == "__main__":
    main()

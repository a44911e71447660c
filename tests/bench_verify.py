"""The `verify` case of `make bench`: a generated, sound golang-migrate folder of N versions (tables, columns,
indexes, views, functions, rows), verified on the throwaway cluster; the floor applies every up once, on the
same kind of cluster, as `migrate up` would. Times are reported, never judged.

    .venv/bin/python tests/bench_verify.py --versions 300     # alone, without the rest of the bench
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def write_folder(path: Path, versions: int) -> int:
    """`versions` up/down pairs cycling through five kinds of change, each idempotent with an exact down;
    returns the number of files written."""
    path.mkdir(parents=True, exist_ok=True)
    table = "t_0"
    for n in range(1, versions + 1):
        kind = (n - 1) % 5
        if kind == 0:
            table = f"t_{n}"
            up = (f"CREATE TABLE IF NOT EXISTS {table} (id bigserial PRIMARY KEY, name text NOT NULL, "
                  f"created_at timestamptz NOT NULL DEFAULT now());")
            down = f"DROP TABLE IF EXISTS {table};"
        elif kind == 1:
            up = f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS c_{n} integer NOT NULL DEFAULT 0;"
            down = f"ALTER TABLE {table} DROP COLUMN IF EXISTS c_{n};"
        elif kind == 2:
            up = f"CREATE INDEX IF NOT EXISTS i_{n} ON {table} (name, created_at);"
            down = f"DROP INDEX IF EXISTS i_{n};"
        elif kind == 3:
            up = (f"CREATE OR REPLACE VIEW v_{n} AS SELECT id, name FROM {table} WHERE name <> '';\n"
                  f"CREATE OR REPLACE FUNCTION f_{n}(x integer) RETURNS integer LANGUAGE sql IMMUTABLE "
                  f"AS $$ SELECT x + {n} $$;")
            down = f"DROP FUNCTION IF EXISTS f_{n}(integer);\nDROP VIEW IF EXISTS v_{n};"
        else:
            up = (f"DELETE FROM {table} WHERE name LIKE 'seed-{n}-%';\n"
                  f"INSERT INTO {table} (name) SELECT 'seed-{n}-' || g FROM generate_series(1, 50) g;")
            down = f"DELETE FROM {table} WHERE name LIKE 'seed-{n}-%';"
        (path / f"{n:04d}_change_{n}.up.sql").write_text(up + "\n")
        (path / f"{n:04d}_change_{n}.down.sql").write_text(down + "\n")
    return 2 * versions


def job_verify(a: dict[str, Any]) -> dict[str, Any]:
    from pipeline.api import verify

    t = time.perf_counter()
    result = verify(Path(a["folder"]))
    return {"wall": time.perf_counter() - t, "note": result.summary(), "ok": result.ok}


def job_verify_floor(a: dict[str, Any]) -> dict[str, Any]:
    """Start the same throwaway cluster and apply every up once, in one database: what `migrate up` costs."""
    from pipeline.verify.cluster import embedded_cluster
    from pipeline.verify.folder import read_folder
    from pipeline.verify.postgres import Server, migrate_step

    folder = read_folder(Path(a["folder"]))
    t = time.perf_counter()
    with embedded_cluster() as cluster:
        server = Server(cluster.conninfo, shown_as="floor")
        try:
            name = server.create("floor")
            with server.connect(name) as con:
                con.execute("CREATE TABLE schema_migrations (version bigint PRIMARY KEY, dirty boolean NOT NULL)")
                for m in folder.migrations:
                    error = migrate_step(con, m.up.read_text(), to_version=m.version, multi_statement=False)
                    if error:
                        raise RuntimeError(f"{m.up.name}: {error}")
        finally:
            server.close()
    return {"wall": time.perf_counter() - t, "note": f"{len(folder.migrations)} ups applied once"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--versions", type=int, default=300)
    ap.add_argument("--folder", type=Path, default=ROOT / ".bench" / "verify-folder")
    args = ap.parse_args()
    import shutil

    shutil.rmtree(args.folder, ignore_errors=True)
    write_folder(args.folder, args.versions)
    ours = job_verify({"folder": str(args.folder)})
    floor = job_verify_floor({"folder": str(args.folder)})
    print(f"verify, {args.versions} versions: {ours['wall']:.1f} s ({ours['wall'] / args.versions:.2f} s per "
          f"version; ok={ours['ok']}); floor (every up once): {floor['wall']:.1f} s\n{ours['note']}")


if __name__ == "__main__":
    main()

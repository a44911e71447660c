"""verify's PostgreSQL: the embedded default (started as root here and in CI), removed afterwards also on
Ctrl-C and SIGTERM; --database URL used only through scratch databases, its password never shown; no
server binaries as one clear line."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.core.errors import ServerError
from pipeline.verify.cluster import find_bindir

from .test_verify import USERS, folder

CLI = [str(Path(sys.executable).parent / "migrate-lens")]


def _cli(*args: str, env: dict[str, str] | None = None, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env={**os.environ, **(env or {})},
                          timeout=300, check=False, **kwargs)


def _postgres_processes(marker: str) -> list[str]:
    out = subprocess.run(["ps", "-eo", "user,args"], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if marker in line and "postgres" in line]


@pytest.fixture
def scratch() -> Iterator[Path]:
    """A TMPDIR the server's unprivileged user may traverse (pytest's own tmp_path, under root, it may not)."""
    path = Path(tempfile.mkdtemp(prefix="verify-tmpdir-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_the_embedded_default_starts_as_an_unprivileged_user_and_leaves_nothing(postgres, tmp_path, scratch):
    done = _cli("verify", str(folder(tmp_path / "m", USERS)), "--format", "json", env={"TMPDIR": str(scratch)})
    assert done.returncode == 0, done.stderr
    server = json.loads(done.stdout)["server"]
    assert "a throwaway cluster from " in server
    if os.geteuid() == 0:  # as in CI: initdb refuses root, so the server ran as another user
        assert server.endswith(("(run as postgres)", "(run as nobody)"))
    assert list(scratch.iterdir()) == [] and _postgres_processes(str(scratch)) == []


def test_a_private_tmpdir_under_root_does_not_stop_the_embedded_default(postgres, tmp_path):
    private = tmp_path / "private"  # under pytest's root-only base dir, as root's TMPDIR often is
    private.mkdir(mode=0o700)
    done = _cli("verify", str(folder(tmp_path / "m", USERS)), env={"TMPDIR": str(private)})
    assert done.returncode == 0, done.stderr
    assert list(private.iterdir()) == []


def _socket_in(scratch) -> bool:
    """The cluster's unix socket exists in a folder under `scratch` (which also holds passing temp files)."""
    for d in scratch.iterdir():
        try:
            if d.is_dir() and any(p.name.startswith(".s.PGSQL") for p in d.iterdir()):
                return True
        except FileNotFoundError:  # a temp folder that went between the two listings
            continue
    return False


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_verify_stops_the_cluster_and_removes_its_files(postgres, tmp_path, scratch, sig):
    slow = folder(tmp_path / "m", {**USERS, "2_slow.up.sql": "SELECT pg_sleep(60);", "2_slow.down.sql": "SELECT 1;"})
    child = subprocess.Popen([*CLI, "verify", str(slow)], env={**os.environ, "TMPDIR": str(scratch)},
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not _socket_in(scratch):
            assert time.monotonic() < deadline and child.poll() is None, child.stderr.read() if child.stderr else ""
            time.sleep(0.1)
        time.sleep(2)  # into the migrations
        child.send_signal(sig)
        _, stderr = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
    # (a progress line may come first on a slow machine)
    assert child.returncode == 130 and stderr.splitlines()[-1].startswith("Error: interrupted"), stderr
    assert list(scratch.iterdir()) == [] and _postgres_processes(str(scratch)) == []


def test_without_server_binaries_one_line_names_the_package_and_database(tmp_path):
    with pytest.raises(ServerError) as raised:
        find_bindir([tmp_path / "bin", tmp_path])
    assert "Debian's `postgresql` package" in str(raised.value) and "--database URL" in str(raised.value)
    done = _cli("verify", str(folder(tmp_path / "m", USERS)), env={"MIGRATE_LENS_PG_BINDIR": str(tmp_path)})
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.splitlines() == [f"Error: {raised.value}"]


def _databases(conninfo: str) -> set[str]:
    with psycopg.connect(conninfo, autocommit=True) as con:
        return {name for (name,) in con.execute("SELECT datname FROM pg_database").fetchall()}


def test_database_url_works_in_scratch_databases_only_and_never_shows_its_password(postgres, tmp_path):
    before = _databases(postgres.conninfo)
    broken = folder(tmp_path / "m", {**USERS, "2_idx.up.sql": "CREATE INDEX i ON users (email);",
                                     "2_idx.down.sql": "SELECT 1;"})
    runner = CliRunner()
    outputs = []
    for fmt in ("text", "json", "junit"):
        result = runner.invoke(main, ["verify", str(broken), "--database", postgres.password_url, "--format", fmt,
                                      "--store", "billing", "--db", str(tmp_path / "w.duckdb")])
        assert result.exit_code == 3, result.output
        outputs.append(result.output)
    assert "ci_verifier:***@127.0.0.1" in outputs[0]
    wrong = runner.invoke(main, ["verify", str(broken), "--database", postgres.password_url.replace("-pw@", "-no@")])
    assert wrong.exit_code == 1 and "password authentication failed" in wrong.stderr
    assert "ci_verifier:***@" in wrong.stderr
    env = runner.invoke(main, ["verify", str(broken), "--format", "json"],
                        env={"MIGRATE_LENS_VERIFY_DATABASE": postgres.password_url})
    assert env.exit_code == 3 and json.loads(env.stdout)["server"].endswith("ci_verifier:***@127.0.0.1:"
                                                                            f"{postgres.password_url.split(':')[-1]}")
    stored = (tmp_path / "w.duckdb").read_bytes()
    secret = postgres.password.split("-")[1]  # "Verify": a piece of the password that appears nowhere else
    for text in [*outputs, wrong.output, env.output]:
        assert postgres.password not in text and secret not in text
    assert postgres.password.encode() not in stored
    assert _databases(postgres.conninfo) == before  # every scratch database dropped, no other touched


def test_a_bad_database_url_is_a_fixable_error(tmp_path):
    url = "postgres://u:pw@h:5432/x?sslmod=require"
    result = CliRunner().invoke(main, ["verify", str(folder(tmp_path, USERS)), "--database", url])
    assert (result.exit_code, result.stderr) == (1, ("Error: --database postgres://u:***@h:5432/x?sslmod=require: not "
                                                     'a PostgreSQL URL or conninfo (invalid URI query parameter: "sslmod"); '
                                                     "e.g. postgres://user@host:5432/postgres\n"))


def test_a_query_of_verify_s_own_refused_is_one_error_line_not_a_traceback(postgres, tmp_path):
    """An up that takes the role's own SELECT away: verify cannot checksum the table, and says so."""
    migrations = folder(tmp_path, {**USERS, "2_lock.up.sql": "REVOKE SELECT ON users FROM CURRENT_USER;",
                                   "2_lock.down.sql": "GRANT SELECT ON users TO CURRENT_USER;",
                                   "3_next.up.sql": "SELECT 1;"})
    result = CliRunner().invoke(main, ["verify", str(migrations), "--database", postgres.password_url])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)  # the translated error, no traceback
    [line] = result.stderr.splitlines()
    assert line.startswith("Error: verify: PostgreSQL refused a query of verify's own on PostgreSQL ")
    assert line.endswith(": permission denied for table users (check the role's privileges)")
    assert postgres.password not in result.output

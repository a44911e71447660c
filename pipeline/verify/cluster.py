"""A throwaway PostgreSQL cluster from the local server binaries: `verify`'s default when no --database is given.

initdb and postgres refuse to run as root (CI and containers run as root), so as root the cluster is created
and run as an unprivileged user (`postgres` when the system has one, else `nobody`), in a temp dir that user
owns. The server listens on a free 127.0.0.1 port, where no one can log in (scram and no password set); we
connect through the unix socket in the temp dir. Everything is removed afterwards, also on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pipeline.core.errors import ServerError

# Where Debian/Ubuntu (and the PGDG packages) put the server binaries: /usr/lib/postgresql/<major>/bin.
DEBIAN_BINDIRS = "/usr/lib/postgresql/*/bin"
# An explicit folder of server binaries wins over every search (a custom build, another major).
BINDIR_VARIABLE = "MIGRATE_LENS_PG_BINDIR"
SUPERUSER = "migrate_lens"
_READY_SECONDS = 60.0
_STOP_SECONDS = 15.0


@dataclass(frozen=True)
class Cluster:
    """A running throwaway cluster: how to reach it and what it is."""

    conninfo: str  # libpq keywords: the unix socket, the port, the superuser, database `postgres`
    port: int
    bindir: Path
    run_as: str  # the system user the server runs as

    def describe(self) -> str:
        return f"a throwaway cluster from {self.bindir} (run as {self.run_as})"


def find_bindir(candidates: Sequence[Path] | None = None) -> Path:
    """The folder holding `initdb` and `postgres`: $MIGRATE_LENS_PG_BINDIR, then PATH, `pg_config --bindir`,
    and Debian's /usr/lib/postgresql/<major>/bin (highest major first). `candidates` replaces that search."""
    for folder in _candidates() if candidates is None else candidates:
        if (folder / "initdb").is_file() and (folder / "postgres").is_file():
            return folder
    raise ServerError("verify: no PostgreSQL server binaries (initdb, postgres) on PATH, in `pg_config --bindir` "
                      f"or {DEBIAN_BINDIRS}; install Debian's `postgresql` package (apt-get install postgresql), "
                      "set $" + BINDIR_VARIABLE + ", or give --database URL")


def _candidates() -> Iterator[Path]:
    if explicit := os.environ.get(BINDIR_VARIABLE):
        yield Path(explicit)
        return
    if initdb := shutil.which("initdb"):
        yield Path(initdb).resolve().parent  # /usr/local/bin/initdb is often a link into the real bindir
    if pg_config := shutil.which("pg_config"):
        try:
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=False)
            if out.returncode == 0 and out.stdout.strip():
                yield Path(out.stdout.strip())
        except (OSError, subprocess.SubprocessError):
            pass
    majors = sorted(Path("/").glob(DEBIAN_BINDIRS.lstrip("/")), key=_major, reverse=True)
    yield from majors


def _major(bindir: Path) -> int:
    m = re.search(r"/(\d+)/bin$", str(bindir))
    return int(m[1]) if m else 0


def _unprivileged_user() -> pwd.struct_passwd | None:
    """None when not root; else the account the server runs as."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise ServerError("verify: running as root and no unprivileged `postgres` or `nobody` user to run the "
                      "PostgreSQL server as (initdb refuses root); create one, or give --database URL")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def embedded_cluster(bindir: Path | None = None) -> Iterator[Cluster]:
    """Create, start and finally stop and remove a throwaway cluster; yields how to reach it."""
    bindir = bindir or find_bindir()
    user = _unprivileged_user()
    workdir = Path(tempfile.mkdtemp(prefix="migrate-lens-pg-", dir=_reachable_tempdir(user)))
    server: subprocess.Popen[bytes] | None = None
    try:
        with _terminate_as_interrupt():
            run_as = _own(workdir, user)
            data = workdir / "data"
            _run_as(user, [str(bindir / "initdb"), "-D", str(data), "-U", SUPERUSER, "-E", "UTF8", "--locale=C",
                           "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync", "--no-instructions"],
                    what="initdb")
            port = _free_port()
            # A test cluster: durability is not wanted, speed is (every version copies a database).
            settings = {"listen_addresses": "127.0.0.1", "port": str(port), "unix_socket_directories": str(workdir),
                        "fsync": "off", "synchronous_commit": "off", "full_page_writes": "off",
                        "max_connections": "30", "wal_level": "minimal", "max_wal_senders": "0", "max_wal_size": "4GB", "checkpoint_timeout": "1h", "log_min_messages": "fatal", "logging_collector": "off"}
            args = [str(bindir / "postgres"), "-D", str(data)]
            for key, value in settings.items():
                args += ["-c", f"{key}={value}"]
            log = open(workdir / "server.log", "wb")  # noqa: SIM115 - closed when the server is stopped
            who = _as_user(user)
            server = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                      user=who.user, group=who.group, extra_groups=who.extra_groups, env=who.env)
            log.close()
            cluster = Cluster(f"host={workdir} port={port} user={SUPERUSER} dbname=postgres", port, bindir, run_as)
            _wait_ready(server, workdir, port)
            yield cluster
    finally:
        if server is not None:
            _stop(server)
        shutil.rmtree(workdir, ignore_errors=True)


def _reachable_tempdir(user: pwd.struct_passwd | None) -> str | None:
    """$TMPDIR, unless the server's user cannot reach into it (root's private temp dirs): then /tmp."""
    if user is None:
        return None
    for candidate in (tempfile.gettempdir(), "/tmp", "/var/tmp"):
        path = Path(candidate).resolve()
        if path.is_dir() and all(_traversable(p, user) for p in (path, *path.parents)):
            return str(path)
    raise ServerError(f"verify: no temp dir the `{user.pw_name}` user can reach to run PostgreSQL in (tried $TMPDIR, "
                      "/tmp, /var/tmp); set TMPDIR to a directory others may traverse, or give --database URL")


def _traversable(folder: Path, user: pwd.struct_passwd) -> bool:
    mode = folder.stat()
    if mode.st_uid == user.pw_uid:
        return bool(mode.st_mode & 0o100)
    if mode.st_gid == user.pw_gid:
        return bool(mode.st_mode & 0o010)
    return bool(mode.st_mode & 0o001)


def _own(workdir: Path, user: pwd.struct_passwd | None) -> str:
    if user is None:
        return pwd.getpwuid(os.geteuid()).pw_name
    os.chown(workdir, user.pw_uid, user.pw_gid)
    return user.pw_name


@dataclass(frozen=True)
class _Identity:
    """Who a server process runs as: None everywhere keeps ours (not root)."""

    user: int | None = None
    group: int | None = None
    extra_groups: tuple[int, ...] | None = None
    env: dict[str, str] | None = None


def _as_user(user: pwd.struct_passwd | None) -> _Identity:
    if user is None:
        return _Identity()
    # Drop every group root had, too: the server must not keep privileges it does not need.
    return _Identity(user.pw_uid, user.pw_gid, (),
                     {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C", "LC_ALL": "C"})


def _run_as(user: pwd.struct_passwd | None, args: list[str], *, what: str) -> None:
    try:
        who = _as_user(user)
        done = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False, user=who.user,
                              group=who.group, extra_groups=who.extra_groups, env=who.env)
    except (OSError, subprocess.SubprocessError) as e:
        raise ServerError(f"verify: {what} could not run ({e}); give --database URL instead") from e
    if done.returncode != 0:
        last = (done.stderr.strip() or done.stdout.strip()).splitlines()[-1:] or ["no output"]
        raise ServerError(f"verify: {what} failed ({last[0]}); give --database URL instead")


def _wait_ready(server: subprocess.Popen[bytes], workdir: Path, port: int) -> None:
    """The server is ready once postmaster.pid's status line says so (pg_ctl reads the same line)."""
    pidfile, deadline = workdir / "data" / "postmaster.pid", time.monotonic() + _READY_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            tail = (workdir / "server.log").read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
            raise ServerError(f"verify: the throwaway PostgreSQL server stopped at start ({tail[0]}); "
                              "give --database URL instead")
        try:
            lines = pidfile.read_text().splitlines()
        except OSError:
            lines = []
        if len(lines) >= 8 and lines[7].strip() == "ready" and (workdir / f".s.PGSQL.{port}").exists():
            return
        time.sleep(0.05)
    raise ServerError(f"verify: the throwaway PostgreSQL server was not ready after {_READY_SECONDS:.0f} s; "
                      "give --database URL instead")


def _stop(server: subprocess.Popen[bytes]) -> None:
    """Fast shutdown (SIGINT: roll back and disconnect everyone), then SIGKILL if it hangs."""
    if server.poll() is not None:
        return
    server.send_signal(signal.SIGINT)
    try:
        server.wait(_STOP_SECONDS)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (a CI job cancelled) unwinds like Ctrl-C, so the cluster is stopped and its files removed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)

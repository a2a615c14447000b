"""Throwaway Redis and PostgreSQL servers for the tests that need the real engines.

Each server binds 127.0.0.1 on a free port, keeps its data in a fresh temporary directory and
is stopped (and the directory removed) afterwards. A missing binary or a server that does not
come up raises :class:`ServerUnavailable` naming what is missing; the fixtures turn that into
a test failure, never a skip (``.ci/run`` installs the packages on a fresh Debian machine).

PostgreSQL refuses to run as root: under root the temporary directory is handed to the
``postgres`` system user and ``initdb``/``postgres`` run as that user.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PG_DIRS = ("/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/17/bin")
START_TIMEOUT = 60.0


class ServerUnavailable(RuntimeError):  # noqa: N818 - reads as a sentence in failures
    """A test server binary is missing or the server did not start."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[bytes], what: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServerUnavailable(
                f"{what} exited with code {proc.returncode} before listening: " + _tail(log)
            )
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise ServerUnavailable(f"{what} did not listen on 127.0.0.1:{port} within {START_TIMEOUT}s")


def _tail(log: Path) -> str:
    try:
        return log.read_text(errors="replace")[-800:]
    except OSError:
        return "(no log)"


def _stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


@dataclass(frozen=True)
class RedisServer:
    """A running redis-server."""

    port: int

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return f"redis://127.0.0.1:{self.port}/0"


@contextlib.contextmanager
def redis_server() -> Iterator[RedisServer]:
    """Start ``redis-server`` (no persistence) on a free port; stop it afterwards."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise ServerUnavailable(
            "redis-server is not installed (Debian: apt-get install redis-server; .ci/run "
            "installs it)"
        )
    workdir = Path(tempfile.mkdtemp(prefix="kis-test-redis-"))
    log = workdir / "redis.log"
    port = free_port()
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
            "no", "--dir", str(workdir), "--logfile", str(log), "--daemonize", "no"]  # fmt: skip
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
    try:
        _wait_port(port, proc, "redis-server", log)
        yield RedisServer(port)
    finally:
        _stop(proc)
        shutil.rmtree(workdir, ignore_errors=True)


@dataclass(frozen=True)
class PostgresServer:
    """A running PostgreSQL server (trust authentication on 127.0.0.1)."""

    port: int
    user: str

    def dsn(self, database: str = "postgres") -> str:
        """A libpq URL for ``database``."""
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    @contextlib.asynccontextmanager
    async def database(self) -> AsyncIterator[str]:
        """A fresh, empty database for one test (dropped afterwards); yields its DSN."""
        import asyncpg

        name = f"t_{uuid.uuid4().hex[:16]}"
        admin = await asyncpg.connect(self.dsn())
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        try:
            yield self.dsn(name)
        finally:
            admin = await asyncpg.connect(self.dsn())
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await admin.close()


def _pg_bin(name: str) -> str:
    for directory in PG_DIRS:
        candidate = Path(directory) / name
        if candidate.is_file():
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise ServerUnavailable(
            f"PostgreSQL's {name} was not found in {', '.join(PG_DIRS)} or on PATH "
            "(Debian: apt-get install postgresql; .ci/run installs it)"
        )
    return found


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """``initdb`` a fresh cluster in a temporary directory and run ``postgres`` on a free
    port (unix socket in that directory too); stop it and remove the directory afterwards."""
    initdb, postgres, isready = _pg_bin("initdb"), _pg_bin("postgres"), _pg_bin("pg_isready")
    workdir = Path(tempfile.mkdtemp(prefix="kis-test-pg-"))
    data, log = workdir / "data", workdir / "postgres.log"
    log.touch()
    as_user: dict[str, Any] = {}
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(workdir, ignore_errors=True)
            raise ServerUnavailable(
                "PostgreSQL refuses to run as root and there is no 'postgres' user to run it "
                "as (Debian's postgresql package creates it)"
            ) from None
        for path in (workdir, log):
            os.chown(path, owner.pw_uid, owner.pw_gid)
        as_user = {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []}
    user = "kis_test"
    port = free_port()
    init = subprocess.run(  # noqa: S603
        [
            initdb,
            "-D",
            str(data),
            "-U",
            user,
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
            "--locale=C",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=START_TIMEOUT * 2,
        cwd=workdir,
        **as_user,
    )
    if init.returncode != 0:
        shutil.rmtree(workdir, ignore_errors=True)
        raise ServerUnavailable(f"initdb failed: {(init.stderr or init.stdout)[-800:]}")
    with open(log, "ab") as handle:
        proc = subprocess.Popen(  # noqa: S603
            [
                postgres,
                "-D",
                str(data),
                "-p",
                str(port),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                f"unix_socket_directories={workdir}",
                "-c",
                "fsync=off",
                "-c",
                "max_connections=200",
                "-c",
                "shared_buffers=32MB",
            ],
            stdout=handle,
            stderr=subprocess.STDOUT,
            cwd=workdir,
            **as_user,
        )
    try:
        _wait_port(port, proc, "postgres", log)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            ready = subprocess.run(  # noqa: S603
                [isready, "-h", "127.0.0.1", "-p", str(port), "-U", user, "-q"], check=False
            )
            if ready.returncode == 0:
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise ServerUnavailable(f"postgres did not become ready: {_tail(log)}")
            time.sleep(0.1)
        yield PostgresServer(port, user)
    finally:
        # SIGINT is PostgreSQL's fast shutdown (SIGTERM would wait for every client).
        _stop(proc, signal.SIGINT)
        shutil.rmtree(workdir, ignore_errors=True)

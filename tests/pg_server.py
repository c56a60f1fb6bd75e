"""A throwaway PostgreSQL server for tests: ``initdb`` + ``pg_ctl`` in a temporary folder, loopback only.

Uses ``$HSBENCH_TEST_POSTGRES_URL`` instead when set (a server started by CI or tox). Servers come from the
Debian ``postgresql`` package (``/usr/lib/postgresql/<version>/bin``) or ``PATH``. PostgreSQL refuses to run as
root, so as root the server runs as the ``postgres`` system user the package creates.

Run ``python tests/pg_server.py`` to start one by hand; it prints the URL and stops on Ctrl-C.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

__all__ = ["PostgresServer", "PostgresUnavailable", "URL_ENV"]

URL_ENV = "HSBENCH_TEST_POSTGRES_URL"


class PostgresUnavailable(RuntimeError):
    """No server could be started; the message says why (tests skip with it)."""


def _bin_dir() -> Path:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[-3]))
    if not versions:
        raise PostgresUnavailable("no PostgreSQL server binaries (install the Debian package `postgresql`)")
    return Path(versions[-1]).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresServer:
    """Start with :meth:`start` (returns a SQLAlchemy URL of database ``postgres``), stop with :meth:`stop`;
    :meth:`restart` stops and starts the same server (a maintenance restart, as clients see it)."""

    def __init__(self) -> None:
        self.url: str | None = os.environ.get(URL_ENV)
        self._data_dir: Path | None = None
        self._user: str | None = None
        self._port: int | None = None

    def _run(self, *args: str) -> subprocess.CompletedProcess:
        command = list(args)
        if self._user is not None:
            command = ["runuser", "-u", self._user, "--", *command]
        return subprocess.run(command, capture_output=True, text=True, timeout=120)

    def start(self) -> str:
        if self.url:
            return self.url
        bin_dir = _bin_dir()
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                raise PostgresUnavailable("running as root and there is no `postgres` user to run the server as") \
                    from None
            self._user = "postgres"
        self._data_dir = Path(tempfile.mkdtemp(prefix="hsbench-pg-"))
        if self._user is not None:
            shutil.chown(self._data_dir, user=self._user)
        self._port = _free_port()
        initdb = (str(bin_dir / "initdb"), "-D", str(self._data_dir), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        for step in (initdb, self._pg_ctl_start()):
            result = self._run(*step)
            if result.returncode != 0:
                self.stop()
                raise PostgresUnavailable(f"{Path(step[0]).name} failed: {(result.stderr or result.stdout).strip()}")
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self._port}/postgres"
        return self.url

    def _pg_ctl_start(self) -> tuple[str, ...]:
        return (str(_bin_dir() / "pg_ctl"), "-D", str(self._data_dir), "-l", str(self._data_dir / "server.log"), "-w",
                "-o", f"-c listen_addresses=127.0.0.1 -c port={self._port} -c unix_socket_directories='' "
                      "-c max_connections=200 -c fsync=off", "start")

    def restart(self, down_s: float = 2.0) -> None:
        """Stop the server (``fast``: open transactions are rolled back, every connection is dropped), keep it
        down for ``down_s`` seconds, and start it again on the same port and data."""
        if self._data_dir is None:
            raise PostgresUnavailable("only a server started here can be restarted (not $" + URL_ENV + ")")
        for step in ((str(_bin_dir() / "pg_ctl"), "-D", str(self._data_dir), "-m", "fast", "-w", "stop"),
                     self._pg_ctl_start()):
            result = self._run(*step)
            if result.returncode != 0:
                raise RuntimeError(f"pg_ctl {step[-1]} failed: {(result.stderr or result.stdout).strip()}")
            if step[-1] == "stop":
                time.sleep(down_s)

    def create_database(self, name: str) -> str:
        """A fresh database on the server; returns its URL."""
        from sqlalchemy import create_engine, text

        assert self.url is not None, "start the server first"
        engine = create_engine(self.url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
        return self.url.rsplit("/", 1)[0] + f"/{name}"

    def stop(self) -> None:
        if self._data_dir is None:
            return
        if (self._data_dir / "postmaster.pid").exists():
            self._run(str(_bin_dir() / "pg_ctl"), "-D", str(self._data_dir), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self._data_dir, ignore_errors=True)
        self._data_dir = None


if __name__ == "__main__":
    server = PostgresServer()
    print(server.start(), flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()

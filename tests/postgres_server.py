"""A real PostgreSQL for the tests, started and stopped by the test session itself.

`RunningPostgres.start()` runs Debian's server binaries (`/usr/lib/postgresql/<version>/bin`) on a free loopback
port with a fresh data directory, as the `postgres` user when the tests run as root (initdb refuses root), and
`stop()` shuts it down immediately and removes the directory. Every test database is a fresh `CREATE DATABASE` on
it. Nothing here is skipped quietly: without the binaries the fixture fails and says how to install them.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from tests.http_server import free_port

INSTALL_HINT = "PostgreSQL server binaries are needed: apt-get install -y postgresql (scripts/test does it)"
START_TIMEOUT_SECONDS = 60


def server_binaries() -> Path:
    """The folder holding initdb and pg_ctl (the newest installed version)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda path: int(path.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("pg_ctl")
    if on_path:
        return Path(on_path).parent
    raise RuntimeError(INSTALL_HINT)


@dataclass
class RunningPostgres:
    """A PostgreSQL server in a temporary folder, on a loopback port."""

    directory: Path
    port: int
    binaries: Path
    as_user: str | None

    @classmethod
    def start(cls) -> RunningPostgres:
        """initdb, then pg_ctl start (waits until it accepts connections)."""
        binaries = server_binaries()
        as_user = "postgres" if os.geteuid() == 0 else None
        # Not under pytest's tmp folders: those are private to root, and the server runs as `postgres`.
        directory = Path(tempfile.mkdtemp(prefix="pixverse-pg-"))
        if as_user is not None:
            shutil.chown(directory, user=as_user)
        server = cls(directory, free_port(), binaries, as_user)
        try:
            server._run("initdb", "-D", str(directory / "data"), "-A", "trust", "-U", "postgres", "--no-sync")
            options = (
                f"-p {server.port} -k {directory} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300"
            )
            server._run(
                "pg_ctl", "-D", str(directory / "data"), "-o", options, "-l", str(directory / "log"), "-w", "start"
            )
        except BaseException:
            server.stop()
            raise
        return server

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.binaries / program), *args]
        if self.as_user is not None:
            command = ["runuser", "-u", self.as_user, "--", *command]
        finished = subprocess.run(command, capture_output=True, text=True, timeout=START_TIMEOUT_SECONDS, check=False)
        if finished.returncode != 0:
            log = self.directory / "log"
            raise RuntimeError(
                f"{program} failed ({finished.returncode}): {finished.stderr.strip()}\n"
                f"{log.read_text() if log.exists() else ''}"
            )

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def new_database(self) -> str:
        """A fresh, empty database on this server; its URL."""
        name = f"test_{uuid.uuid4().hex[:12]}"
        self._run("psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-c", f"CREATE DATABASE {name}")
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def halt(self) -> None:
        """Stop the server as a crash or an outage would (its data stays): connections fail until `resume`."""
        self._run("pg_ctl", "-D", str(self.directory / "data"), "-m", "immediate", "-w", "stop")

    def resume(self) -> None:
        """Start it again on the same port and data (after `halt`)."""
        options = (
            f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300"
        )
        data, log = self.directory / "data", self.directory / "log"
        self._run("pg_ctl", "-D", str(data), "-o", options, "-l", str(log), "-w", "start")

    def stop(self) -> None:
        """Stop at once (no checkpoint: the data is thrown away) and remove the folder."""
        data = self.directory / "data"
        if (data / "postmaster.pid").exists():
            with contextlib.suppress(RuntimeError):
                self._run("pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.directory, ignore_errors=True)

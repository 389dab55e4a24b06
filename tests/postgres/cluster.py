"""A private PostgreSQL cluster on a spare loopback port: the run's own, or one to restart."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

THROWAWAY_SETTINGS = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
"""For a cluster whose data may be lost in a machine crash (a process crash loses nothing)."""


def find_program(program: str) -> str | None:
    """`initdb`, `pg_ctl`...: on the PATH, else in Debian's versioned directories."""
    found = shutil.which(program)
    if found:
        return found
    versions = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{program}"), reverse=True)
    return str(versions[0]) if versions else None


def programs_found() -> bool:
    return find_program("initdb") is not None and find_program("pg_ctl") is not None


def _spare_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@dataclass
class PrivateCluster:
    dsn: str
    command: list[str]
    """How to run a PostgreSQL program here (as the postgres user when we are root)."""
    pg_ctl: str
    data: Path
    options: str
    log: Path

    def ctl(self, *args: str) -> None:
        subprocess.run(
            [*self.command, self.pg_ctl, "-D", str(self.data), *args],
            check=True,
            capture_output=True,
            timeout=60,
        )

    def start(self) -> None:
        self.ctl("-o", self.options, "-l", str(self.log), "-w", "start")

    def stop(self, mode: str) -> None:
        """`fast` (sessions closed cleanly) or `immediate` (a crash, recovered from the WAL)."""
        self.ctl("-m", mode, "-w", "stop")

    def restart(self, mode: str) -> None:
        self.stop(mode)
        self.start()


@contextlib.contextmanager
def running_cluster(settings: str) -> Iterator[PrivateCluster]:
    """A started cluster with these server `settings` (`-c name=value ...`), removed afterwards."""
    initdb, pg_ctl = find_program("initdb"), find_program("pg_ctl")
    if initdb is None or pg_ctl is None:
        raise RuntimeError("initdb/pg_ctl not found: cannot start a private PostgreSQL")
    base = Path(tempfile.mkdtemp(prefix="queuekit-pg-"))  # postgres must reach it
    command: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        user = pwd.getpwnam("postgres")
        os.chown(base, user.pw_uid, user.pw_gid)
        command = ["runuser", "-u", "postgres", "--"]
    data, port = base / "data", _spare_port()
    cluster = PrivateCluster(
        dsn=f"postgresql://postgres@127.0.0.1:{port}/postgres",
        command=command,
        pg_ctl=pg_ctl,
        data=data,
        options=f"-p {port} -k {base} -c listen_addresses=127.0.0.1 {settings}",
        log=base / "server.log",
    )
    try:
        subprocess.run(
            [*command, initdb, "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"],
            check=True,
            capture_output=True,
            timeout=120,
        )
        cluster.start()
        yield cluster
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run(
                [*command, pg_ctl, "-D", str(data), "-m", "immediate", "stop"],
                capture_output=True,
                timeout=60,
            )
        shutil.rmtree(base, ignore_errors=True)

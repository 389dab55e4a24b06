"""A private PgBouncer in front of the test PostgreSQL: one database per pool mode.

Debian's stock `pgbouncer` (1.18 on bookworm), started by the run with its own config in a temp
dir on a spare loopback port, `auth_type = trust`, and stopped by PID when the run ends.
"""

from __future__ import annotations

import contextlib
import functools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from ..setups import (
    BackendSetup,
    require_postgres_dsn,
    skip_or_fail,
    with_url_options,
)

POOL_SIZES = {"transaction": 4, "session": 30}
"""Server connections per pool mode. Transaction pooling shares 4 among many more client
connections; session pooling needs one per client connection (a session holds its own)."""


def find_pgbouncer() -> str | None:
    """Debian installs it in /usr/sbin, which is not on every user's PATH."""
    return shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin:/usr/bin")


_running = contextlib.ExitStack()
"""The PgBouncer a test module started; `stop_pgbouncer` ends it with the module."""


@functools.cache
def pgbouncer_dsns() -> dict[str, str]:
    """Pool mode -> DSN through a PgBouncer, started the first time it is asked for."""
    binary = find_pgbouncer()
    if binary is None:
        skip_or_fail("pgbouncer not found; to run these tests: apt-get install pgbouncer")
    return _running.enter_context(running_pgbouncer(binary, require_postgres_dsn()))


def stop_pgbouncer() -> None:
    """Stop the PgBouncer, if one runs. Kept for the rest of the run, its idle server
    connections (up to 34, for 10 minutes) left too few of the server's 100 for the fleet test
    that came later (seen in CI: "too many clients already")."""
    _running.close()
    pgbouncer_dsns.cache_clear()


@contextlib.contextmanager
def running_pgbouncer(binary: str, server_dsn: str) -> Iterator[dict[str, str]]:
    """PgBouncer in front of `server_dsn`'s database; yields a DSN for each pool mode."""
    server = urlsplit(server_dsn)
    user = unquote(server.username or "postgres")
    database = server.path.lstrip("/") or user
    target = f"host={server.hostname or '127.0.0.1'} port={server.port or 5432} dbname={database}"
    if server.password:
        target += f" password={unquote(server.password)}"
    directory = Path(tempfile.mkdtemp(prefix="queuekit-pgbouncer-"))
    port = _spare_port()
    (directory / "userlist.txt").write_text(f'"{user}" ""\n')
    databases = "\n".join(
        f"{mode} = {target} user={user} pool_mode={mode} pool_size={size}"
        for mode, size in POOL_SIZES.items()
    )
    config = directory / "pgbouncer.ini"
    config.write_text(
        f"[databases]\n{databases}\n\n[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {directory / 'userlist.txt'}\n"
        "max_client_conn = 1000\n"
        f"logfile = {directory / 'pgbouncer.log'}\npidfile = {directory / 'pgbouncer.pid'}\n"
    )
    command = [binary, str(config)]
    if os.geteuid() == 0:  # PgBouncer refuses to run as root; -u drops to another user
        account = pwd.getpwnam("postgres")
        os.chown(directory, account.pw_uid, account.pw_gid)
        command[1:1] = ["-u", "postgres"]
    with (directory / "stderr.log").open("wb") as stderr:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stderr=stderr)
    try:
        _wait_until_listening(process, port, directory)
        yield {
            mode: urlunsplit(("postgresql", f"{user}@127.0.0.1:{port}", f"/{mode}", "", ""))
            for mode in POOL_SIZES
        }
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)  # a fast shutdown
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait()
        shutil.rmtree(directory, ignore_errors=True)


def _wait_until_listening(process: subprocess.Popen[bytes], port: int, directory: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            said = (directory / "stderr.log").read_text(errors="replace")
            raise RuntimeError(f"pgbouncer exited: {said[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.02)
    raise TimeoutError(f"pgbouncer did not listen on port {port}")


def _spare_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@asynccontextmanager
async def pgbouncer_setup(mode: str = "transaction", **options: str) -> AsyncIterator[BackendSetup]:
    """A fresh schema reached through PgBouncer in `mode`, dropped afterwards (directly)."""
    import asyncpg

    from queuekit.backends.postgres import PostgresBackend

    dsn = pgbouncer_dsns()[mode]
    schema = f"t_{os.urandom(6).hex()}"
    url = with_url_options(dsn, queuekit_schema=schema, queuekit_pgbouncer=mode, **options)
    try:
        yield BackendSetup(f"pgbouncer-{mode}", url, lambda: PostgresBackend.from_url(url))
    finally:
        conn = await asyncpg.connect(require_postgres_dsn())
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()

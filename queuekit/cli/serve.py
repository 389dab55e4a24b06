"""`queuekit serve`: the HTTP API under uvicorn."""

from __future__ import annotations

import ipaddress

import click

from .shared import Failure, open_queue, url_option, user_errors

GRACEFUL_SHUTDOWN_SECONDS = 5
"""How long a stopping server waits for open requests (an event stream never ends) to end."""


def is_loopback(host: str) -> bool:
    """Whether `host` reaches only this machine (then a key is optional)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command()
@url_option
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option(
    "--api-key",
    envvar="QUEUEKIT_API_KEY",
    help="Bearer key clients must send (16 characters or more); env QUEUEKIT_API_KEY. "
    "Required beyond loopback.",
)
@click.option(
    "--secret",
    envvar="QUEUEKIT_SECRET",
    help="Signs dashboard sessions (16 characters or more); env QUEUEKIT_SECRET. Give every "
    "process the same one to keep sessions across restarts and processes (default: random).",
)
def serve(url: str | None, host: str, port: int, api_key: str | None, secret: str | None) -> None:
    """Serve the HTTP API (uvicorn); see README "Operating"."""
    if not api_key and not is_loopback(host):
        raise Failure(
            f"refusing to serve on {host} without an API key: set --api-key or "
            "QUEUEKIT_API_KEY (only loopback addresses may run without one)"
        )
    with user_errors():
        import uvicorn

        from ..api import create_app

    queue = open_queue(url)
    with user_errors():
        app = create_app(queue, api_key=api_key or None, secret=secret.encode() if secret else None)
        # Event streams never end by themselves: on Ctrl-C, give them a few seconds, then close.
        uvicorn.run(
            app,
            host=host,
            port=port,
            log_level="info",
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        )

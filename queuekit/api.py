"""`from queuekit.api import create_app`: the HTTP API and dashboard app (see `queuekit.web`)."""

from .web import Authenticate, create_app

__all__ = ["Authenticate", "create_app"]

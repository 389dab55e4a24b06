"""Worker options that keep the worker tests quick."""

from __future__ import annotations

from typing import TypedDict


class FastOptions(TypedDict):
    poll_interval: float
    rescue_interval: float


FAST: FastOptions = {"poll_interval": 0.05, "rescue_interval": 0.1}

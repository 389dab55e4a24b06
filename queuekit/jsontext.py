"""`compact_json`: compact JSON text (no spaces, characters as they are) from one encoder."""

from __future__ import annotations

import json

_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
"""Made once: `json.dumps` with options makes an encoder on every call, which costs more than
encoding a small value."""


def compact_json(value: object) -> str:
    """`value` as compact JSON text; NaN and infinities are refused (ValueError)."""
    return _ENCODER.encode(value)

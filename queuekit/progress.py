"""A running attempt's progress and partial output: checked where reported, sent by heartbeat."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import InvalidOptionError
from .job import JSON
from .validation import encode_json

MAX_NOTE_CHARS = 200
"""A progress note is a short line for a dashboard, not a log."""
MAX_OUTPUT_BYTES = 64 * 1024
"""Partial output travels with every heartbeat that changes it: keep it small."""


@dataclass(frozen=True, slots=True)
class ProgressUpdate:
    """What an attempt reported since its last heartbeat; a None field is unchanged.

    `fraction` and `note` go together: with a fraction, the note is written too (None clears
    it). `output_json` is the partial output's JSON text.
    """

    fraction: float | None = None
    note: str | None = None
    output_json: str | None = None

    def columns(self) -> dict[str, object]:
        """The stored fields it changes (`progress`, `progress_note`, `output`), by name."""
        changed: dict[str, object] = {}
        if self.fraction is not None:
            changed.update(progress=self.fraction, progress_note=self.note)
        if self.output_json is not None:
            changed["output"] = self.output_json
        return changed


NO_UPDATE = ProgressUpdate()
"""Nothing reported since the last heartbeat."""


def check_progress(fraction: object, note: object) -> tuple[float, str | None]:
    """`fraction` (a finite number from 0 to 1) and `note` (a short text, or None) as stored;
    anything else raises `InvalidOptionError`."""
    if isinstance(fraction, bool) or not isinstance(fraction, int | float):
        raise InvalidOptionError(f"progress must be a number from 0 to 1, not {fraction!r}")
    value = float(fraction)
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise InvalidOptionError(f"progress must be a finite number from 0 to 1, not {value!r}")
    if note is not None and not isinstance(note, str):
        raise InvalidOptionError(f"a progress note must be text, not {type(note).__name__}")
    if note is not None and len(note) > MAX_NOTE_CHARS:
        raise InvalidOptionError(
            f"a progress note is {len(note)} characters, over the limit of {MAX_NOTE_CHARS}"
        )
    # An empty note says nothing: stored as none, so every backend reads it back alike.
    return value, note or None


class ProgressReports:
    """One attempt's latest progress and output, and what of them the backend has already."""

    __slots__ = ("_output", "_progress", "_sent_output", "_sent_progress")

    def __init__(self) -> None:
        self._progress: tuple[float, str | None] | None = None
        self._output: str | None = None
        self._sent_progress: tuple[float, str | None] | None = None
        self._sent_output: str | None = None

    def set_progress(self, fraction: float, note: str | None) -> None:
        self._progress = check_progress(fraction, note)

    def set_output(self, value: JSON) -> None:
        self._output = encode_json(value, limit=MAX_OUTPUT_BYTES, what="partial output")

    def pending(self) -> ProgressUpdate | None:
        """The changes the backend lacks, or None when it has them all."""
        progress = self._progress if self._progress != self._sent_progress else None
        output = self._output if self._output != self._sent_output else None
        if progress is None and output is None:
            return None
        fraction, note = progress if progress is not None else (None, None)
        return ProgressUpdate(fraction, note, output)

    def written(self, update: ProgressUpdate) -> None:
        """The backend has `update` now (later reports stay pending)."""
        if update.fraction is not None:
            self._sent_progress = (update.fraction, update.note)
        if update.output_json is not None:
            self._sent_output = update.output_json

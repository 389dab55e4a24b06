"""What the CLI prints: text without terminal control sequences, JSON, and plain tables."""

from __future__ import annotations

import json
import re
import shutil
import sys
import textwrap
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import click

# Whole sequences go first, so an OSC title or a CSI command leaves no residue: CSI (ESC [ or
# 8-bit 0x9B) up to its final byte; OSC, DCS, SOS, PM and APC up to their terminator (BEL or ST);
# any other two-byte ESC sequence. Then every other C0 or C1 control, DEL included, except
# newline and tab, goes too: a lone ESC, a carriage return that hides a line, a backspace.
CONTROL_SEQUENCE = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)"
    r"|\x1b[ -/]*[0-~]"
    r"|[\x00-\x08\x0b-\x1f\x7f-\x9f]"
)
C1_OR_DEL = re.compile(r"[\x7f-\x9f]")
"""Characters `json.dumps(ensure_ascii=False)` leaves raw but some terminals obey."""
GAP = "  "


def clean(text: str) -> str:
    """`text` without terminal control sequences; newlines and tabs stay."""
    return CONTROL_SEQUENCE.sub("", text)


def echo(text: str = "", *, err: bool = False, nl: bool = True) -> None:
    """Print text from outside (names, payloads, errors), made safe for a terminal."""
    click.echo(clean(text), err=err, nl=nl)


def print_json(value: Any, *, indent: int | None = 2) -> None:
    """Print JSON for scripts; control characters are escaped as JSON escapes, never raw."""
    text = json.dumps(value, indent=indent, ensure_ascii=False)
    click.echo(C1_OR_DEL.sub(lambda match: f"\\u{ord(match[0]):04x}", text))


def error_line(message: str) -> None:
    """The one line a failed command prints on stderr."""
    echo(f"queuekit: error: {message}", err=True)


def terminal_width() -> int | None:
    """The terminal's width when stdout is a terminal; None when piped (no width limit)."""
    if not sys.stdout.isatty():
        return None
    return shutil.get_terminal_size().columns


def table(
    columns: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    width: int | None,
    optional: Sequence[str] = (),
    wrap: Sequence[str] = (),
) -> str:
    """Align `rows` under `columns`, nothing cut off.

    With a `width` (a terminal's), the `optional` columns are left out, in that order, until
    the table fits; then the `wrap` columns wrap inside their cells. Piped (`width` None), every
    row is one line, for grep and awk.
    """
    cells = [[" ".join(clean(cell).split()) or "-" for cell in row] for row in rows]
    shown = list(range(len(columns)))
    sizes = [max([len(columns[i]), *(len(row[i]) for row in cells)]) for i in shown]

    def total() -> int:
        return sum(sizes[i] for i in shown) + len(GAP) * (len(shown) - 1)

    for name in optional:
        if width is None or total() <= width:
            break
        shown.remove(columns.index(name))
    wrapping = [columns.index(name) for name in wrap if columns.index(name) in shown]
    while width is not None and total() > width and wrapping:
        widest = max(wrapping, key=lambda i: sizes[i])
        if sizes[widest] <= len(columns[widest]):
            break
        sizes[widest] -= 1
    lines = [GAP.join(columns[i].ljust(sizes[i]) for i in shown).rstrip()]
    for row in cells:
        parts = [textwrap.wrap(row[i], sizes[i], break_on_hyphens=False) for i in shown]
        for depth in range(max(len(part) for part in parts)):
            pieces = [
                (part[depth] if depth < len(part) else "").ljust(sizes[i])
                for i, part in zip(shown, parts, strict=True)
            ]
            lines.append(GAP.join(pieces).rstrip())
    return "\n".join(lines)


def age(seconds: float | None) -> str:
    """A duration for people: 12.5s, 3.2m, 1.5h."""
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.1f}s"
    if seconds < 7200:
        return f"{seconds / 60:.1f}m"
    return f"{seconds / 3600:.1f}h"


def moment(value: datetime | None) -> str:
    """A stored time, to the second, in the backend's UTC."""
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")

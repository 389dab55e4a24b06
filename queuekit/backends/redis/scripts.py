"""The Lua scripts beside this module (lua/): their sources, and the queue keys each one binds."""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

from ..history import lua_bounds

SCRIPTS = (
    "enqueue",
    "peek",
    "claim",
    "heartbeat",
    "finish",
    "rescue",
    "cancel",
    "ready_now",
    "delete",
    "watch",
    "unwatch",
    "due",
    "next",
    "stats",
    "reserve",
    "reserve_enqueue",
    "name_queues",
    "peek_claim",
    "unindex",
    "pause",
    "batch",
    "list",
    "index_types",
    "claim_limited",
    "limits_set",
    "limits_build",
    "hold",
    "limit_usage",
    "expire",
    "workers",
    "activity",
    "batch_counts",
    "link",
)
BATCH = 500
"""Jobs per script call when deleting, pruning, rescuing or indexing in bulk."""
BIND_KEYS = re.compile(r"^\s*bind_keys(?:\(([^)]*)\)|_at\([^,]+, (\w+)\))", re.MULTILINE)
"""A script's `bind_keys('a', NAMES, ...)` (names, or lists the library defines), or
`bind_keys_at(at, NAMES)` (per queue, for the scripts that take several queues)."""


LIBRARY = ("_lib", "_dependencies", "_jobs", "_enqueue", "_claims")
"""The library's parts, in the order every script's prelude holds them (each may use what the
ones before it define)."""


@cache
def _lua(name: str) -> str:
    return resources.files(__package__).joinpath("lua", f"{name}.lua").read_text("utf-8")


@cache
def _library() -> str:
    return "".join(_lua(part) for part in LIBRARY)


def script_prelude(strict_keys: bool = False) -> str:
    """What precedes every script: how it calls Redis (checked or not), the bounds of the
    attempt history, and the library."""
    return _lua("_call_strict" if strict_keys else "_call") + lua_bounds() + _library()


@cache
def script_keys() -> dict[str, tuple[str, ...]]:
    """The queue keys each per-queue script binds (its `bind_keys(...)`), in KEYS order."""
    found: dict[str, tuple[str, ...]] = {}
    for name in SCRIPTS:
        match = BIND_KEYS.search(_lua(name))
        if match is not None:
            names = match.group(1)
            if names is None:  # bind_keys_at(at, NAMES)
                found[name] = _listed(match.group(2), name)
                continue
            keys: list[str] = []
            for quoted, listed in re.findall(r"'([^']+)'|\b([A-Z_]+)\b", names):
                keys += [quoted] if quoted else _listed(listed, name)
            found[name] = tuple(keys)
    return found


def _listed(names: str, script: str) -> tuple[str, ...]:
    """The key names of a list the library defines: `local NAMES = { 'a', ... }`."""
    listed = re.search(rf"^local {names} = {{([^}}]*)}}", _library(), re.M)
    assert listed is not None, f"{script}.lua binds an unknown list {names}"
    return tuple(re.findall(r"'([^']+)'", listed.group(1)))


@cache
def script_sources(strict_keys: bool = False) -> dict[str, str]:
    """Each script's full source: the prelude, then its body."""
    prelude = script_prelude(strict_keys)
    return {name: f"{prelude}\n{_lua(name)}" for name in SCRIPTS}

"""The short form of the chaos run (`make chaos` runs the long one): on each durable backend,
workers SIGKILLed every second and the server restarted once; nothing is lost, and every
execution beyond a fault-free run's is explained by a kill or the restart."""

from __future__ import annotations

from pathlib import Path

import pytest

from ..postgres.cluster import programs_found
from ..redis.server import require_programs
from ..setups import skip_for_missing
from .run import BACKENDS, chaos_run, table

pytestmark = pytest.mark.slow


def require_servers(backend: str) -> None:
    # The run starts its own private servers; it needs their programs, not the shared ones.
    if backend == "postgres" and not programs_found():
        skip_for_missing("initdb/pg_ctl")
    elif backend == "redis":
        require_programs("redis-server")


@pytest.mark.parametrize("backend", BACKENDS)
async def test_chaos_loses_nothing(backend: str, tmp_path: Path) -> None:
    require_servers(backend)
    figures = await chaos_run(
        backend, 600, tmp_path, kill_every=1.0, lease=2.0, timeout=60, seed=10
    )
    print("\n" + table([figures]))
    assert figures.enqueued == 600
    assert figures.missing == 0, figures.problems
    assert figures.wrong_state == 0, figures.problems
    assert figures.unexplained == 0, figures.problems
    assert figures.completed + figures.dead_expected + figures.cancelled_expected == 600
    assert figures.early == 0, figures.problems
    assert not figures.problems
    assert figures.kills >= 2
    assert figures.restarts == (0 if backend == "sqlite" else 1)

"""`testing.run_with_faults`: users prove their handlers idempotent under at-least-once delivery."""

from __future__ import annotations

import anyio
import pytest

import queuekit
from queuekit import InvalidOptionError, JobStatus, Outcome
from queuekit.testing import Fault, run_with_faults

tasks = queuekit.Tasks()
effects: list[tuple[str, str]] = []
"""(lease token, step) pairs the handlers below leave behind; cleared by each test."""


@pytest.fixture(autouse=True)
def fresh_effects() -> None:
    effects.clear()


@tasks.task()
async def charge(order: int) -> int:
    """Charges twice when run twice: the bug these faults are there to find."""
    effects.append((queuekit.current_job().lease_token, "charged"))
    return order


charged: dict[str, int] = {}


@tasks.task()
async def charge_once(order: int) -> int:
    """Idempotent: one charge per job id, however often it runs."""
    charged.setdefault(queuekit.current_job().job.id, order)
    return len(charged)


@tasks.task()
async def two_steps(order: int) -> int:
    token = queuekit.current_job().lease_token
    effects.append((token, "first"))
    await anyio.lowlevel.checkpoint()
    effects.append((token, "second"))
    return order


@tasks.task()
async def broken(order: int) -> int:
    raise LookupError(f"no order {order}")


async def test_without_faults_the_task_runs_once() -> None:
    run = await run_with_faults(charge, [], 7)
    assert run.result == 7
    assert run.outcomes == [Outcome.COMPLETED]
    assert run.job.status is JobStatus.COMPLETED and run.job.attempts == 1
    assert len(effects) == 1


async def test_a_crash_after_the_handler_runs_it_again() -> None:
    run = await run_with_faults(charge, [Fault.CRASH_AFTER_HANDLER], 7)
    assert run.result == 7
    assert run.outcomes == [Outcome.LOST, Outcome.COMPLETED]
    assert run.job.attempts == 2
    assert [step for _, step in effects] == ["charged", "charged"]  # charged twice: not idempotent
    assert effects[0][0] != effects[1][0]  # each attempt had its own fencing token


async def test_an_idempotent_handler_survives_every_fault() -> None:
    faults = [Fault.CRASH_AFTER_HANDLER, Fault.LEASE_LOST, Fault.DUPLICATE_DELIVERY]
    charged.clear()
    run = await run_with_faults(charge_once, faults, order=7)
    assert run.job.status is JobStatus.COMPLETED and run.job.attempts == 4
    assert run.result == 1
    assert charged == {run.job.id: 7}


async def test_a_lost_lease_stops_the_handler_at_its_first_await() -> None:
    run = await run_with_faults(two_steps, [Fault.LEASE_LOST], 7)
    assert run.outcomes == [Outcome.LOST, Outcome.COMPLETED]
    first, second = {token for token, _ in effects[:1]}, {token for token, _ in effects[1:]}
    assert [step for _, step in effects] == ["first", "first", "second"]
    assert first.isdisjoint(second)


async def test_a_duplicate_delivery_runs_two_attempts_side_by_side() -> None:
    run = await run_with_faults(two_steps, [Fault.DUPLICATE_DELIVERY], 7)
    assert sorted(run.outcomes) == sorted([Outcome.LOST, Outcome.COMPLETED])
    assert run.job.attempts == 2 and run.result == 7
    steps: dict[str, list[str]] = {}
    for token, step in effects:
        steps.setdefault(token, []).append(step)
    assert sorted(steps.values()) == [["first", "second"], ["first", "second"]]
    first_token = next(token for token in steps if token != run.job.attempt.token)
    # The duplicate started before the first attempt's handler ended.
    assert effects.index((run.job.attempt.token, "first")) < effects.index((first_token, "second"))


async def test_the_handlers_exception_is_raised() -> None:
    with pytest.raises(LookupError, match="no order 7"):
        await run_with_faults(broken, [Fault.CRASH_AFTER_HANDLER], 7)


async def test_an_unregistered_task_is_refused() -> None:
    loose = queuekit.Task("loose", charge.function)
    with pytest.raises(InvalidOptionError):
        await run_with_faults(loose, [], 7)

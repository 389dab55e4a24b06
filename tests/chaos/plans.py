"""What the chaos run enqueues: jobs of every kind, alone or in workflows (chains and fan-ins with
each failure policy, batches with their three callbacks), and the state each must end in and the
runs it needs without faults."""

from __future__ import annotations

import functools
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import queuekit
from queuekit import JobStatus, OnFailure, Parent

WORKFLOW_SHARE = 0.1
"""The chance that the next jobs planned are a workflow (of 3 to 6 jobs) rather than one job:
about a fifth of all jobs end up in workflows."""
FAILED = frozenset({JobStatus.DEAD, JobStatus.CANCELLED})


@dataclass(frozen=True)
class Plan:
    request: queuekit.NewJob
    expected: JobStatus
    runs: int
    """How many executions a fault-free run makes."""


def plan_jobs(count: int, rng: random.Random) -> list[Plan]:
    """`count` jobs: most on their own, some in workflows (see `tests.chaos.workflows`)."""
    plans: list[Plan] = []
    while len(plans) < count:
        if rng.random() < WORKFLOW_SHARE:
            plans += plan_workflow(rng, functools.partial(plan_job, rng), count - len(plans))
        else:
            plans.append(plan_job(rng))
    return plans


def plan_job(rng: random.Random, after: tuple[queuekit.Parent, ...] = ()) -> Plan:
    """One job of a random kind, waiting for `after`; its outcome as if no parent failed."""
    priority = rng.choice([0, 10, 10, 20, 30, 500])
    delay = rng.uniform(0.2, 3.0) if rng.random() < 0.15 else None
    options: dict[str, Any] = {"priority": priority, "delay": delay, "after": after}
    roll = rng.random()
    if roll < 0.92:
        fail_times = 0 if roll < 0.80 else rng.choice([1, 2])
        payload = {"seconds": rng.uniform(0.01, 0.1), "fail_times": fail_times}
        request = queuekit.new_job("work", payload, max_attempts=20, **options)
        return Plan(request, JobStatus.COMPLETED, fail_times + 1)
    if rng.random() < 0.5:  # always fails
        payload = {"seconds": 0.0, "fail_times": 1000}
        return Plan(queuekit.new_job("work", payload, max_attempts=2, **options), JobStatus.DEAD, 2)
    # always times out
    request = queuekit.new_job("hang", {"seconds": 30.0}, max_attempts=2, **options)
    return Plan(request, JobStatus.DEAD, 2)


def plan_workflow(
    rng: random.Random, make: Callable[[tuple[Parent, ...]], Plan], room: int
) -> list[Plan]:
    """A chain or a fan-in of at most `room` jobs, parents first, each edge with a random
    failure policy; a job whose cancel-edge parent is planned to fail is planned cancelled."""
    size = min(room, rng.randint(3, 6))
    plans: list[Plan] = []
    shape = rng.random()
    if shape < 0.3 and size >= 4:  # a batch: its jobs, then its three callbacks
        return plan_batch(make, size - 3)
    if shape < 0.65:  # a chain
        for _ in range(size):
            plans.append(_child(make, plans[-1:], rng))
    else:  # a fan-in: every job but the last, then the last after all of them
        plans += [make(()) for _ in range(size - 1)]
        plans.append(_child(make, plans, rng))
    return plans


def plan_batch(make: Callable[[tuple[Parent, ...]], Plan], size: int) -> list[Plan]:
    """A batch of `size` jobs and its callbacks (`queuekit.batch`), each callback planned to
    run or to be cancelled by what its members are planned to do."""
    members = [make(()) for _ in range(size)]
    callbacks = [make(()) for _ in range(3)]
    workflow = queuekit.batch(
        *(plan.request for plan in members),
        on_success=callbacks[0].request,
        on_finish=callbacks[1].request,
        on_dead=callbacks[2].request,
    )
    requests = list(workflow)
    outcomes = {plan.expected for plan in members}
    runs = [outcomes == {JobStatus.COMPLETED}, True, JobStatus.DEAD in outcomes]
    planned = [
        Plan(request, plan.expected, plan.runs)
        for request, plan in zip(requests, members, strict=False)
    ]
    for request, plan, run in zip(requests[size:], callbacks, runs, strict=True):
        cancelled = Plan(request, JobStatus.CANCELLED, 0)
        planned.append(Plan(request, plan.expected, plan.runs) if run else cancelled)
    return planned


def _child(
    make: Callable[[tuple[Parent, ...]], Plan], parents: Sequence[Plan], rng: random.Random
) -> Plan:
    edges = tuple(
        Parent(plan.request.id, rng.choice([OnFailure.CANCEL, OnFailure.RUN, OnFailure.IGNORE]))
        for plan in parents
    )
    plan = make(edges)
    failed = {p.request.id for p in parents if p.expected in FAILED}
    if any(edge.job_id in failed and edge.on_failure == OnFailure.CANCEL for edge in edges):
        return Plan(plan.request, JobStatus.CANCELLED, 0)
    return plan

"""Composing workflows: chains, groups, chords and explicit DAGs, as jobs in parent-first order."""

from __future__ import annotations

import pytest

import queuekit
from queuekit import OnFailure, Parent, Tasks, chain, chord, group, new_job
from queuekit.errors import InvalidOptionError, ValidationError

tasks = Tasks()


@tasks.task()
async def fetch(url: str) -> str:
    return url


@tasks.task()
async def count(previous: queuekit.ParentResults[str] = ()) -> int:
    return sum(len(text) for text in previous)


def ids(jobs: object) -> list[str]:
    return [job.id for job in jobs]  # type: ignore[attr-defined]


def edges(job: queuekit.NewJob) -> list[tuple[str, OnFailure]]:
    return [(parent.job_id, parent.on_failure) for parent in job.parents]


def test_step_makes_a_job_without_enqueueing() -> None:
    job = fetch.with_options(priority=20).step("https://example.com")
    assert (job.type, job.queue, job.priority) == ("fetch", "default", 20)
    assert job.payload_json == '{"url":"https://example.com"}'
    assert job.parents == ()
    # The ParentResults parameter is the worker's to fill: not in the payload.
    assert count.step().payload_json == "{}"
    with pytest.raises(InvalidOptionError, match="bad arguments"):
        fetch.step()  # type: ignore[call-arg]


def test_chain_links_each_job_to_the_one_before() -> None:
    a, b, c = fetch.step("a"), count.step(), new_job("store")
    flow = chain(a, b, c)
    jobs = list(flow)
    assert ids(jobs) == [a.id, b.id, c.id]
    assert [edges(job) for job in jobs] == [[], [(a.id, "cancel")], [(b.id, "cancel")]]
    assert {job.workflow_id for job in jobs} == {flow.id}
    assert flow.first == (a,) and ids(flow.last) == [c.id]


def test_group_then_job_is_a_chord() -> None:
    header = [fetch.step(str(n)) for n in range(3)]
    callback = count.step()
    flow = chord(header, callback, on_failure=OnFailure.RUN)
    jobs = list(flow)
    assert ids(jobs) == [*ids(header), callback.id]
    assert edges(jobs[-1]) == [(job.id, OnFailure.RUN) for job in header]
    assert ids(flow.first) == ids(header)


def test_nested_chains_and_groups() -> None:
    a, b, c, d, e = (new_job(name) for name in "abcde")
    flow = chain(a, group(b, chain(c, d)), e)
    jobs = {job.id: job for job in flow}
    assert edges(jobs[b.id]) == [(a.id, "cancel")]
    assert edges(jobs[c.id]) == [(a.id, "cancel")]
    assert edges(jobs[d.id]) == [(c.id, "cancel")]
    # e waits for the last jobs of the group: b and d, not c.
    assert edges(jobs[e.id]) == [(b.id, "cancel"), (d.id, "cancel")]
    assert len({job.workflow_id for job in flow}) == 1


def test_any_dag_through_after_is_put_parents_first() -> None:
    a = new_job("a")
    b = new_job("b", after=[a])
    c = new_job("c", after=[a])
    d = new_job("d", after=[b, Parent(c.id, OnFailure.IGNORE)])
    flow = group(d, c, b, a)
    assert ids(flow) == [a.id, c.id, b.id, d.id]
    assert ids(flow.first) == [a.id] and ids(flow.last) == [d.id]
    # Edges named already are kept as given (policy included), new ones appended.
    then = new_job("then")
    chained = {job.id: job for job in chain(flow, then)}
    assert edges(chained[then.id]) == [(d.id, "cancel")]


def test_parents_outside_the_workflow_are_kept() -> None:
    stored = "01-stored-elsewhere"
    a = new_job("a", after=[stored])
    b = new_job("b")
    jobs = list(chain(a, b))
    assert edges(jobs[0]) == [(stored, "cancel")]
    assert ids(chain(a, b).first) == [a.id]


def test_a_job_twice_or_a_cycle_is_refused() -> None:
    a = new_job("a")
    with pytest.raises(InvalidOptionError, match="twice"):
        chain(a, a)
    x = new_job("x", id="x", after=["y"])
    y = new_job("y", id="y", after=["x"])
    with pytest.raises(InvalidOptionError, match="cycle"):
        group(x, y)
    with pytest.raises(InvalidOptionError, match="made of jobs"):
        group("a")  # type: ignore[arg-type]


def test_workflow_id_can_be_chosen() -> None:
    flow = chain(new_job("a"), new_job("b")).with_id("order-42")
    assert {job.workflow_id for job in flow} == {"order-42"}
    with pytest.raises(ValidationError):
        flow.with_id("")


async def test_a_workflow_is_enqueued_in_one_call(queue: queuekit.Queue) -> None:
    flow = chain(fetch.step("abc"), count.step())
    stored = await queue.enqueue_many(flow)
    assert [job.id for job in stored] == ids(flow.jobs)
    assert [job.status for job in stored] == ["pending", "waiting"]
    page = await queue.list_jobs(workflow_id=flow.id)
    assert sorted(job.id for job in page.jobs) == sorted(ids(flow.jobs))
    assert {job.workflow_id for job in page.jobs} == {flow.id}


def test_a_bad_policy_is_refused() -> None:
    with pytest.raises(InvalidOptionError, match="on_failure must be one of"):
        chain(new_job("a"), new_job("b"), on_failure="later")  # type: ignore[arg-type]
    with pytest.raises(InvalidOptionError, match="made of jobs"):
        chain(new_job("a"), "b")  # type: ignore[arg-type]

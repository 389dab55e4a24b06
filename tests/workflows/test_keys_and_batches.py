"""The unique, debounce and batch options as `new_job` checks them, and `batch()` as it
composes jobs and callbacks (no backend: what reaches one is in tests/conformance)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

import queuekit
from queuekit import JobStatus, OnConflict, OnFailure, Parent
from queuekit.batches import BATCH_HEADER, BatchCounts
from queuekit.errors import InvalidOptionError, ValidationError


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"unique_for": 60}, "unique_for needs unique_key= or unique_payload=True"),
        ({"unique_states": ["dead"]}, "unique_states needs unique_key"),
        ({"on_conflict": "replace"}, "on_conflict needs unique_key"),
        ({"unique_key": "k", "unique_states": ["pending"]}, "a live job always holds it"),
        ({"unique_key": "k", "unique_states": []}, "at least one state"),
        ({"unique_key": "k", "unique_states": "dead"}, "must be a list of states"),
        ({"unique_key": "k", "unique_for": 0}, "unique_for must be finite and > 0"),
        ({"unique_key": "k", "on_conflict": "merge"}, "on_conflict must be one of return, replace"),
        ({"unique_payload": "yes"}, "unique_payload must be true or false"),
        ({"debounce_max": 60}, "debounce_max needs debounce_key="),
        ({"debounce_key": "d", "unique_key": "k"}, "not both"),
        ({"debounce_key": "d", "unique_payload": True}, "not both"),
        ({"debounce_key": "", "debounce_max": 1}, "debounce_key must be a string"),
        ({"batch_id": "no spaces"}, "invalid batch id"),
    ],
)
def test_options_that_do_not_go_together_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        queuekit.new_job("t", {"a": 1}, **options)


def test_a_period_holds_through_completed_by_default() -> None:
    job = queuekit.new_job("t", unique_key="k", unique_for=timedelta(hours=24))
    assert (job.unique_for, job.unique_states) == (86_400.0, (JobStatus.COMPLETED,))
    chosen = queuekit.new_job("t", unique_key="k", unique_states=["dead", "completed", "dead"])
    assert (chosen.unique_for, chosen.unique_states) == (
        None,
        (JobStatus.COMPLETED, JobStatus.DEAD),
    )
    assert queuekit.new_job("t", unique_key="k", on_conflict="replace").on_conflict == (
        OnConflict.REPLACE
    )


def test_unique_payload_is_one_key_for_one_value_in_any_key_order() -> None:
    one = queuekit.new_job("t", {"a": 1, "b": {"c": [1, "é"]}}, unique_payload=True)
    two = queuekit.new_job("t", {"b": {"c": [1, "é"]}, "a": 1}, unique_payload=True)
    assert one.unique_key == two.unique_key and one.unique_key is not None
    assert one.payload_json != two.payload_json  # the payload itself is stored as given
    assert queuekit.new_job("t", {"a": 2}, unique_payload=True).unique_key != one.unique_key
    assert queuekit.new_job("t", None, unique_payload=True).unique_key != one.unique_key


def test_trigger_edges_are_all_or_none() -> None:
    with pytest.raises(InvalidOptionError, match="on_failure trigger"):
        queuekit.new_job("t", after=[Parent("a", OnFailure.TRIGGER), "b"])
    job = queuekit.new_job("t", after=[{"id": "a", "on_failure": "trigger"}])  # type: ignore[list-item]  # JSON
    assert job.parents == (Parent("a", OnFailure.TRIGGER),)


def test_a_batch_tags_its_jobs_and_makes_its_callbacks_wait_for_them() -> None:
    members = [queuekit.new_job("m", n) for n in range(3)]
    workflow = queuekit.batch(
        *members,
        on_success=queuekit.new_job("s"),
        on_finish=queuekit.new_job("f", headers={"tenant": "t1"}),
        on_dead=queuekit.new_job("d"),
        id="b7",
    )
    jobs = list(workflow)
    assert workflow.id == "b7" and {job.workflow_id for job in jobs} == {"b7"}
    assert [job.batch_id for job in jobs] == ["b7"] * 3 + [None] * 3
    ids = [member.id for member in members]
    policies = [OnFailure.CANCEL, OnFailure.RUN, OnFailure.TRIGGER]
    for callback, policy in zip(jobs[3:], policies, strict=True):
        assert [p.job_id for p in callback.parents] == ids
        assert {p.on_failure for p in callback.parents} == {policy}
        assert callback.headers[BATCH_HEADER] == "b7"
    assert jobs[4].headers["tenant"] == "t1"


def test_a_batch_nests_in_a_workflow_and_keeps_its_batch_id() -> None:
    inner = queuekit.batch(queuekit.new_job("m"), on_finish=queuekit.new_job("f"), id="b")
    outer = queuekit.chain(queuekit.new_job("first"), inner).with_id("w")
    jobs = list(outer)
    assert [job.batch_id for job in jobs] == [None, "b", None]
    assert {job.workflow_id for job in jobs} == {"w"}


def test_a_bad_batch_is_refused() -> None:
    with pytest.raises(InvalidOptionError, match="at least one job"):
        queuekit.batch(on_finish=queuekit.new_job("f"))
    with pytest.raises(InvalidOptionError, match="give it no after="):
        queuekit.batch(queuekit.new_job("m"), on_finish=queuekit.new_job("f", after=["x"]))
    with pytest.raises(InvalidOptionError, match="at most 100000 jobs"):
        queuekit.batch(
            *(queuekit.new_job("m") for _ in range(100_001)), on_finish=queuekit.new_job("f")
        )


def test_batch_counts_add_up() -> None:
    counts = BatchCounts.of({JobStatus.PENDING: 2, JobStatus.DEAD: 1, JobStatus.COMPLETED: 4})
    assert (counts.total, counts.unfinished, counts.dead) == (7, 2, 1)

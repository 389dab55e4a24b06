"""The CLI's side of unique keys, debounce and batches: `enqueue`'s flags for them, a job's
batch and debounce key in `jobs show`, `jobs list --batch`, `queuekit batch ID`, and
`--after ID=trigger`."""

from __future__ import annotations

from datetime import datetime

from queuekit import Queue, Tasks, Worker, batch, new_job

from ..setups import BackendSetup
from .test_cli import fails, ok, ok_json

tasks = Tasks()


@tasks.task(max_attempts=1)
async def crash() -> None:
    raise RuntimeError("down")


@tasks.task()
async def report() -> None:
    return None


@tasks.task()
async def alert() -> str:
    return "paged"


def test_unique_flags(durable_setup: BackendSetup) -> None:
    url = durable_setup.url
    assert url is not None
    period = ["--unique-key", "report:a", "--unique-for", "86400"]
    first = ok_json("enqueue", "report", '{"n": 1}', *period, "--delay", "3600", url=url)
    kept = ok_json("enqueue", "report", '{"n": 2}', *period, url=url)
    assert (kept["id"], kept["payload"]) == (first["id"], {"n": 1})
    replaced = ok_json(
        "enqueue", "report", '{"n": 3}', *period, "--on-conflict", "replace", url=url
    )
    assert (replaced["id"], replaced["payload"]) == (first["id"], {"n": 3})
    assert datetime.fromisoformat(replaced["scheduled_at"]) < datetime.fromisoformat(
        first["scheduled_at"]
    )

    by_payload = ok_json("enqueue", "sync", '{"a": 1, "b": 2}', "--unique-payload", url=url)
    assert by_payload["unique_key"].startswith("sync#")
    same = ok_json("enqueue", "sync", '{"b": 2, "a": 1}', "--unique-payload", url=url)
    assert same["id"] == by_payload["id"]
    other = ok_json("enqueue", "sync", '{"a": 2}', "--unique-payload", url=url)
    assert other["id"] != by_payload["id"]

    states = ["--unique-key", "k", "--unique-states", "dead,cancelled", "--unique-states", "dead"]
    held = ok_json("enqueue", "x", *states, url=url)
    assert "cancelled" in ok("jobs", "cancel", held["id"], url=url)
    assert ok_json("enqueue", "x", *states, url=url)["id"] == held["id"]  # cancelled: held


def test_debounce_flags_and_show(durable_setup: BackendSetup) -> None:
    url = durable_setup.url
    assert url is not None
    flags = ["--debounce-key", "shop-1", "--debounce-max", "600", "--delay", "60"]
    first = ok_json("enqueue", "reindex", "1", *flags, url=url)
    later = ok_json("enqueue", "reindex", "2", *flags, url=url)
    assert (later["id"], later["payload"], later["debounce_key"]) == (first["id"], 2, "shop-1")
    shown = ok("jobs", "show", first["id"], url=url)
    assert "debounce_key      shop-1" in shown and "batch_id          -" in shown


async def test_batch_flags_list_and_counts(durable_setup: BackendSetup) -> None:
    url = durable_setup.url
    assert url is not None
    members = [new_job("crash"), new_job("crash"), new_job("report")]
    async with Queue(durable_setup.make()) as queue:
        await queue.enqueue_many(batch(*members, on_dead=new_job("alert"), id="b-1"))
        await Worker(queue, tasks).run_until_empty()
    joined = ok_json("enqueue", "report", "--batch-id", "b-1", "--delay", "3600", url=url)
    assert joined["batch_id"] == "b-1"
    ok("enqueue", "report", url=url)  # not of the batch

    listed = ok_json("jobs", "list", "--batch", "b-1", url=url)
    assert {job["id"] for job in listed["jobs"]} == {job.id for job in members} | {joined["id"]}
    table = ok("jobs", "list", "--batch", "b-1", "--status", "dead", url=url)
    assert {members[0].id, members[1].id} <= set(table.split())
    assert "batch_id          b-1" in ok("jobs", "show", joined["id"], url=url)

    counts = ok_json("batch", "b-1", url=url)
    assert counts == {
        "waiting": 0,
        "pending": 1,
        "running": 0,
        "failed": 0,
        "completed": 1,
        "dead": 2,
        "cancelled": 0,
        "total": 4,
    }
    text = ok("batch", "b-1", url=url).splitlines()
    assert "pending    1" in text and "total      4" in text
    assert "no batch with id 'nope'" in fails("batch", "nope", url=url)
    assert "invalid batch id" in fails("batch", "no spaces", url=url)
    assert "invalid batch id" in fails("jobs", "list", "--batch", "no spaces", url=url)


async def test_after_trigger(durable_setup: BackendSetup) -> None:
    url = durable_setup.url
    assert url is not None
    parent = ok_json("enqueue", "crash", "--max-attempts", "1", url=url)
    survivor = ok_json("enqueue", "report", url=url)
    on_dead = ok_json("enqueue", "alert", "--after", f"{parent['id']}=trigger", url=url)
    quiet = ok_json("enqueue", "alert", "--after", f"{survivor['id']}=trigger", url=url)
    assert on_dead["status"] == quiet["status"] == "waiting"
    assert "on failure: trigger" in ok("jobs", "show", on_dead["id"], url=url)

    async with Queue(durable_setup.make()) as queue:
        await Worker(queue, tasks).run_until_empty()
    assert ok_json("jobs", "show", on_dead["id"], url=url)["status"] == "completed"
    cancelled = ok_json("jobs", "show", quiet["id"], url=url)
    assert (cancelled["status"], cancelled["last_error"]) == ("cancelled", "no parent died")


def test_bad_values_are_one_line() -> None:
    url = "memory://"  # refused before any job is stored
    cases = [
        (["--unique-key", "k", "--unique-for", "a day"], "'a day' is not a valid float"),
        (["--unique-key", "k", "--unique-for", "0"], "unique_for"),
        (["--unique-key", "k", "--unique-states", "running"], "unique_states names finished"),
        (["--unique-key", "k", "--unique-states", "dead,later"], "not 'later'"),
        (["--unique-key", "k", "--on-conflict", "merge"], "on_conflict must be one of"),
        (["--unique-for", "60"], "unique_for needs unique_key= or unique_payload=True"),
        (["--on-conflict", "replace"], "on_conflict needs unique_key="),
        (["--debounce-max", "60"], "debounce_max needs debounce_key="),
        (["--debounce-key", "d", "--debounce-max", "-1"], "debounce_max"),
        (["--unique-payload", "--debounce-key", "d"], "a unique key or a debounce key, not both"),
        (["--batch-id", "no spaces"], "id 'no spaces': use 1 to 128 characters"),
        (["--after", "a=trigger", "--after", "b"], "give all its parents on_failure trigger"),
    ]
    for flags, error in cases:
        assert error in fails("enqueue", "t", *flags, url=url), flags


async def test_show_prints_a_callbacks_first_parents(durable_setup: BackendSetup) -> None:
    url = durable_setup.url
    assert url is not None
    members = [new_job("report") for _ in range(103)]
    on_success = new_job("alert")
    async with Queue(durable_setup.make()) as queue:
        await queue.enqueue_many(batch(*members, on_success=on_success, id="wide"))
    lines = ok("jobs", "show", on_success.id, url=url).splitlines()
    first = lines.index("parents")
    assert lines[first + 1] == f"  {members[0].id}  pending  on failure: cancel"
    assert lines[first + 101] == "  and 3 more (--json lists them all)"
    assert len(ok_json("jobs", "show", on_success.id, url=url)["parents"]) == 103

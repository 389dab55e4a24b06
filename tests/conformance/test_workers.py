"""Conformance: the worker registry (beat, list, expiry and clean-up, drain, removal)."""

from __future__ import annotations

from queuekit import Backend

from ..waiting import eventually

LONG = 300.0
"""A ttl no test outlives."""
SHORT = 0.2
"""A ttl the tests wait out (by the backend's clock, with `eventually`)."""


async def listed(backend: Backend) -> dict[str, tuple[str, bool]]:
    return {w.worker_id: (w.info, w.draining) for w in await backend.list_workers()}


async def test_a_beat_lists_the_worker_with_its_info(backend: Backend) -> None:
    assert await backend.list_workers() == []
    assert await backend.beat_worker("w-2", '{"n":1}', ttl=LONG) is False
    assert await backend.beat_worker("w-1", '{"n":"é"}', ttl=LONG) is False
    first = {w.worker_id: w for w in await backend.list_workers()}
    assert list(first) == ["w-1", "w-2"]  # by id
    assert first["w-1"].info == '{"n":"é"}'
    assert first["w-1"].started_at == first["w-1"].last_seen
    assert first["w-1"].started_at.tzinfo is not None
    assert not first["w-1"].draining

    await backend.beat_worker("w-1", '{"n":2}', ttl=LONG)
    (again,) = [w for w in await backend.list_workers() if w.worker_id == "w-1"]
    assert again.info == '{"n":2}'
    assert again.started_at == first["w-1"].started_at  # the first beat's, kept
    assert again.last_seen >= first["w-1"].last_seen


async def test_a_drain_request_is_returned_by_every_later_beat(backend: Backend) -> None:
    await backend.beat_worker("w-1", "{}", ttl=LONG)
    await backend.beat_worker("w-2", "{}", ttl=LONG)
    assert await backend.drain_worker("w-1") is True
    assert await backend.drain_worker("w-1") is True  # asking again changes nothing
    assert await listed(backend) == {"w-1": ("{}", True), "w-2": ("{}", False)}
    assert await backend.beat_worker("w-1", '{"a":1}', ttl=LONG) is True
    assert await backend.beat_worker("w-1", '{"a":2}', ttl=LONG) is True
    assert await backend.beat_worker("w-2", "{}", ttl=LONG) is False
    assert await listed(backend) == {"w-1": ('{"a":2}', True), "w-2": ("{}", False)}


async def test_draining_an_unknown_worker_changes_nothing(backend: Backend) -> None:
    assert await backend.drain_worker("nobody") is False
    assert await backend.list_workers() == []
    assert await backend.beat_worker("nobody", "{}", ttl=LONG) is False  # no request was kept


async def test_a_silent_worker_is_no_longer_listed_after_its_ttl(backend: Backend) -> None:
    await backend.beat_worker("quick", "{}", ttl=SHORT)
    await backend.beat_worker("steady", "{}", ttl=LONG)

    async def quick_gone() -> bool:
        return "quick" not in await listed(backend)

    await eventually(quick_gone, "the silent worker left the list")
    assert list(await listed(backend)) == ["steady"]
    assert await backend.drain_worker("quick") is False  # not listed: unknown
    await backend.beat_worker("quick", "{}", ttl=LONG)  # it beats again: listed again
    assert list(await listed(backend)) == ["quick", "steady"]


async def test_beats_clean_up_the_entries_of_the_long_silent(backend: Backend) -> None:
    await backend.beat_worker("gone", "{}", ttl=SHORT)
    await backend.beat_worker("other", "{}", ttl=LONG)
    (other,) = [w for w in await backend.list_workers() if w.worker_id == "other"]
    before = other.last_seen  # the backend's clock, not earlier than gone's last beat

    async def twice_its_ttl_passed() -> bool:
        await backend.beat_worker("other", "{}", ttl=LONG)  # this beat cleans up
        (seen,) = [w for w in await backend.list_workers() if w.worker_id == "other"]
        return (seen.last_seen - before).total_seconds() > 2 * SHORT

    await eventually(twice_its_ttl_passed, "twice the silent worker's ttl passed")
    # Had its entry been kept, this beat would find it and keep its first start.
    await backend.beat_worker("gone", "{}", ttl=LONG)
    (back,) = [w for w in await backend.list_workers() if w.worker_id == "gone"]
    assert back.started_at == back.last_seen > before


async def test_a_late_beat_keeps_the_entry_and_its_drain_request(backend: Backend) -> None:
    await backend.beat_worker("w", "{}", ttl=1.0)
    assert await backend.drain_worker("w") is True
    (entry,) = await backend.list_workers()

    async def expired() -> bool:
        return await backend.list_workers() == []

    await eventually(expired, "the worker's entry expired")
    # Its own beat never cleans up its own entry, however late.
    assert await backend.beat_worker("w", "{}", ttl=LONG) is True
    (back,) = await backend.list_workers()
    assert back.started_at == entry.started_at and back.draining


async def test_removing_a_worker_unlists_it_at_once(backend: Backend) -> None:
    await backend.beat_worker("w-1", "{}", ttl=LONG)
    await backend.beat_worker("w-2", "{}", ttl=LONG)
    await backend.drain_worker("w-1")
    await backend.remove_worker("w-1")
    assert list(await listed(backend)) == ["w-2"]
    await backend.remove_worker("w-1")  # idempotent
    await backend.remove_worker("never-was")
    assert await backend.drain_worker("w-1") is False
    assert await backend.beat_worker("w-1", "{}", ttl=LONG) is False  # a fresh entry

"""`queuekit limits` and `queuekit hold`, run as a user would, against the durable backends."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from queuekit import Limits, Queue

from ..conformance.helpers import claim_one
from ..setups import BackendSetup
from .test_cli import fails, ok, ok_json

WEEK = str(7 * 24 * 3600)
"""A rate window no test run straddles (windows start at multiples of it)."""


async def test_limit_a_queue_from_the_terminal(durable_setup: BackendSetup) -> None:
    url = durable_setup.url
    assert url is not None
    ok("migrate", url=url)
    assert ok("limits", url=url).strip() == "no queue has limits"
    assert ok_json("limits", url=url) == []

    said = ok("limits", "set", "payments", "--concurrency", "20", "--per-key", "2",
              "--rate", "1000", "--key-rate", "100", "--period", WEEK, url=url)  # fmt: skip
    assert said.strip() == (
        "queue payments limited: concurrency 20, per key 2, rate 1000 per 604800s, "
        "key rate 100 per 604800s"
    )
    job = ok_json(
        "enqueue", "charge", "{}", "--queue", "payments", "--limit-key", "acct_1", url=url
    )
    async with Queue(durable_setup.make()) as queue:
        assert await queue.limits() == {
            "payments": Limits(concurrency=20, per_key=2, rate=1000, key_rate=100, period=7 * 86400)
        }
        assert (await queue.get_job(job["id"])).limit_key == "acct_1"
        running = await claim_one(queue.backend, queue="payments")
        assert running.id == job["id"] and running.started_at is not None

    ok("hold", "payments", "60", "--key", "acct_2", url=url)
    assert "queue payments held for 30.0s" in ok("hold", "payments", "30", url=url)

    (row,) = ok_json("limits", url=url)
    assert row["queue"] == "payments" and row["limits"]["per_key"] == 2
    shown = ok_json("limits", "payments", url=url)
    assert shown["running"] == 1 and shown["running_by_key"] == {"acct_1": 1}
    assert shown["started_in_window"] == 1
    assert list(shown["held_keys"]) == ["acct_2"]
    assert datetime.fromisoformat(shown["held_until"]) > running.started_at
    assert datetime.fromisoformat(shown["window_ends_at"]) > running.started_at

    detail = ok("limits", "payments", url=url)
    assert "running     1/20" in detail and "started     1/1000 in the window ending" in detail
    assert "held keys   1" in detail
    assert "acct_2" in detail  # the held keys' table
    assert "acct_1  1/2" in detail  # the busiest keys' table
    overview = ok("limits", url=url)
    assert "payments" in overview and "1/20" in overview and "1/1000" in overview

    # `set` replaces the limits as a whole.
    ok("limits", "set", "payments", "--per-key", "1", "--ordered", url=url)
    assert ok_json("limits", "payments", url=url)["limits"] == {
        "concurrency": None,
        "per_key": 1,
        "rate": None,
        "key_rate": None,
        "period": 60.0,
        "ordered": True,
    }
    assert "queue payments has no limits" in ok("limits", "clear", "payments", url=url)
    assert ok_json("limits", "payments", url=url)["limits"] is None
    async with Queue(durable_setup.make()) as queue:
        assert "payments" not in await queue.limits()


def test_bad_values_are_one_line_and_store_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    ok("migrate", url=url)
    set_q = ("limits", "set", "q")
    assert "concurrency must be an integer from 1 to 1000000" in fails(
        *set_q, "--concurrency", "0", url=url
    )
    assert "per_key must be an integer" in fails(*set_q, "--per-key", "1000001", url=url)
    assert "period must be from 0.001 to 31622400 seconds" in fails(
        *set_q, "--rate", "5", "--period", "0", url=url
    )
    assert "period must be" in fails(*set_q, "--rate", "5", "--period", "nan", url=url)
    assert "'x' is not a valid integer" in fails(*set_q, "--rate", "x", url=url)
    assert "no limit given" in fails(*set_q, url=url)
    assert "no limit given" in fails(*set_q, "--period", "5", url=url)
    assert "invalid queue name" in fails("limits", "set", "bad name", "--rate", "1", url=url)
    assert "invalid queue name" in fails("limits", "clear", "bad name", url=url)
    assert "invalid queue name" in fails("limits", "bad name", url=url)
    assert "a hold must be finite" in fails("hold", "q", "nan", url=url)
    assert "a hold must be finite" in fails("hold", "q", "inf", url=url)
    assert "limit_key must be a string" in fails("hold", "q", "5", "--key", "", url=url)
    assert "limit_key must be a string" in fails(
        "enqueue", "t", "--queue", "q", "--limit-key", "", url=url
    )
    assert "Missing argument 'SECONDS'" in fails("hold", "q", url=url)
    assert "Missing argument 'QUEUE'" in fails("limits", "clear", url=url)
    assert "no backend URL" in fails("limits")
    assert ok_json("limits", url=url) == []
    shown = ok_json("limits", "q", url=url)
    assert shown["limits"] is None and shown["held_until"] is None and shown["held_keys"] == {}


def test_help_lists_the_commands() -> None:
    assert "set" in ok("limits", "--help") and "clear" in ok("limits", "--help")
    assert "--per-key" in ok("limits", "set", "--help")
    assert "--key" in ok("hold", "--help")

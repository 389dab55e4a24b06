"""Typed tasks: payloads and results converted by the handler's annotations, on every backend."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from uuid import UUID

import pydantic
import pytest
from typing_extensions import TypedDict  # pydantic needs it before Python 3.12

import queuekit
from queuekit import InvalidPayloadError, JobStatus, Queue, Worker
from queuekit.typed import codec_for

from .options import FAST


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclass(frozen=True)
class Address:
    street: str
    city: str


class Line(TypedDict):
    sku: str
    quantity: int


class Money(pydantic.BaseModel):
    amount: Decimal
    currency: str


class Receipt(pydantic.BaseModel):
    order_id: UUID
    total: Money
    paid_at: datetime
    ships_on: date
    color: Color
    lines: list[Line]
    addresses: dict[str, Address]


tasks = queuekit.Tasks()


@tasks.task()
async def checkout(
    order_id: UUID,
    total: Money,
    paid_at: datetime,
    ships_on: date,
    color: Color,
    lines: list[Line],
    addresses: dict[str, Address],
) -> Receipt:
    return Receipt(
        order_id=order_id,
        total=total,
        paid_at=paid_at,
        ships_on=ships_on,
        color=color,
        lines=lines,
        addresses=addresses,
    )


@tasks.task()
def total_of(prices: list[Decimal]) -> Decimal:
    return sum(prices, Decimal(0))


@tasks.task()
async def plain(a: int, b: dict[str, list[float | None]], c: object = None) -> str | None:
    return None


@tasks.task()
async def broken() -> Decimal:
    return object()  # type: ignore[return-value]


ORDER = {
    "order_id": UUID("12345678-1234-5678-1234-567812345678"),
    "total": Money(amount=Decimal("12.30"), currency="EUR"),
    "paid_at": datetime(2026, 11, 28, 9, 30, tzinfo=UTC),
    "ships_on": date(2026, 12, 1),
    "color": Color.BLUE,
    "lines": [Line(sku="A-1", quantity=2)],
    "addresses": {"home": Address("1 Main St", "Springfield")},
}


async def test_typed_payloads_and_results_round_trip(queue: Queue) -> None:
    job = await checkout.enqueue(
        queue,
        UUID("12345678-1234-5678-1234-567812345678"),
        Money(amount=Decimal("12.30"), currency="EUR"),
        datetime(2026, 11, 28, 9, 30, tzinfo=UTC),
        date(2026, 12, 1),
        Color.BLUE,
        [Line(sku="A-1", quantity=2)],
        {"home": Address("1 Main St", "Springfield")},
    )
    stored = {
        "order_id": "12345678-1234-5678-1234-567812345678",
        "total": {"amount": "12.30", "currency": "EUR"},
        "paid_at": "2026-11-28T09:30:00Z",
        "ships_on": "2026-12-01",
        "color": "blue",
        "lines": [{"sku": "A-1", "quantity": 2}],
        "addresses": {"home": {"street": "1 Main St", "city": "Springfield"}},
    }
    assert (await queue.get_job(job.id)).payload == stored
    sums = await total_of.enqueue(queue, [Decimal("0.10"), Decimal("0.20")])
    assert sums.payload == {"prices": ["0.10", "0.20"]}
    await Worker(queue, tasks, **FAST).run_until_empty()

    assert await checkout.result(queue, job) == Receipt.model_validate(ORDER)
    assert await queue.result(job.id) == stored
    assert await total_of.result(queue, sums.id) == Decimal("0.30")
    assert await queue.result(sums.id) == "0.30"


async def test_by_name_enqueue_takes_plain_json_that_the_worker_converts(queue: Queue) -> None:
    job = await queue.enqueue("total_of", {"prices": ["1.5", 2]})
    await Worker(queue, tasks, **FAST).run_until_empty()
    assert await total_of.result(queue, job.id) == Decimal("3.5")


async def test_an_invalid_payload_goes_dead_at_once_with_the_validation_error(
    queue: Queue,
) -> None:
    job = await queue.enqueue("total_of", {"prices": ["1.5", "lots"]})
    missing = await queue.enqueue("total_of", {})
    await Worker(queue, tasks, **FAST).run_until_empty()
    dead = await queue.get_job(job.id)
    assert (dead.status, dead.attempts) == (JobStatus.DEAD, 1)
    assert dead.last_error is not None
    assert "argument 'prices' of task 'total_of'" in dead.last_error
    assert "decimal" in dead.last_error.lower()
    dead = await queue.get_job(missing.id)
    assert (dead.status, dead.attempts) == (JobStatus.DEAD, 1)
    assert "missing a required argument: 'prices'" in (dead.last_error or "")


async def test_a_result_that_does_not_match_the_return_type_goes_dead(queue: Queue) -> None:
    job = await broken.enqueue(queue)
    await Worker(queue, tasks, **FAST).run_until_empty()
    dead = await queue.get_job(job.id)
    assert (dead.status, dead.attempts) == (JobStatus.DEAD, 1)
    assert "result of task 'broken'" in (dead.last_error or "")


async def test_typed_enqueue_refuses_invalid_arguments_and_stores_nothing(queue: Queue) -> None:
    with pytest.raises(InvalidPayloadError, match="argument 'prices' of task 'total_of'"):
        await total_of.enqueue(queue, ["not a number"])  # type: ignore[list-item]
    assert (await queue.list_jobs()).jobs == []


def test_plain_json_tasks_never_touch_pydantic() -> None:
    assert codec_for(plain.name, plain.function) is None
    assert codec_for(total_of.name, total_of.function) is not None


class SignupV1(pydantic.BaseModel):
    email: str


class SignupV2(pydantic.BaseModel):
    """A deploy added an optional field."""

    email: str
    referrer: str | None = None


class SignupV3(pydantic.BaseModel):
    """A deploy renamed the required field."""

    address: str


# The task `welcome` as three deploys of the code define it.
deploy_1, deploy_2, deploy_3 = queuekit.Tasks(), queuekit.Tasks(), queuekit.Tasks()


@deploy_1.task("welcome")
async def welcome_1(signup: SignupV1) -> None:
    """The first deploy."""


@deploy_2.task("welcome")
async def welcome_2(signup: SignupV2, locale: str = "en") -> str:
    return f"{signup!r} {locale}"


@deploy_3.task("welcome")
async def welcome_3(signup: SignupV3) -> None:
    """The deploy that renamed `email`."""


async def test_jobs_of_an_older_version_run_after_an_optional_field_is_added(
    queue: Queue,
) -> None:
    job = await welcome_1.enqueue(queue, SignupV1(email="a@example.com"))
    await Worker(queue, deploy_2, **FAST).run_until_empty()
    assert await welcome_2.result(queue, job) == "SignupV2(email='a@example.com', referrer=None) en"


async def test_a_renamed_required_field_leaves_a_clear_error_on_the_dead_job(
    queue: Queue,
) -> None:
    job = await welcome_1.enqueue(queue, SignupV1(email="a@example.com"))
    await Worker(queue, deploy_3, **FAST).run_until_empty()
    dead = await queue.get_job(job.id)
    assert (dead.status, dead.attempts) == (JobStatus.DEAD, 1)
    assert dead.last_error is not None
    assert "argument 'signup' of task 'welcome'" in dead.last_error
    assert "address\n  Field required" in dead.last_error

"""The HTTP API's enqueue request models, built from `queuekit.options.OPTIONS`: one field per
option with the option's type and bounds, and the rules between options in the schema."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    create_model,
)
from pydantic.config import JsonDict, JsonValue

from ..job import TERMINAL_STATUSES, OnConflict, OnFailure
from ..options import OPTIONS, Option
from .models import Name, ParentRef, integral

MAX_BULK_JOBS = 1000

FinishedState = enum.StrEnum(  # type: ignore[misc]
    "FinishedState", {status.name: status.value for status in sorted(TERMINAL_STATUSES)}
)
"""A state `unique_states` may name: a live job holds its key whatever the option says."""


def _text(value: object) -> object:
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 date-time string with a time zone")
    return value


def _annotation(option: Option) -> Any:
    """The pydantic type of one enqueue option, with the option's bounds."""
    bounds = Field(
        ge=option.minimum,
        gt=option.exclusive_minimum,
        le=option.maximum,
        min_length=option.min_length,
        max_length=option.max_length,
        pattern=option.pattern,
    )
    by_name: dict[str, Any] = {
        # `after`: parent ids, or objects naming one with its on_failure.
        "after": Annotated[list[Name | ParentRef], bounds],
        "unique_states": Annotated[list[FinishedState], Field(min_length=1)],
        "on_conflict": OnConflict,
    }
    kinds: dict[Any, Any] = {
        str: Annotated[str, Strict(), bounds],
        bool: Annotated[bool, Strict()],
        int: Annotated[int, Strict(), bounds, BeforeValidator(integral)],
        float: Annotated[float, Strict(), bounds],
        datetime: Annotated[AwareDatetime, BeforeValidator(_text), bounds],
        dict[str, str]: Annotated[
            dict[Annotated[str, Field(min_length=1)], Annotated[str, Strict()]], bounds
        ],
    }
    plain = by_name.get(option.name) or kinds[option.type]
    return plain if option.default is not None else plain | None


def _given(name: str, schema: JsonValue) -> JsonDict:
    """A body that gives option `name` a value of `schema` (a null is an option left out)."""
    return {"required": [name], "properties": {name: schema}}


_UNIQUE: list[JsonValue] = [
    _given("unique_key", {"type": "string"}),
    _given("unique_payload", {"const": True}),
]
_HOLDS: tuple[tuple[str, JsonValue], ...] = (
    ("unique_for", {"type": "number"}),
    ("unique_states", {"type": "array"}),
    ("on_conflict", {"const": OnConflict.REPLACE.value}),
)
"""The options that shape a unique key's hold, each with a value that sets it."""
_NEED_UNIQUE: list[JsonValue] = [
    {"anyOf": [{"not": _given(name, schema)}, *_UNIQUE]} for name, schema in _HOLDS
]
_DEBOUNCE_KEY = _given("debounce_key", {"type": "string"})
_TRIGGER: JsonValue = {
    "type": "object",
    "required": ["on_failure"],
    "properties": {"on_failure": {"const": OnFailure.TRIGGER.value}},
}
_RULES: JsonDict = {
    # The document's statement of `check_options`' rules between options: not both a delay
    # and a run_at, nor an expires_at and an expires_in; a unique key's hold options need a
    # unique key (of its own or of the payload), debounce_max a debounce key; and a job has a
    # unique key or a debounce key, not both; and its parents' edges are all trigger or none.
    "allOf": [
        {
            "not": {
                "allOf": [_given("delay", {"type": "number"}), _given("run_at", {"type": "string"})]
            }
        },
        {
            "not": {
                "allOf": [
                    _given("expires_at", {"type": "string"}),
                    _given("expires_in", {"type": "number"}),
                ]
            }
        },
        *_NEED_UNIQUE,
        {"anyOf": [{"not": _given("debounce_max", {"type": "number"})}, _DEBOUNCE_KEY]},
        {"not": {"allOf": [{"anyOf": _UNIQUE}, _DEBOUNCE_KEY]}},
        {"properties": {"after": {"anyOf": [{"items": {"not": _TRIGGER}}, {"items": _TRIGGER}]}}},
    ]
}

_NEW_JOB_FIELDS: dict[str, Any] = {
    "type": (Annotated[Name, Field(description="The task type.")], ...),
    "payload": (Any, None),
    **{
        option.name: (_annotation(option), Field(option.default, description=option.help))
        for option in OPTIONS
    },
}
NewJob = create_model(
    "NewJob",
    __config__=ConfigDict(extra="forbid", json_schema_extra=_RULES),
    __doc__="A job to enqueue: its type, payload and options.",
    **_NEW_JOB_FIELDS,
)


class NewJobs(BaseModel):
    """Jobs to enqueue in one round trip, in order."""

    model_config = ConfigDict(extra="forbid")
    jobs: list[NewJob] = Field(min_length=1, max_length=MAX_BULK_JOBS)  # type: ignore[valid-type]

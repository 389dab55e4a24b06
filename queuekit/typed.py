"""A task's codec: its arguments and result checked and converted by the handler's annotations.

Built once per handler. A handler whose parameters and return type are all plain JSON types
(or unannotated) gets no codec, so its jobs never touch pydantic; any other annotation
(a pydantic model, a dataclass, a TypedDict, `datetime`, `UUID`, `Decimal`, an enum, lists
and dicts of these) is served by a pydantic `TypeAdapter` (the `queuekit[typed]` extra).
"""

from __future__ import annotations

import functools
import inspect
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import PayloadValidationError
from .job import JSON

_PLAIN_TYPES: tuple[Any, ...] = (Any, object, str, int, float, bool, None, type(None))
_PLAIN_CONTAINERS: tuple[Any, ...] = (list, Sequence, dict, typing.Union, types.UnionType)


def _is_plain(annotation: Any) -> bool:
    """Whether values of this annotation are JSON already and need no conversion."""
    # Compared by identity: annotations need not be hashable or comparable.
    if any(annotation is plain for plain in _PLAIN_TYPES):
        return True
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:  # its marks (`ParentResults`') change no value
        return _is_plain(typing.get_args(annotation)[0])
    if not any(origin is container for container in _PLAIN_CONTAINERS):
        return False
    arguments = typing.get_args(annotation)
    # JSON object keys are strings: dict[int, str] needs converting.
    if origin is dict and arguments and arguments[0] is not str:
        return False
    return all(_is_plain(argument) for argument in arguments)


@dataclass(frozen=True)
class Codec:
    """Checks and converts one handler's arguments and result through pydantic."""

    name: str
    signature: inspect.Signature
    parameters: Mapping[str, Any]
    """Each parameter's `TypeAdapter`."""
    result: Any
    """The return type's `TypeAdapter`."""

    def encode_arguments(self, arguments: Mapping[str, Any]) -> dict[str, JSON]:
        """Bound arguments as the JSON payload to store; `PayloadValidationError` if invalid."""
        return {
            name: self._convert(self.parameters[name], value, f"argument {name!r}", dump=True)
            for name, value in arguments.items()
        }

    def decode_arguments(self, payload: JSON) -> inspect.BoundArguments:
        """A stored payload as the handler's arguments, bound the way `Task.run` calls it."""
        args: tuple[JSON, ...] = () if payload is None or isinstance(payload, dict) else (payload,)
        kwargs: dict[str, JSON] = payload if isinstance(payload, dict) else {}
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise PayloadValidationError(f"payload of task {self.name!r}: {exc}") from None
        for name, value in bound.arguments.items():
            adapter = self.parameters[name]
            bound.arguments[name] = self._convert(adapter, value, f"argument {name!r}", dump=False)
        return bound

    def encode_result(self, value: Any) -> JSON:
        """A handler's return value as the JSON result to store."""
        return self._convert(self.result, value, "result", dump=True)

    def decode_result(self, value: JSON) -> Any:
        """A stored result as the handler's return type."""
        return self._convert(self.result, value, "result", dump=False)

    def _convert(self, adapter: Any, value: Any, what: str, *, dump: bool) -> Any:
        import pydantic

        try:
            checked = adapter.validate_python(value)
            return adapter.dump_python(checked, mode="json") if dump else checked
        except pydantic.ValidationError as exc:
            raise PayloadValidationError(f"{what} of task {self.name!r}: {exc}") from None


@functools.cache
def codec_for(name: str, function: Callable[..., Any]) -> Codec | None:
    """The handler's codec, or None when every annotation is plain JSON (or unresolvable).

    Annotations that cannot be resolved (names imported only under `TYPE_CHECKING`) leave the
    handler on plain JSON, as it was before typed payloads.
    """
    signature = inspect.signature(function)
    try:
        hints = typing.get_type_hints(function, include_extras=True)
    except (NameError, TypeError):
        return None
    annotations = {
        name: _variadic(parameter.kind, hints.get(name, Any))
        for name, parameter in signature.parameters.items()
    }
    returns = hints.get("return", Any)
    if all(_is_plain(annotation) for annotation in [*annotations.values(), returns]):
        return None
    try:
        from pydantic import TypeAdapter
    except ImportError:
        raise ImportError(
            f"task {name!r} takes or returns more than plain JSON: install queuekit[typed]"
        ) from None
    return Codec(
        name=name,
        signature=signature,
        parameters={name: TypeAdapter(annotation) for name, annotation in annotations.items()},
        result=TypeAdapter(returns),
    )


def _variadic(kind: inspect._ParameterKind, annotation: Any) -> Any:
    """The type of what `BoundArguments` holds for a parameter: a tuple or dict for * and **."""
    if kind is inspect.Parameter.VAR_POSITIONAL:
        return tuple[annotation, ...]
    if kind is inspect.Parameter.VAR_KEYWORD:
        return dict[str, annotation]
    return annotation


__all__ = ["Codec", "codec_for"]

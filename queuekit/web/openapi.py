"""The OpenAPI 3.1 document, generated from the API's endpoint table and its pydantic models."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from starlette.requests import Request
from starlette.responses import Response

from ..validation import NAME_PATTERN
from .models import Error

REF = "#/components/schemas/{model}"
ERRORS = {
    400: "Malformed JSON",
    401: "Missing or wrong API key",
    403: "Refused: a cross-origin request, or `authenticate` said no",
    404: "No such job, workflow, batch or worker, or a path that matches no route",
    409: "Conflict with the job's state",
    413: "Body too large",
    415: "The body is not `application/json`",
    422: "Invalid input",
    429: "Too many wrong keys from this client: wait `Retry-After` seconds",
    503: "Backend unavailable",
}
ANY_REQUEST_ERRORS = (401, 403, 429, 503)
BODY_ERRORS = (400, 413, 415, 422)
PARAMETER_ERRORS = (404,)
"""A path parameter holding a newline matches no route (Starlette's routes never match one)."""
PATH_PARAMETERS = {
    "job_id": {"type": "string"},
    "worker_id": {"type": "string"},
    "workflow_id": {"type": "string"},
    "batch_id": {"type": "string"},
    "name": {"type": "string", "pattern": f"^{NAME_PATTERN.pattern}$"},
}


@dataclass(frozen=True)
class Endpoint:
    """One operation: its route, handler, and what the document says about it."""

    method: Literal["GET", "POST", "PUT", "DELETE"]
    path: str
    handler: Callable[[Any, Request], Awaitable[Response]]
    """Called with the API's state object and the request."""
    summary: str
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    """The model of a successful response's body; None for an empty body."""
    status: int = 200
    errors: tuple[int, ...] = ()


def document(endpoints: Sequence[Endpoint]) -> dict[str, Any]:
    inputs = {model for e in endpoints for model in (e.body, e.query) if model is not None}
    outputs = {e.response for e in endpoints if e.response is not None} | {Error}
    refs, definitions = models_json_schema(
        [(model, "validation") for model in inputs]
        + [(model, "serialization") for model in outputs],
        ref_template=REF,
    )
    schemas: dict[str, Any] = definitions.get("$defs", {})

    def json_body(model: type[BaseModel], mode: Literal["validation", "serialization"]) -> Any:
        return {"application/json": {"schema": refs[(model, mode)]}}

    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        body = endpoint.body is not None
        names = re.findall(r"{(\w+)}", endpoint.path)
        codes = sorted(
            {
                *endpoint.errors,
                *(BODY_ERRORS if body else ()),
                *(PARAMETER_ERRORS if names else ()),
                *ANY_REQUEST_ERRORS,
            }
        )
        success: dict[str, Any] = {"description": "Done"}
        if endpoint.response is not None:
            success = {
                "description": _first_line(endpoint.response.__doc__),
                "content": json_body(endpoint.response, "serialization"),
            }
        operation: dict[str, Any] = {
            "summary": endpoint.summary,
            "responses": {
                str(endpoint.status): success,
                **{
                    str(code): {
                        "description": ERRORS[code],
                        "content": json_body(Error, "serialization"),
                    }
                    for code in codes
                },
            },
        }
        parameters = [
            {"name": name, "in": "path", "required": True, "schema": PATH_PARAMETERS[name]}
            for name in names
        ]
        if endpoint.query is not None:
            parameters += _query_parameters(endpoint.query)
        if parameters:
            operation["parameters"] = parameters
        if endpoint.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": json_body(endpoint.body, "validation"),
            }
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "queuekit", "version": "1"},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": schemas,
        },
        "security": [{"bearer": []}],
        "paths": paths,
    }


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    """A model's fields as query parameters (never null: a parameter left out is None)."""
    properties = model.model_json_schema(ref_template=REF)["properties"]
    parameters = []
    for name, schema in properties.items():
        schema = {key: value for key, value in schema.items() if key != "title"}
        choices = schema.pop("anyOf", None)
        if choices is not None:
            schema.update(next(choice for choice in choices if choice != {"type": "null"}))
            schema.pop("default", None)
        description = schema.pop("description", None)
        parameter = {"name": name, "in": "query", "schema": schema}
        if description:
            parameter["description"] = description
        parameters.append(parameter)
    return parameters


def _first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0] if text else "OK"

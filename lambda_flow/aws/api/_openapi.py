"""What the OpenAPI document says: request parameters, bodies and each route's answers.

The parameter annotations are also what Powertools validates the query and headers against.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Header, Query
from pydantic import BaseModel

from ...core import RunStatus
from ._models import ApiErrorResponse, CancelRequest

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse

_JSON = "application/json"


# -- request parameters (validated by Powertools, documented in the OpenAPI) -----------------
IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        pattern=r"^[!-~]{1,255}$",
        description="Starts at most one run per key and workflow; a repeat returns that run.",
    ),
]
TimeoutQuery = Annotated[
    str | None,
    Query(
        max_length=32,
        description="How long to wait for the run to end, e.g. '10s' (capped; default the cap).",
    ),
]
WorkflowFilter = Annotated[
    str | None,
    Query(max_length=200, pattern=r"^[^\x00-\x1f]+$", description="Only runs of this workflow."),
]
StatusFilter = Annotated[RunStatus | None, Query(description="Only runs in this status.")]
LimitQuery = Annotated[int, Query(ge=1, le=1000, description="The most runs on the page.")]
CursorQuery = Annotated[
    str | None, Query(max_length=512, description="``next_cursor`` of the previous page.")
]

_INPUT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": False,
        "description": "The workflow's input as JSON, checked against its input annotation.",
        "content": {_JSON: {"schema": {}}},
    }
}
_CANCEL_BODY: dict[str, Any] = {
    "requestBody": {
        "required": False,
        "content": {_JSON: {"schema": CancelRequest.model_json_schema()}},
    }
}
_ERROR_DESCRIPTIONS = {
    400: "The body is not JSON (or not base64 or UTF-8)",
    401: "No authenticated caller",
    403: "The workflow's authorize hook refused the caller",
    404: "Unknown workflow or run",
    409: "The run has already finished",
    413: "The body is larger than the API accepts",
    422: "The input or a parameter failed validation",
    500: "Unexpected error (logged)",
    503: "The database is unreachable for now; try again after Retry-After seconds",
}


def _responses(
    ok: Sequence[tuple[int, type[BaseModel], str]], *errors: int
) -> dict[int, OpenAPIResponse]:
    responses: dict[int, OpenAPIResponse] = {
        code: {"description": text, "content": {_JSON: {"model": model}}}
        for code, model, text in ok
    }
    for code in (*errors, 422, 500, 503):
        responses[code] = {
            "description": _ERROR_DESCRIPTIONS[code],
            "content": {_JSON: {"model": ApiErrorResponse}},
        }
    return responses


def _package_version() -> str:
    try:
        return version("lambda-flow")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0.0.0"

"""Error answers of the HTTP API turned back into the exceptions ``WorkflowService`` raises."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..core import (
    CallbackConflict,
    CallbackNotFound,
    IdempotencyConflict,
    InputTooLarge,
    InvalidInput,
    InvalidOption,
    InvalidRunState,
    LambdaFlowError,
    RunNotFound,
    StoreUnavailable,
    UnstorableInput,
    WorkflowNotFound,
)

__all__ = ["ApiConnectionError", "HttpApiError", "RequestContext", "error_from_answer"]


class HttpApiError(LambdaFlowError):
    """An error answer with no closer exception (401, 403, 500, API Gateway's own answers).

    Attributes:
        status: the HTTP status.
        type: the API's word for the error (``Unauthorized``, ``Forbidden``, ...).
        message: the API's sentence.
        details: the API's ``details`` list.
    """

    def __init__(
        self, status: int, type: str, message: str, details: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(f"{status} {type}: {message}")
        self.status = status
        self.type = type
        self.message = message
        self.details = details or []


class ApiConnectionError(LambdaFlowError, ConnectionError):
    """The API could not be reached (refused, reset, timed out, name not resolved)."""


@dataclass(frozen=True, slots=True)
class RequestContext:
    """What the client knew when it asked: used to rebuild the exception's attributes."""

    workflow: str | None = None
    run_id: str | None = None
    operation: str | None = None
    idempotency_key: str | None = None
    body_size: int = 0
    callback_id: str | None = None


_STATUS_IN_MESSAGE = re.compile(r": it is (\w+)$")


def _ctx(details: list[dict[str, Any]]) -> dict[str, Any]:
    for detail in details:
        ctx = detail.get("ctx")
        if isinstance(ctx, Mapping):
            return dict(ctx)
    return {}


def _target(context: RequestContext) -> str:
    return f"workflow {context.workflow!r}" if context.workflow else "request"


def _build(
    type: str, message: str, details: list[dict[str, Any]], context: RequestContext
) -> LambdaFlowError | None:
    target = _target(context)
    error: LambdaFlowError
    if type == "UnstorableInput":
        error = UnstorableInput(target, details)
    elif type in ("InputTooLarge", "PayloadTooLarge"):
        ctx = _ctx(details)
        error = InputTooLarge(target, int(ctx.get("size", context.body_size)), int(ctx["limit"]))
    elif type in ("InvalidInput", "InvalidRequest", "InvalidJson", "InvalidBody"):
        error = InvalidInput(target, details)
    elif type == "InvalidOption":
        error = InvalidOption(str(details[0]["loc"][0]), message)
    elif type == "IdempotencyConflict":
        error = IdempotencyConflict(context.workflow or "", context.idempotency_key or "")
    elif type == "WorkflowNotFound":
        error = WorkflowNotFound(context.workflow or "")
    elif type == "RunNotFound":
        error = RunNotFound(context.run_id or "")
    elif type == "InvalidRunState":
        found = _STATUS_IN_MESSAGE.search(message)
        status = found.group(1) if found else "finished"
        error = InvalidRunState(context.run_id or "", status, context.operation or "change")
    elif type == "CallbackNotFound":
        error = CallbackNotFound(context.callback_id or "")
    elif type == "CallbackConflict":
        error = CallbackConflict(context.callback_id or "", message)
    elif type == "StoreUnavailable":
        error = StoreUnavailable(message)
    else:
        return None
    return error


def error_from_answer(status: int, body: Any, context: RequestContext) -> LambdaFlowError:
    """The exception for an error answer: the service's own class where there is one.

    The exception's message is the API's, word for word; its attributes (``run_id``,
    ``workflow``, ``errors``, ...) are filled from the answer and the request.

    Args:
        status: the HTTP status.
        body: the decoded JSON body (anything: API Gateway answers ``{"message"}`` itself).
        context: what the request was about.
    """
    error = body.get("error") if isinstance(body, Mapping) else None
    if not isinstance(error, Mapping):
        text = body.get("message") if isinstance(body, Mapping) else None
        return HttpApiError(status, "HttpError", str(text or body or "no body"))
    type = str(error.get("type", "HttpError"))
    message = str(error.get("message", ""))
    raw = error.get("details")
    details = [dict(d) for d in raw if isinstance(d, Mapping)] if isinstance(raw, list) else []
    try:
        built = _build(type, message, details, context)
    except (KeyError, TypeError, ValueError):  # an answer without the context it should have
        built = None
    if built is None:
        return HttpApiError(status, type, message, details)
    built.args = (message,)
    return built

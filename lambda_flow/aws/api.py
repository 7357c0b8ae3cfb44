"""The workflow HTTP API: a Powertools resolver for API Gateway HTTP APIs (payload v2).

Routes (JSON, snake_case):

- ``POST /workflows/{name}/start``: 202 ``{"run_id"}``. The body is the workflow's input; an
  ``Idempotency-Key`` header makes a repeat return the first run's id (202 again).
- ``POST /workflows/{name}/run``: 200 ``{"run_id", "status", "output", "error"}`` once the run
  has ended (completed, failed or cancelled) within ``?timeout=`` (capped), else 202
  ``{"run_id", "status"}`` (still running, or suspended).
- ``GET /runs/{run_id}``: 200 the run; ``GET /runs/{run_id}/history``: 200 every attempt.
- ``GET /runs?workflow=&status=&limit=&cursor=``: 200 ``{"runs", "next_cursor"}``.
- ``POST /runs/{run_id}/resume``, ``POST /runs/{run_id}/cancel`` (body ``{"reason"}``
  optional): 200 the run.
- ``GET /openapi.json``: the OpenAPI document (served without a caller: it holds no run data).

Errors are ``{"error": {"type", "message", "details"}}``: 400 a body that is not JSON (or not
base64/UTF-8), 401 no authenticated caller, 403 refused by the workflow's hook, 404 unknown
workflow, run or route (a malformed run id is unknown too), 409 the run has already finished,
413 a body over ``max_body_bytes`` (measured before anything is decoded), 422 input or query
failing validation (pydantic's field errors in ``details``), 500 anything unexpected (logged;
the answer names only the request id). No 4xx answer writes anything.

Authentication is API Gateway's job (IAM or JWT). The caller it established is read from
``requestContext.authorizer`` (``jwt``, ``iam`` or ``lambda``) into a :class:`Caller`; an
anonymous caller gets 401 unless ``allow_anonymous``. Authorization is each workflow's
``authorize`` hook, asked with an :class:`AccessRequest`: ``start`` (with the validated input)
before anything is written, ``read``/``resume``/``cancel`` (with the run id) once the run is
known, so an unknown run is a 404 whoever asks.

Listing runs asks the same ``read`` question of every run on the page and leaves out the runs
the caller may not read. A page may therefore hold fewer than ``limit`` runs (even none) while
``next_cursor`` still points past the last run looked at: paging neither skips nor leaks runs,
and no filter is required. Runs of a workflow the application no longer registers have no hook
to ask; they are served only when no registered workflow has a hook (fail closed).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from http import HTTPStatus
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Annotated, Any, Literal

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError, ServiceError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Header, Query
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .._durations import Duration, parse_duration
from .._errors import (
    ConfigurationError,
    InvalidDuration,
    InvalidInput,
    InvalidRunState,
    LambdaFlowError,
    RunNotFound,
    WorkflowNotFound,
)
from .._flow import Flow, WorkflowDef
from .._models import AccessRequest, Caller, ErrorInfo, Run, RunStatus, StepAttempt
from .._service import WorkflowService

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger
    from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse

__all__ = [
    "ApiError",
    "ApiErrorResponse",
    "CancelRequest",
    "HttpError",
    "RunFinished",
    "RunHistoryView",
    "RunInProgress",
    "RunPage",
    "RunStarted",
    "RunView",
    "build_api",
    "caller_from_event",
    "read_json_body",
    "start_and_wait",
]

_JSON = "application/json"
_LAMBDA_MARGIN = timedelta(seconds=2)
"""Time kept back from the Lambda's own deadline when ``/run`` waits, to answer in time."""
_IAM_FIELDS = ("accountId", "callerId", "principalOrgId", "userArn", "userId")
"""IAM identity fields copied into ``Caller.claims`` (the access key id is left out)."""


# -- bodies ----------------------------------------------------------------------------------
class ApiError(BaseModel):
    """What went wrong, in every error answer."""

    type: str
    """A stable word for the kind of error, e.g. ``InvalidInput`` or ``RunNotFound``."""
    message: str
    """A sentence for people."""
    details: list[dict[str, Any]] = []
    """What failed (``loc``, ``msg``, ``type``): pydantic's field errors for a 422, the body's
    problem for a 400; empty otherwise."""


class ApiErrorResponse(BaseModel):
    """The body of every error answer."""

    error: ApiError


class RunView(BaseModel):
    """A run as the API shows it."""

    id: str
    workflow: str
    status: RunStatus
    input: Any = None
    """The validated input, as stored."""
    output: Any = None
    """The workflow's return value, once completed."""
    error: ErrorInfo | None = None
    """Why the run failed, or the cancel reason."""
    created_at: datetime
    updated_at: datetime
    wake_at: datetime | None = None
    """When a sleep or retry delay next wakes the run."""

    @classmethod
    def of(cls, run: Run) -> RunView:
        """The view of ``run`` (its idempotency key stays private)."""
        return cls.model_validate(run.model_dump(exclude={"idempotency_key"}))


class RunStarted(BaseModel):
    """A run was stored (and queued, or run here in inline mode)."""

    run_id: str


class RunInProgress(BaseModel):
    """``/run`` gave up waiting: the run is still running, or suspended."""

    run_id: str
    status: RunStatus


class RunFinished(BaseModel):
    """``/run`` saw the run end."""

    run_id: str
    status: RunStatus
    output: Any = None
    """The workflow's return value (completed runs)."""
    error: ErrorInfo | None = None
    """Why it failed, or the cancel reason."""


class RunHistoryView(BaseModel):
    """Every attempt of every step of a run, oldest first."""

    run_id: str
    history: list[StepAttempt]


class RunPage(BaseModel):
    """One page of runs, newest first."""

    runs: list[RunView]
    next_cursor: str | None = None
    """Pass as ``cursor`` for the next page; null once a page came back short."""


class CancelRequest(BaseModel):
    """The optional body of ``POST /runs/{run_id}/cancel``."""

    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=1000)
    """Why the run is cancelled; shown as the run's error message."""


class HttpError(LambdaFlowError):
    """An error answer decided by the API itself (401, 403, 400, 413, ...)."""

    def __init__(
        self,
        status: HTTPStatus,
        type: str,
        message: str,
        details: Sequence[Mapping[str, Any]] = (),
    ) -> None:
        super().__init__(message)
        self.status = status
        self.type = type
        self.message = message
        self.details = [dict(d) for d in details]


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
}


def _responses(
    ok: Sequence[tuple[int, type[BaseModel], str]], *errors: int
) -> dict[int, OpenAPIResponse]:
    responses: dict[int, OpenAPIResponse] = {
        code: {"description": text, "content": {_JSON: {"model": model}}}
        for code, model, text in ok
    }
    for code in (*errors, 422, 500):
        responses[code] = {
            "description": _ERROR_DESCRIPTIONS[code],
            "content": {_JSON: {"model": ApiErrorResponse}},
        }
    return responses


def _json(status: int, body: BaseModel) -> Response[Any]:
    return Response(status_code=int(status), content_type=_JSON, body=body.model_dump(mode="json"))


def _error(
    status: int, type: str, message: str, details: Sequence[Mapping[str, Any]] = ()
) -> Response[Any]:
    error = ApiError(type=type, message=message, details=[dict(d) for d in details])
    return _json(status, ApiErrorResponse(error=error))


def _field_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """``loc``/``msg``/``type`` of each error, without the offending input echoed back."""
    return [
        {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type"))}
        for e in errors
        if isinstance(e, Mapping)
    ]


# -- the caller and the body -----------------------------------------------------------------
def caller_from_event(event: Mapping[str, Any]) -> Caller:
    """The caller API Gateway authenticated, from a payload v2 ``requestContext.authorizer``.

    ``jwt`` gives kind ``jwt`` (principal: the ``sub`` claim), ``iam`` gives kind ``iam``
    (principal: ``userArn``, else ``callerId``), ``lambda`` gives kind ``lambda`` (principal:
    ``principalId`` or ``sub`` of its context, if any); anything else is anonymous.
    """
    context = event.get("requestContext")
    authorizer = context.get("authorizer") if isinstance(context, Mapping) else None
    if not isinstance(authorizer, Mapping):
        return Caller(kind="anonymous")
    jwt = authorizer.get("jwt")
    if isinstance(jwt, Mapping) and isinstance(jwt.get("claims"), Mapping):
        claims = dict(jwt["claims"])
        return Caller(kind="jwt", principal=_text(claims.get("sub")), claims=claims)
    iam = authorizer.get("iam")
    if isinstance(iam, Mapping):
        principal = _text(iam.get("userArn")) or _text(iam.get("callerId"))
        identity = {key: iam[key] for key in _IAM_FIELDS if iam.get(key)}
        return Caller(kind="iam", principal=principal, claims=identity)
    if "lambda" in authorizer:
        lam = authorizer.get("lambda")
        found = dict(lam) if isinstance(lam, Mapping) else {}
        principal = _text(found.get("principalId")) or _text(found.get("sub"))
        return Caller(kind="lambda", principal=principal, claims=found)
    return Caller(kind="anonymous")


def _text(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def _bad_body(message: str, type: str = "InvalidJson") -> HttpError:
    return HttpError(
        HTTPStatus.BAD_REQUEST, type, message, [{"loc": ["body"], "msg": message, "type": type}]
    )


def _too_large(max_body_bytes: int) -> HttpError:
    return HttpError(
        HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
        "PayloadTooLarge",
        f"the request body is larger than {max_body_bytes} bytes",
    )


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _unstorable(value: Any) -> str | None:
    """Why Postgres' jsonb would refuse a string in ``value`` (NUL, lone surrogate), if so."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return "strings may not contain \\u0000"
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return "strings may not contain unpaired surrogates (\\ud800-\\udfff)"
        elif isinstance(item, dict):
            pending.extend(item)
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return None


def _body_bytes(event: Mapping[str, Any], max_body_bytes: int) -> bytes:
    """The raw body, refused with 413 by its length before anything big is decoded."""
    raw = event.get("body")
    if raw is None:
        return b""
    if not isinstance(raw, str):
        raise _bad_body("the request body is not text", "InvalidBody")
    if event.get("isBase64Encoded"):
        if len(raw) > 4 * -(-max_body_bytes // 3):  # base64 takes 4 characters per 3 bytes
            raise _too_large(max_body_bytes)
        try:
            data = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise _bad_body("the request body is not valid base64", "InvalidBody") from None
    else:
        if len(raw) > max_body_bytes:  # every character takes at least one byte
            raise _too_large(max_body_bytes)
        try:
            data = raw.encode("utf-8")
        except UnicodeEncodeError:
            raise _bad_body("the request body is not valid UTF-8", "InvalidBody") from None
    if len(data) > max_body_bytes:
        raise _too_large(max_body_bytes)
    return data


def read_json_body(event: Mapping[str, Any], max_body_bytes: int) -> Any:
    """The request's JSON body (None when there is none), its size checked before decoding.

    Raises:
        HttpError: 413 when the body (decoded from base64, if it is) is over ``max_body_bytes``;
            400 when it is not base64, UTF-8 or JSON, or holds text Postgres cannot store.
    """
    try:
        text = _body_bytes(event, max_body_bytes).decode("utf-8")
    except UnicodeDecodeError:
        raise _bad_body("the request body is not valid UTF-8", "InvalidBody") from None
    if not text.strip():
        return None
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise _bad_body(
            f"the request body is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    except RecursionError:
        raise _bad_body("the request body is not valid JSON: nested too deeply") from None
    except ValueError as exc:  # NaN/Infinity, or an integer with too many digits
        raise _bad_body(f"the request body is not valid JSON: {exc}") from None
    if "\\u" in text:  # only escapes can smuggle in NUL or a lone surrogate
        problem = _unstorable(value)
        if problem is not None:
            raise _bad_body(f"the request body cannot be stored: {problem}")
    return value


# -- waiting for a run -----------------------------------------------------------------------
def start_and_wait(
    service: WorkflowService,
    name: str,
    input: Any,
    *,
    idempotency_key: str | None,
    wait: timedelta,
    poll: timedelta = timedelta(milliseconds=250),
) -> Run:
    """Start a run of ``name`` and wait up to ``wait`` for it to end; the run as it then is.

    Raises:
        WorkflowNotFound, InvalidInput: as ``WorkflowService.start`` (nothing is written).
    """
    return service.start_and_wait(
        name, input, timeout=wait, idempotency_key=idempotency_key, poll=poll
    )


def _permits(flow: Flow, request: AccessRequest) -> bool:
    definition = flow.workflows.get(request.workflow)
    if definition is None:  # no hook to ask: fail closed when the app uses hooks at all
        return not any(d.authorize is not None for d in flow)
    return definition.allows(request)


def _package_version() -> str:
    try:
        return version("lambda-flow")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0.0.0"


# -- the routes ------------------------------------------------------------------------------
class _WorkflowRoutes:
    """What each route does, over one service; :func:`build_api` wires it into a resolver."""

    def __init__(
        self,
        app: APIGatewayHttpResolver,
        service: WorkflowService,
        *,
        max_body_bytes: int,
        allow_anonymous: bool,
        wait_cap: timedelta,
        poll: timedelta,
        log: logging.Logger | Logger,
    ) -> None:
        self.app = app
        self.service = service
        self.flow = service.flow
        self.max_body_bytes = max_body_bytes
        self.allow_anonymous = allow_anonymous
        self.wait_cap = wait_cap
        self.poll = poll
        self.log = log
        self._openapi: str | None = None

    # -- checks shared by the routes ---------------------------------------------------------
    @property
    def event(self) -> Mapping[str, Any]:
        return self.app.current_event.raw_event

    def request_id(self) -> str | None:
        context = self.event.get("requestContext")
        return _text(context.get("requestId")) if isinstance(context, Mapping) else None

    def authenticated(self) -> Caller:
        caller = caller_from_event(self.event)
        if caller.kind == "anonymous" and not self.allow_anonymous:
            raise HttpError(
                HTTPStatus.UNAUTHORIZED,
                "Unauthorized",
                "this API needs an authenticated caller (IAM or JWT at API Gateway)",
            )
        return caller

    def authorize(
        self,
        caller: Caller,
        action: Literal["start", "read", "resume", "cancel"],
        workflow: str,
        *,
        run_id: str | None = None,
        input: Any = None,
    ) -> None:
        request = AccessRequest(
            caller=caller, action=action, workflow=workflow, run_id=run_id, input=input
        )
        if _permits(self.flow, request):
            return
        self.log.warning(
            "access refused",
            extra={
                "action": action,
                "workflow": workflow,
                "run_id": run_id,
                "caller_kind": caller.kind,
                "principal": caller.principal,
            },
        )
        raise HttpError(
            HTTPStatus.FORBIDDEN,
            "Forbidden",
            f"the caller may not {action} runs of workflow {workflow!r}",
        )

    def visible_run(self, run_id: str, action: Literal["read", "resume", "cancel"]) -> Run:
        """The run, once the caller is known and allowed ``action`` on it."""
        caller = self.authenticated()
        run = self.service.get_run(run_id)
        if run is None:
            raise RunNotFound(run_id)
        self.authorize(caller, action, run.workflow, run_id=run.id)
        return run

    def start_request(self, name: str) -> tuple[Caller, WorkflowDef, Any]:
        """Who starts which workflow with what input: all checked, nothing written."""
        caller = self.authenticated()
        definition = self.flow.get_workflow(name)
        data = read_json_body(self.event, self.max_body_bytes)
        typed = definition.input.validate(data, f"workflow {definition.name!r}")
        self.authorize(caller, "start", definition.name, input=typed)
        return caller, definition, data

    def wait_budget(self, timeout: str | None) -> timedelta:
        """How long ``/run`` may wait: as asked, within the cap and the Lambda's own deadline."""
        try:
            wait = self.wait_cap if timeout is None else min(parse_duration(timeout), self.wait_cap)
        except InvalidDuration as exc:
            raise HttpError(
                HTTPStatus.UNPROCESSABLE_ENTITY,
                "InvalidRequest",
                str(exc),
                [{"loc": ["query", "timeout"], "msg": str(exc), "type": "duration"}],
            ) from None
        remaining = getattr(self.app.lambda_context, "get_remaining_time_in_millis", None)
        if callable(remaining):
            left = timedelta(milliseconds=remaining()) - _LAMBDA_MARGIN
            wait = max(timedelta(0), min(wait, left))
        return wait

    def log_started(self, caller: Caller, workflow: str, run_id: str, key: str | None) -> None:
        self.log.info(
            "run start accepted",
            extra={
                "run_id": run_id,
                "workflow": workflow,
                "caller_kind": caller.kind,
                "principal": caller.principal,
                "idempotency_key_given": key is not None,
            },
        )

    # -- routes ------------------------------------------------------------------------------
    def start_workflow(
        self, name: str, idempotency_key: IdempotencyKeyHeader = None
    ) -> Response[Any]:
        caller, definition, data = self.start_request(name)
        run_id = self.service.start(definition.name, data, idempotency_key=idempotency_key)
        self.log_started(caller, definition.name, run_id, idempotency_key)
        return _json(HTTPStatus.ACCEPTED, RunStarted(run_id=run_id))

    def run_workflow(
        self,
        name: str,
        timeout: TimeoutQuery = None,
        idempotency_key: IdempotencyKeyHeader = None,
    ) -> Response[Any]:
        caller, definition, data = self.start_request(name)
        wait = self.wait_budget(timeout)
        run = start_and_wait(
            self.service,
            definition.name,
            data,
            idempotency_key=idempotency_key,
            wait=wait,
            poll=self.poll,
        )
        self.log_started(caller, definition.name, run.id, idempotency_key)
        if run.status.is_terminal:
            finished = RunFinished(
                run_id=run.id, status=run.status, output=run.output, error=run.error
            )
            return _json(HTTPStatus.OK, finished)
        return _json(HTTPStatus.ACCEPTED, RunInProgress(run_id=run.id, status=run.status))

    def get_run(self, run_id: str) -> Response[Any]:
        return _json(HTTPStatus.OK, RunView.of(self.visible_run(run_id, "read")))

    def get_run_history(self, run_id: str) -> Response[Any]:
        run = self.visible_run(run_id, "read")
        history = self.service.get_run_history(run.id)
        return _json(HTTPStatus.OK, RunHistoryView(run_id=run.id, history=history))

    def list_runs(
        self,
        workflow: WorkflowFilter = None,
        status: StatusFilter = None,
        limit: LimitQuery = 50,
        cursor: CursorQuery = None,
    ) -> Response[Any]:
        caller = self.authenticated()
        page = self.service.list_runs(workflow=workflow, status=status, limit=limit, cursor=cursor)
        visible = [
            RunView.of(run)
            for run in page
            if _permits(
                self.flow,
                AccessRequest(caller=caller, action="read", workflow=run.workflow, run_id=run.id),
            )
        ]
        next_cursor = self.service.cursor_after(page[-1]) if len(page) == limit else None
        return _json(HTTPStatus.OK, RunPage(runs=visible, next_cursor=next_cursor))

    def resume_run(self, run_id: str) -> Response[Any]:
        run = self.visible_run(run_id, "resume")
        resumed = self.service.resume(run.id)
        self.log.info("run resumed", extra={"run_id": run.id, "status": resumed.status.value})
        return _json(HTTPStatus.OK, RunView.of(resumed))

    def cancel_run(self, run_id: str) -> Response[Any]:
        self.authenticated()
        body = read_json_body(self.event, self.max_body_bytes)
        try:
            request = CancelRequest.model_validate({} if body is None else body)
        except ValidationError as exc:
            errors = [
                {**e, "loc": ["body", *e["loc"]]}
                for e in _field_errors(exc.errors(include_url=False))
            ]
            raise HttpError(
                HTTPStatus.UNPROCESSABLE_ENTITY,
                "InvalidInput",
                "the body must be a JSON object with an optional string 'reason'",
                errors,
            ) from None
        run = self.visible_run(run_id, "cancel")
        cancelled = self.service.cancel(run.id, request.reason)
        self.log.info("run cancelled", extra={"run_id": run.id, "workflow": run.workflow})
        return _json(HTTPStatus.OK, RunView.of(cancelled))

    def openapi(self) -> Response[Any]:
        if self._openapi is None:
            self._openapi = self.app.get_openapi_json_schema(
                title="lambda-flow workflows API",
                version=_package_version(),
                description="Start, run, read, resume and cancel durable workflow runs.",
            )
        return Response(status_code=200, content_type=_JSON, body=self._openapi)

    # -- error answers -----------------------------------------------------------------------
    def http_error(self, exc: HttpError) -> Response[Any]:
        return _error(exc.status, exc.type, exc.message, exc.details)

    def invalid_input(self, exc: InvalidInput) -> Response[Any]:
        return _error(HTTPStatus.UNPROCESSABLE_ENTITY, "InvalidInput", str(exc), exc.errors)

    def invalid_request(self, exc: RequestValidationError) -> Response[Any]:
        errors = _field_errors(exc.errors())
        where = ", ".join(".".join(str(p) for p in e["loc"]) for e in errors) or "request"
        message = f"invalid request parameters: {where}"
        return _error(HTTPStatus.UNPROCESSABLE_ENTITY, "InvalidRequest", message, errors)

    def unknown_workflow(self, exc: WorkflowNotFound) -> Response[Any]:
        return _error(HTTPStatus.NOT_FOUND, "WorkflowNotFound", str(exc))

    def unknown_run(self, exc: RunNotFound) -> Response[Any]:
        return _error(HTTPStatus.NOT_FOUND, "RunNotFound", str(exc))

    def finished_run(self, exc: InvalidRunState) -> Response[Any]:
        return _error(HTTPStatus.CONFLICT, "InvalidRunState", str(exc))

    def unknown_route(self, exc: NotFoundError) -> Response[Any]:
        current = self.app.current_event
        message = f"no route {current.http_method} {current.path}"
        return _error(HTTPStatus.NOT_FOUND, "NotFound", message)

    def service_error(self, exc: ServiceError) -> Response[Any]:
        status = HTTPStatus(exc.status_code)
        return _error(status, status.phrase.replace(" ", ""), str(exc.msg))

    def unexpected(self, exc: Exception) -> Response[Any]:
        current = self.app.current_event
        self.log.exception(
            "unexpected error in the API",
            extra={
                "method": current.http_method,
                "path": current.path,
                "request_id": self.request_id(),
                "error_type": type(exc).__name__,
            },
        )
        return _error(
            HTTPStatus.INTERNAL_SERVER_ERROR,
            "InternalError",
            f"unexpected error; the API's logs have the details (request id {self.request_id()})",
        )


def build_api(
    service: WorkflowService,
    flow: Flow,
    *,
    max_body_bytes: int = 256 * 1024,
    allow_anonymous: bool = False,
    max_wait: Duration = "25s",
    poll_interval: Duration = "250ms",
    logger: logging.Logger | Logger | None = None,
) -> APIGatewayHttpResolver:
    """The HTTP API over ``service`` as a Powertools resolver: ``app.resolve(event, context)``.

    Args:
        service: the service that starts and reads runs (inline or remote mode).
        flow: the service's application; its workflows' ``authorize`` hooks decide access.
        max_body_bytes: larger request bodies get 413 before they are decoded.
        allow_anonymous: serve callers API Gateway did not authenticate (local use only).
        max_wait: the longest ``/run`` waits, whatever ``?timeout=`` asks (API Gateway HTTP
            APIs give up on an integration after 30 seconds).
        poll_interval: how often ``/run`` looks at the run in remote mode.
        logger: where requests and errors are logged (the handler's Powertools Logger).

    Raises:
        ConfigurationError: ``flow`` is not the service's flow, or a limit is not positive.
    """
    if flow is not service.flow:
        raise ConfigurationError("build_api needs the Flow the service was built with")
    if max_body_bytes <= 0:
        raise ConfigurationError(f"max_body_bytes must be positive, got {max_body_bytes}")
    poll = parse_duration(poll_interval)
    if poll <= timedelta(0):
        raise ConfigurationError("poll_interval must be positive")
    app = APIGatewayHttpResolver(enable_validation=True)
    routes = _WorkflowRoutes(
        app,
        service,
        max_body_bytes=max_body_bytes,
        allow_anonymous=allow_anonymous,
        wait_cap=parse_duration(max_wait),
        poll=poll,
        log=logger or logging.getLogger(__name__),
    )
    app.post(
        "/workflows/<name>/start",
        summary="Start a run of a workflow",
        description="Stores a run and queues it (remote mode) or runs it here (inline mode).",
        tags=["workflows"],
        responses=_responses([(202, RunStarted, "The run was started")], 400, 401, 403, 404, 413),
        openapi_extensions=_INPUT_BODY,
    )(routes.start_workflow)
    app.post(
        "/workflows/<name>/run",
        summary="Run a workflow and wait for its end",
        description="200 with the outcome once the run has ended within the timeout, else 202.",
        tags=["workflows"],
        responses=_responses(
            [
                (200, RunFinished, "The run ended: completed, failed or cancelled"),
                (202, RunInProgress, "The run is still running, or suspended"),
            ],
            *(400, 401, 403, 404, 413),
        ),
        openapi_extensions=_INPUT_BODY,
    )(routes.run_workflow)
    app.get(
        "/runs/<run_id>",
        summary="Get a run",
        tags=["runs"],
        responses=_responses([(200, RunView, "The run")], 401, 403, 404),
    )(routes.get_run)
    app.get(
        "/runs/<run_id>/history",
        summary="Get a run's history",
        description="Every attempt of every step, oldest first.",
        tags=["runs"],
        responses=_responses([(200, RunHistoryView, "The run's attempts")], 401, 403, 404),
    )(routes.get_run_history)
    app.get(
        "/runs",
        summary="List runs",
        description=(
            "Newest first. Runs the caller may not read are left out, so a page can be short "
            "while next_cursor goes on."
        ),
        tags=["runs"],
        responses=_responses([(200, RunPage, "A page of runs")], 401),
    )(routes.list_runs)
    app.post(
        "/runs/<run_id>/resume",
        summary="Resume a suspended run",
        tags=["runs"],
        responses=_responses([(200, RunView, "The run after resuming")], 401, 403, 404, 409),
    )(routes.resume_run)
    app.post(
        "/runs/<run_id>/cancel",
        summary="Cancel a run",
        tags=["runs"],
        responses=_responses([(200, RunView, "The cancelled run")], 400, 401, 403, 404, 409, 413),
        openapi_extensions=_CANCEL_BODY,
    )(routes.cancel_run)
    app.get("/openapi.json", summary="This OpenAPI document", tags=["meta"])(routes.openapi)

    handlers: list[tuple[type[Exception], Callable[[Any], Response[Any]]]] = [
        (HttpError, routes.http_error),
        (InvalidInput, routes.invalid_input),
        (RequestValidationError, routes.invalid_request),
        (WorkflowNotFound, routes.unknown_workflow),
        (RunNotFound, routes.unknown_run),
        (InvalidRunState, routes.finished_run),
        (NotFoundError, routes.unknown_route),
        (ServiceError, routes.service_error),
        (Exception, routes.unexpected),
    ]
    for error_type, handler in handlers:
        app.exception_handler(error_type)(handler)
    return app

"""What each route does, and how each error becomes an answer, over one service."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from datetime import timedelta
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError, ServiceError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from pydantic.errors import PydanticUserError

from ...core import (
    AccessRequest,
    CallbackConflict,
    CallbackNotFound,
    Caller,
    Codec,
    IdempotencyConflict,
    InputTooLarge,
    InvalidDuration,
    InvalidInput,
    InvalidOption,
    InvalidRunState,
    Run,
    RunNotFound,
    RunPage,
    RunSummary,
    StoreUnavailable,
    UnstorableInput,
    WorkflowNotFound,
    parse_duration,
)
from ...engine import WorkflowDef
from ...service import WorkflowService
from ._models import (
    ApiError,
    ApiErrorResponse,
    CallbackAnswer,
    CancelRequest,
    FailCallbackRequest,
    ForkRequest,
    ResumeRequest,
    RunFinished,
    RunHistoryView,
    RunInProgress,
    RunStarted,
    RunView,
    WorkflowList,
)
from ._openapi import (
    _JSON,
    CreatedAfterFilter,
    CreatedBeforeFilter,
    CursorQuery,
    IdempotencyKeyHeader,
    LimitQuery,
    ParentFilter,
    RunTimeoutQuery,
    SearchFilter,
    StatusFilter,
    TimeoutQuery,
    WorkflowFilter,
    _package_version,
    workflow_info,
)
from ._request import HttpError, _field_errors, _text, caller_from_event, read_json_body

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger

__all__ = ["start_and_wait"]

_LAMBDA_MARGIN = timedelta(seconds=2)
"""Time kept back from the Lambda's own deadline when ``/run`` waits, to answer in time."""

RETRY_AFTER_SECONDS = 5
"""The ``Retry-After`` of a 503 (the database unreachable): a restart takes seconds."""


def _json(status: int, body: BaseModel) -> Response[Any]:
    return Response(status_code=int(status), content_type=_JSON, body=body.model_dump(mode="json"))


def _error(
    status: int,
    type: str,
    message: str,
    details: Sequence[Mapping[str, Any]] = (),
    *,
    headers: Mapping[str, str] | None = None,
) -> Response[Any]:
    error = ApiError(type=type, message=message, details=[dict(d) for d in details])
    response = _json(status, ApiErrorResponse(error=error))
    response.headers.update(headers or {})
    return response


def _route_pattern(rule: str) -> re.Pattern[str]:
    """A route rule such as ``/runs/<run_id>`` as a regex matching the paths it serves."""
    return re.compile("^" + re.sub(r"<\w+>", "[^/]+", rule) + "$")


# -- waiting for a run -----------------------------------------------------------------------
def start_and_wait(
    service: WorkflowService,
    name: str,
    input: Any,
    *,
    idempotency_key: str | None,
    wait: timedelta,
    poll: timedelta = timedelta(milliseconds=250),
    run_timeout: str | None = None,
) -> Run:
    """Start a run of ``name`` and wait up to ``wait`` for it to end; the run as it then is.

    Raises:
        WorkflowNotFound, InvalidInput: as ``WorkflowService.start`` (nothing is written).
    """
    return service.start_and_wait(
        name,
        input,
        timeout=wait,
        idempotency_key=idempotency_key,
        poll=poll,
        run_timeout=run_timeout,
    )


def _declares_run_timeout(codec: Codec) -> bool:
    """Whether the workflow's input itself has a top-level ``run_timeout`` field."""
    if codec.is_any:
        return False
    try:
        schema = codec.json_schema("validation")
    except PydanticUserError:  # no schema (a callable in it): nothing declared to be seen
        return False
    properties = schema.get("properties")
    return isinstance(properties, Mapping) and "run_timeout" in properties


def _run_timeout_problem(message: str, loc: list[str]) -> HttpError:
    return HttpError(
        HTTPStatus.UNPROCESSABLE_ENTITY,
        "InvalidRequest",
        message,
        [{"loc": loc, "msg": message, "type": "run_timeout"}],
    )


def _body_run_timeout(
    definition: WorkflowDef, data: Any, run_timeout: str | None
) -> tuple[Any, str | None]:
    """The start body's top-level ``run_timeout`` taken out as the option, when it is one.

    It is the option only when the workflow's input declares no ``run_timeout`` field of its
    own (an input model without one, or an untyped input); then it is removed from the input
    before validation. Otherwise it is input, and only the query parameter sets the option.

    Raises:
        HttpError: 422 when both the body and the query give it, or the body's is not text.
    """
    if not isinstance(data, dict) or "run_timeout" not in data:
        return data, run_timeout
    if _declares_run_timeout(definition.input):
        return data, run_timeout
    given = data["run_timeout"]
    if run_timeout is not None:
        raise _run_timeout_problem(
            "run_timeout is given twice, as the query parameter and in the body: give one",
            ["body", "run_timeout"],
        )
    if not isinstance(given, str):
        raise _run_timeout_problem(
            "run_timeout in the body must be a duration text such as '2h'",
            ["body", "run_timeout"],
        )
    return {k: v for k, v in data.items() if k != "run_timeout"}, given


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
        max_page_bytes: int,
    ) -> None:
        self.app = app
        self.service = service
        self.flow = service.flow
        self.max_body_bytes = max_body_bytes
        self.allow_anonymous = allow_anonymous
        self.wait_cap = wait_cap
        self.poll = poll
        self.log = log
        self.max_page_bytes = max_page_bytes
        self._openapi: str | None = None
        self._workflows: WorkflowList | None = None
        self._rules: list[tuple[str, re.Pattern[str]]] = []

    def route(self, method: str, rule: str, **options: Any) -> Any:
        """``app.get``/``app.post`` (by ``method``), remembering the rule for 405 answers."""
        self.remember(method, rule)
        return self.app.route(rule, method.upper(), **options)

    def remember(self, method: str, rule: str) -> None:
        """Note that ``rule`` answers ``method``, for the ``Allow`` of a 405."""
        self._rules.append((method.upper(), _route_pattern(rule)))

    def methods_for(self, path: str) -> list[str]:
        """The methods some route serves ``path`` with (none: no route has this path)."""
        return sorted({method for method, pattern in self._rules if pattern.match(path)})

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
        action: Literal["start", "read", "resume", "cancel", "callback"],
        workflow: str,
        *,
        run_id: str | None = None,
        input: Any = None,
    ) -> None:
        request = AccessRequest(
            caller=caller, action=action, workflow=workflow, run_id=run_id, input=input
        )
        if self.flow.admits(request, self.log):
            return
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

    def start_request(
        self, name: str, run_timeout: str | None
    ) -> tuple[Caller, WorkflowDef, Any, str | None]:
        """Who starts which workflow with what input and run timeout: checked, nothing written.

        ``run_timeout`` is the query parameter's; see :func:`_body_run_timeout` for the body's.
        """
        caller = self.authenticated()
        definition = self.flow.get_workflow(name)
        data = read_json_body(self.event, self.max_body_bytes)
        data, run_timeout = _body_run_timeout(definition, data, run_timeout)
        typed = definition.input.validate(data, f"workflow {definition.name!r}")
        self.authorize(caller, "start", definition.name, input=typed)
        return caller, definition, data, run_timeout

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
        self,
        name: str,
        idempotency_key: IdempotencyKeyHeader = None,
        run_timeout: RunTimeoutQuery = None,
    ) -> Response[Any]:
        caller, definition, data, run_timeout = self.start_request(name, run_timeout)
        run_id = self.service.start(
            definition.name, data, idempotency_key=idempotency_key, run_timeout=run_timeout
        )
        self.log_started(caller, definition.name, run_id, idempotency_key)
        return _json(HTTPStatus.ACCEPTED, RunStarted(run_id=run_id))

    def run_workflow(
        self,
        name: str,
        timeout: TimeoutQuery = None,
        idempotency_key: IdempotencyKeyHeader = None,
        run_timeout: RunTimeoutQuery = None,
    ) -> Response[Any]:
        caller, definition, data, run_timeout = self.start_request(name, run_timeout)
        wait = self.wait_budget(timeout)
        run = start_and_wait(
            self.service,
            definition.name,
            data,
            idempotency_key=idempotency_key,
            wait=wait,
            poll=self.poll,
            run_timeout=run_timeout,
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

    def list_runs(  # Powertools passes the query's values by name
        self,
        *,
        workflow: WorkflowFilter = None,
        status: StatusFilter = None,
        limit: LimitQuery = 50,
        cursor: CursorQuery = None,
        parent_id: ParentFilter = None,
        created_after: CreatedAfterFilter = None,
        created_before: CreatedBeforeFilter = None,
        search: SearchFilter = None,
    ) -> Response[Any]:
        caller = self.authenticated()
        page = self.service.list_runs(
            workflow=workflow, status=status, limit=limit, cursor=cursor, summary=True,
            parent_id=parent_id, created_after=created_after, created_before=created_before,
            search=search,
        )  # fmt: skip
        visible: list[RunSummary] = []
        looked = size = 0
        for run in page:
            if size >= self.max_page_bytes:  # the rest waits for the next page
                break
            looked += 1
            request = AccessRequest(
                caller=caller, action="read", workflow=run.workflow, run_id=run.id
            )
            if self.flow.allows(request):
                summary = RunSummary.of(run)
                size += len(json.dumps(summary.model_dump(mode="json")))
                visible.append(summary)
        more = looked < len(page) or len(page) == limit
        next_cursor = self.service.cursor_after(page[looked - 1]) if more and looked else None
        return _json(HTTPStatus.OK, RunPage(runs=visible, next_cursor=next_cursor))

    def list_workflows(self) -> Response[Any]:
        self.authenticated()
        if self._workflows is None:
            infos = [workflow_info(d) for d in sorted(self.flow, key=lambda d: d.name)]
            self._workflows = WorkflowList(workflows=infos)
        return _json(HTTPStatus.OK, self._workflows)

    def resume_run(self, run_id: str) -> Response[Any]:
        self.authenticated()
        request = _body_model(
            ResumeRequest,
            read_json_body(self.event, self.max_body_bytes),
            "the body must be a JSON object with an optional 'payload'",
        )
        run = self.visible_run(run_id, "resume")
        resumed = self.service.resume(run.id, request.payload)
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
                "the body must be a JSON object with an optional string 'reason' and"
                " 'cleanup_timeout'",
                errors,
            ) from None
        run = self.visible_run(run_id, "cancel")
        cancelled = self.service.cancel(
            run.id, request.reason, cleanup_timeout=request.cleanup_timeout
        )
        self.log.info("run cancelled", extra={"run_id": run.id, "workflow": run.workflow})
        return _json(HTTPStatus.OK, RunView.of(cancelled))

    def fork_run(self, run_id: str) -> Response[Any]:
        caller = self.authenticated()
        request = _body_model(
            ForkRequest,
            read_json_body(self.event, self.max_body_bytes),
            "the body must be a JSON object with a 'from_step' and an optional 'input'",
        )
        run = self.visible_run(run_id, "read")
        if request.input is not None:
            definition = self.flow.get_workflow(run.workflow)
            typed = definition.input.validate(request.input, f"workflow {definition.name!r}")
        else:
            typed = run.input
        self.authorize(caller, "start", run.workflow, input=typed)
        new_id = self.service.fork(run.id, from_step=request.from_step, input=request.input)
        self.log.info(
            "run forked",
            extra={"run_id": new_id, "forked_from": run.id, "step_key": request.from_step},
        )
        return _json(HTTPStatus.ACCEPTED, RunStarted(run_id=new_id))

    # -- callbacks ---------------------------------------------------------------------------
    def callback_allowed(self, callback_id: str) -> None:
        """The caller is known, and allowed ``callback`` on the callback's run by its hook.

        The callback id is itself a bearer secret; the API's own auth (IAM or JWT) still
        applies, and an ``authorize`` hook is asked (one more read) only when the app has one.
        """
        caller = self.authenticated()
        if not any(d.authorize is not None for d in self.flow):
            return
        run = self.service.get_run(self.service.find_callback(callback_id).run_id)
        if run is not None:
            self.authorize(caller, "callback", run.workflow, run_id=run.id)

    def succeed_callback(self, callback_id: str) -> Response[Any]:
        payload = read_json_body(self.event, self.max_body_bytes)
        self.callback_allowed(callback_id)
        self.service.complete_callback(callback_id, payload)
        self.log.info("callback completed", extra={"step": "succeed"})
        return _json(HTTPStatus.OK, CallbackAnswer(callback_id=callback_id, status="succeeded"))

    def fail_callback(self, callback_id: str) -> Response[Any]:
        request = _body_model(
            FailCallbackRequest,
            read_json_body(self.event, self.max_body_bytes),
            "the body must be a JSON object with a string 'error' and an optional string 'type'",
        )
        self.callback_allowed(callback_id)
        self.service.fail_callback(callback_id, request.error, error_type=request.type)
        self.log.info("callback failed", extra={"error_type": request.type})
        return _json(HTTPStatus.OK, CallbackAnswer(callback_id=callback_id, status="failed"))

    def heartbeat_callback(self, callback_id: str) -> Response[Any]:
        self.callback_allowed(callback_id)
        self.service.heartbeat_callback(callback_id)
        return _json(HTTPStatus.OK, CallbackAnswer(callback_id=callback_id, status="heartbeat"))

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

    def invalid_option(self, exc: InvalidOption) -> Response[Any]:
        detail = {"loc": [exc.parameter], "msg": str(exc), "type": "invalid_option"}
        return _error(HTTPStatus.UNPROCESSABLE_ENTITY, "InvalidOption", str(exc), [detail])

    def invalid_input(self, exc: InvalidInput) -> Response[Any]:
        return _error(HTTPStatus.UNPROCESSABLE_ENTITY, "InvalidInput", str(exc), exc.errors)

    def unstorable_input(self, exc: UnstorableInput) -> Response[Any]:
        # 400, not 422: the text itself cannot be kept, whatever the workflow expects.
        return _error(HTTPStatus.BAD_REQUEST, "UnstorableInput", str(exc), exc.errors)

    def input_too_large(self, exc: InputTooLarge) -> Response[Any]:
        return _error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "InputTooLarge", str(exc), exc.errors)

    def idempotency_conflict(self, exc: IdempotencyConflict) -> Response[Any]:
        detail = {
            "loc": ["header", "idempotency-key"],
            "msg": "already used with a different input",
            "type": "idempotency_conflict",
        }
        return _error(HTTPStatus.UNPROCESSABLE_ENTITY, "IdempotencyConflict", str(exc), [detail])

    def invalid_request(self, exc: RequestValidationError) -> Response[Any]:
        errors = _field_errors(exc.errors())
        where = ", ".join(".".join(str(p) for p in e["loc"]) for e in errors) or "request"
        message = f"invalid request parameters: {where}"
        return _error(HTTPStatus.UNPROCESSABLE_ENTITY, "InvalidRequest", message, errors)

    def unknown_workflow(self, exc: WorkflowNotFound) -> Response[Any]:
        return _error(HTTPStatus.NOT_FOUND, "WorkflowNotFound", str(exc))

    def unknown_run(self, exc: RunNotFound) -> Response[Any]:
        return _error(HTTPStatus.NOT_FOUND, "RunNotFound", str(exc))

    def unknown_callback(self, exc: CallbackNotFound) -> Response[Any]:
        return _error(HTTPStatus.NOT_FOUND, "CallbackNotFound", str(exc))

    def callback_conflict(self, exc: CallbackConflict) -> Response[Any]:
        return _error(HTTPStatus.CONFLICT, "CallbackConflict", str(exc))

    def finished_run(self, exc: InvalidRunState) -> Response[Any]:
        return _error(HTTPStatus.CONFLICT, "InvalidRunState", str(exc))

    def unknown_route(self, exc: NotFoundError) -> Response[Any]:
        current = self.app.current_event
        allowed = self.methods_for(current.path)
        if allowed:
            message = (
                f"{current.path} does not take {current.http_method}: use {', '.join(allowed)}"
            )
            return _error(
                HTTPStatus.METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                message,
                headers={"Allow": ", ".join(allowed)},
            )
        message = f"no route {current.http_method} {current.path}"
        return _error(HTTPStatus.NOT_FOUND, "NotFound", message)

    def service_error(self, exc: ServiceError) -> Response[Any]:
        status = HTTPStatus(exc.status_code)
        return _error(status, status.phrase.replace(" ", ""), str(exc.msg))

    def store_unavailable(self, exc: StoreUnavailable) -> Response[Any]:
        current = self.app.current_event
        self.log.warning(
            "database unavailable",
            extra={
                "method": current.http_method,
                "path": current.path,
                "request_id": self.request_id(),
                "error": str(exc),
            },
        )
        return _error(
            HTTPStatus.SERVICE_UNAVAILABLE,
            "StoreUnavailable",
            f"the database is unavailable for now; retry in {RETRY_AFTER_SECONDS} seconds",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )

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


M = TypeVar("M", bound=BaseModel)


def _body_model(model: type[M], body: Any, message: str) -> M:
    """An optional JSON body as ``model`` (empty: its defaults); 422 naming the fields."""
    try:
        return model.model_validate({} if body is None else body)
    except ValidationError as exc:
        errors = [
            {**e, "loc": ["body", *e["loc"]]} for e in _field_errors(exc.errors(include_url=False))
        ]
        raise HttpError(HTTPStatus.UNPROCESSABLE_ENTITY, "InvalidInput", message, errors) from None

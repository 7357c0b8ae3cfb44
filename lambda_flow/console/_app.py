"""The console's pages and actions over one :class:`WorkflowService`.

Reading pages are ``GET``; every action is a ``POST`` that first answers a confirmation page
(nothing changes) and acts only when the confirmation is sent back (``confirm=yes``), through
the service's own calls after the workflow's ``authorize`` hook allowed it, as the HTTP API
does. Each ``POST`` passes the same-origin and double-submit-cookie CSRF check first.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from http import HTTPStatus
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlencode

from ..core import (
    AccessRequest,
    CallbackConflict,
    CallbackNotFound,
    Caller,
    IdempotencyConflict,
    InputTooLarge,
    InvalidInput,
    InvalidOption,
    InvalidRunState,
    Run,
    RunNotFound,
    StoreUnavailable,
    UnstorableInput,
    WorkflowNotFound,
)
from ..engine import Flow
from ..service import WorkflowService
from ._cost import CostModel, count_run, run_cost
from ._http import (
    CSRF_FIELD,
    SECURITY_HEADERS,
    ConsoleError,
    ConsoleRequest,
    ConsoleResponse,
    check_same_origin,
    csrf_token,
)
from ._pages import Pages

__all__ = ["Console"]

logger = logging.getLogger("lambda_flow.console")

PREFIX = "/console"
STATIC = Path(__file__).parent / "static"
ASSETS = {
    "console.css": "text/css; charset=utf-8",
    "console.js": "text/javascript; charset=utf-8",
}
Action = Literal["start", "read", "resume", "cancel", "callback"]

_DONE = {
    "resumed": "The run was resumed.",
    "cancelled": "The run was asked to cancel.",
    "forked": "This run was forked from another run.",
    "started": "The run was started.",
    "callback-succeeded": "The callback was completed.",
    "callback-failed": "The callback was failed.",
}
"""Notices a redirect may ask for (by key: nothing from the URL is echoed as text)."""


def permits(flow: Flow, request: AccessRequest) -> bool:
    """The workflow's ``authorize`` hook, asked as the HTTP API and the agent tools ask it.

    One rule for all three (:meth:`Flow.allows`): a run of a workflow the app no longer
    registers has no hook to ask, so it is allowed only when no registered workflow has a hook
    (fail closed).
    """
    return flow.allows(request)


class Console:
    """The web console over ``service``.

    Args:
        service: the service whose runs it shows and acts on (remote or inline mode).
        allow_anonymous: serve callers nobody authenticated (``lambda-flow dev --anonymous``,
            ``lambda-flow console``); else they get 401.
        max_body_bytes: larger forms are refused with 413.
        cost_model: the prices each run page's cost uses (the benchmark's by default).
        read_only: show no action forms and refuse every action (403).
    """

    def __init__(
        self,
        service: WorkflowService,
        *,
        allow_anonymous: bool = False,
        max_body_bytes: int = 256 * 1024,
        cost_model: CostModel | None = None,
        read_only: bool = False,
    ) -> None:
        self.service = service
        self.flow = service.flow
        self.allow_anonymous = allow_anonymous
        self.max_body_bytes = max_body_bytes
        self.cost_model = cost_model or CostModel()
        self.read_only = read_only
        self.pages = Pages(self)

    # -- entry point -----------------------------------------------------------------------
    def handle(self, request: ConsoleRequest) -> ConsoleResponse:
        """Answer one request.

        Errors become HTML pages with their status; a client's mistake never gets a 5xx.
        """
        token, cookie = csrf_token(request)
        try:
            response = self._route(request, token)
        except ConsoleError as exc:
            response = self.pages.error(exc.status, exc.title, exc.message, token)
        except Exception as exc:  # every error becomes a page
            status, title = _status_of(exc)
            if status is HTTPStatus.INTERNAL_SERVER_ERROR:
                logger.exception("unexpected error in the console", extra={"path": request.path})
                message = "unexpected error; the logs have the details"
            else:
                message = str(exc)
            response = self.pages.error(status, title, message, token)
            if isinstance(exc, StoreUnavailable):
                response.headers["Retry-After"] = "5"
        if cookie is not None and response.content_type.startswith("text/html"):
            response.cookies.append(cookie)
        response.headers = {**SECURITY_HEADERS, **response.headers}
        return response

    def _route(self, request: ConsoleRequest, token: str) -> ConsoleResponse:
        parts = [p for p in request.path[len(PREFIX) :].split("/") if p]
        method = request.method.upper()
        if parts[:1] == ["static"] and len(parts) == 2 and method == "GET":
            return _asset(parts[1])
        caller = self.authenticated(request)
        routes: dict[tuple[str, int, str], Callable[[], ConsoleResponse]] = {
            ("GET", 0, ""): lambda: self.pages.runs(request, caller, token),
            ("GET", 1, "runs"): lambda: self.pages.runs(request, caller, token),
            ("GET", 2, "runs"): lambda: self.pages.run(request, caller, token, parts[1]),
            ("GET", 3, "runs"): lambda: self.pages.run_part(request, caller, parts[1], parts[2]),
            ("POST", 3, "runs"): lambda: self.run_action(request, caller, parts[1], parts[2]),
            ("POST", 3, "callbacks"): lambda: self.callback_action(
                request, caller, parts[1], parts[2]
            ),
            ("GET", 1, "workflows"): lambda: self.pages.workflows(request, caller, token),
            ("GET", 2, "workflows"): lambda: self.pages.workflow(request, caller, token, parts[1]),
            ("POST", 3, "workflows"): lambda: self.start_action(
                request, caller, parts[1], parts[2]
            ),
        }
        answer = routes.get((method, len(parts), parts[0] if parts else ""))
        if answer is None:
            if any(key[1:] == (len(parts), parts[0] if parts else "") for key in routes):
                raise ConsoleError(
                    HTTPStatus.METHOD_NOT_ALLOWED,
                    "Method not allowed",
                    f"{request.path} does not take {method}",
                )
            raise ConsoleError(HTTPStatus.NOT_FOUND, "Not found", f"no page {request.path}")
        return answer()

    def refuse(self, status: HTTPStatus, title: str, message: str) -> ConsoleResponse:
        """An error page decided before the request could be read (a body too large)."""
        response = self.pages.error(status, title, message, "")
        response.headers = {**SECURITY_HEADERS, **response.headers}
        return response

    # -- access ----------------------------------------------------------------------------
    def authenticated(self, request: ConsoleRequest) -> Caller:
        """The caller, when authenticated (or anonymous callers are allowed).

        Raises:
            ConsoleError: 401.
        """
        if request.caller.kind == "anonymous" and not self.allow_anonymous:
            raise ConsoleError(
                HTTPStatus.UNAUTHORIZED,
                "Unauthorized",
                "the console needs an authenticated caller (IAM or JWT at API Gateway)",
            )
        return request.caller

    def allowed(
        self,
        caller: Caller,
        action: Action,
        workflow: str,
        *,
        run_id: str | None = None,
        input: Any = None,
    ) -> bool:
        """Whether the workflow's hook allows ``action``."""
        return permits(
            self.flow,
            AccessRequest(
                caller=caller, action=action, workflow=workflow, run_id=run_id, input=input
            ),
        )

    def authorize(
        self,
        caller: Caller,
        action: Action,
        workflow: str,
        *,
        run_id: str | None = None,
        input: Any = None,
    ) -> None:
        """Ask the workflow's hook, as the HTTP API does.

        Raises:
            ConsoleError: 403 when it refuses.
        """
        request = AccessRequest(
            caller=caller, action=action, workflow=workflow, run_id=run_id, input=input
        )
        if self.flow.admits(request, logger):
            return
        raise ConsoleError(
            HTTPStatus.FORBIDDEN,
            "Forbidden",
            f"the caller may not {action} runs of workflow {workflow!r}",
        )

    def visible_run(self, caller: Caller, run_id: str, action: Action = "read") -> Run:
        """The run, when the caller may ``action`` it.

        Raises:
            RunNotFound: unknown (or malformed) id.
            ConsoleError: 403.
        """
        run = self.service.get_run(run_id)
        if run is None:
            raise RunNotFound(run_id)
        self.authorize(caller, action, run.workflow, run_id=run.id)
        return run

    def cost_of(self, run: Run, history: list[Any]) -> Any:
        """The run's cost on AWS by the console's model."""
        return run_cost(count_run(history, since=run.created_at), self.cost_model)

    # -- actions ---------------------------------------------------------------------------
    def _form(self, request: ConsoleRequest) -> dict[str, str]:
        if self.read_only:
            raise ConsoleError(
                HTTPStatus.FORBIDDEN, "Read-only", "this console was started read-only"
            )
        form = request.form(self.max_body_bytes)
        check_same_origin(request, form)
        return form

    def run_action(
        self, request: ConsoleRequest, caller: Caller, run_id: str, action: str
    ) -> ConsoleResponse:
        """``resume``, ``cancel`` or ``fork`` a run: confirm, then act."""
        if action not in ("resume", "cancel", "fork"):
            raise ConsoleError(HTTPStatus.NOT_FOUND, "Not found", f"no action {action!r}")
        form = self._form(request)
        needed: Action = "read" if action == "fork" else action  # type: ignore[assignment]
        run = self.visible_run(caller, run_id, needed)
        if form.get("confirm") != "yes":
            return self.pages.confirm(request, form, run=run, action=action)
        from ._views import parse_json_text

        if action == "resume":
            payload = parse_json_text(form.get("payload", ""), ["payload"])
            self.service.resume(run.id, payload)
            logger.info("run resumed from the console", extra={"run_id": run.id})
            return _see_other(run.id, "resumed")
        if action == "cancel":
            reason = form.get("reason", "").strip() or None
            self.service.cancel(run.id, reason)
            logger.info("run cancelled from the console", extra={"run_id": run.id})
            return _see_other(run.id, "cancelled")
        new_input = parse_json_text(form.get("input", ""), ["input"])
        typed = run.input
        if new_input is not None:
            definition = self.flow.get_workflow(run.workflow)
            typed = definition.input.validate(new_input, f"workflow {definition.name!r}")
        self.authorize(caller, "start", run.workflow, input=typed)
        new_id = self.service.fork(run.id, from_step=form.get("from_step", ""), input=new_input)
        logger.info("run forked from the console", extra={"run_id": new_id, "forked_from": run.id})
        return _see_other(new_id, "forked")

    def callback_action(
        self, request: ConsoleRequest, caller: Caller, callback_id: str, action: str
    ) -> ConsoleResponse:
        """Complete (``succeed``) or ``fail`` a waiting callback: confirm, then act."""
        if action not in ("succeed", "fail"):
            raise ConsoleError(HTTPStatus.NOT_FOUND, "Not found", f"no action {action!r}")
        form = self._form(request)
        state = self.service.find_callback(callback_id)
        run = self.visible_run(caller, state.run_id, "read")
        self.authorize(caller, "callback", run.workflow, run_id=run.id)
        if form.get("confirm") != "yes":
            return self.pages.confirm(
                request, form, run=run, action=action, callback_id=callback_id
            )
        from ._views import parse_json_text

        if action == "succeed":
            payload = parse_json_text(form.get("payload", ""), ["payload"])
            self.service.complete_callback(callback_id, payload)
            return _see_other(run.id, "callback-succeeded")
        error = form.get("error", "").strip()
        self.service.fail_callback(callback_id, error, error_type=form.get("type") or None)
        return _see_other(run.id, "callback-failed")

    def start_action(
        self, request: ConsoleRequest, caller: Caller, name: str, action: str
    ) -> ConsoleResponse:
        """Start a run of workflow ``name`` from its form: confirm, then start."""
        if action != "start":
            raise ConsoleError(HTTPStatus.NOT_FOUND, "Not found", f"no action {action!r}")
        form = self._form(request)
        definition = self.flow.get_workflow(name)
        from ._views import form_fields, input_from_form, input_schema

        fields = form_fields(input_schema(definition.input))
        try:
            data = input_from_form(fields, form)
            typed = definition.input.validate(data, f"workflow {definition.name!r}")
        except InvalidInput as exc:
            return self.pages.workflow(
                request, caller, form.get(CSRF_FIELD, ""), name, form=form, problem=exc
            )
        self.authorize(caller, "start", definition.name, input=typed)
        if form.get("confirm") != "yes":
            return self.pages.confirm(request, form, workflow=definition.name, action="start")
        key = form.get("idempotency_key", "").strip() or None
        try:
            run_id = self.service.start(definition.name, data, idempotency_key=key)
        except InvalidInput as exc:  # too large, unstorable: shown on the form
            return self.pages.workflow(
                request, caller, form.get(CSRF_FIELD, ""), name, form=form, problem=exc
            )
        logger.info("run started from the console", extra={"run_id": run_id, "workflow": name})
        return _see_other(run_id, "started")


def notice(done: str | None) -> str | None:
    """The notice a redirect asked for, by key."""
    return _DONE.get(done or "")


def _see_other(run_id: str, done: str) -> ConsoleResponse:
    location = f"{PREFIX}/runs/{uuid.UUID(run_id)}?{urlencode({'done': done})}"
    return ConsoleResponse(status=HTTPStatus.SEE_OTHER, body="", headers={"Location": location})


def _asset(name: str) -> ConsoleResponse:
    content_type = ASSETS.get(name)
    if content_type is None:
        raise ConsoleError(HTTPStatus.NOT_FOUND, "Not found", f"no asset {name!r}")
    body = (STATIC / name).read_text(encoding="utf-8")
    return ConsoleResponse(
        status=HTTPStatus.OK,
        body=body,
        content_type=content_type,
        headers={"Cache-Control": "public, max-age=300"},
    )


_STATUSES: list[tuple[type[Exception], HTTPStatus, str]] = [
    (UnstorableInput, HTTPStatus.BAD_REQUEST, "Input the database cannot store"),
    (InputTooLarge, HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "Input too large"),
    (IdempotencyConflict, HTTPStatus.UNPROCESSABLE_ENTITY, "Idempotency key already used"),
    (InvalidInput, HTTPStatus.UNPROCESSABLE_ENTITY, "Invalid input"),
    (InvalidOption, HTTPStatus.UNPROCESSABLE_ENTITY, "Invalid option"),
    (WorkflowNotFound, HTTPStatus.NOT_FOUND, "Unknown workflow"),
    (RunNotFound, HTTPStatus.NOT_FOUND, "Unknown run"),
    (CallbackNotFound, HTTPStatus.NOT_FOUND, "Unknown callback"),
    (CallbackConflict, HTTPStatus.CONFLICT, "Callback not waiting"),
    (InvalidRunState, HTTPStatus.CONFLICT, "Run already finished"),
    (StoreUnavailable, HTTPStatus.SERVICE_UNAVAILABLE, "Database unavailable"),
]


def _status_of(exc: Exception) -> tuple[HTTPStatus, str]:
    for error_type, status, title in _STATUSES:
        if isinstance(exc, error_type):
            return status, title
    return HTTPStatus.INTERNAL_SERVER_ERROR, "Internal error"


def query_value(query: Mapping[str, str], name: str) -> str | None:
    """A query parameter, None when missing or blank."""
    value = query.get(name, "").strip()
    return value or None

"""``build_api``: the routes, their OpenAPI and the error answers wired into one resolver."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError, ServiceError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from ...core import (
    CallbackConflict,
    CallbackNotFound,
    ConfigurationError,
    Duration,
    IdempotencyConflict,
    InputTooLarge,
    InvalidInput,
    InvalidOption,
    InvalidRunState,
    RunNotFound,
    RunPage,
    StoreUnavailable,
    UnstorableInput,
    WorkflowNotFound,
    parse_duration,
)
from ...engine import Flow
from ...service import WorkflowService
from ._agents import add_agent_route
from ._models import (
    CallbackAnswer,
    RunFinished,
    RunHistoryView,
    RunInProgress,
    RunStarted,
    RunView,
    WorkflowList,
)
from ._openapi import (
    _CALLBACK_PAYLOAD_BODY,
    _CANCEL_BODY,
    _FAIL_CALLBACK_BODY,
    _FORK_BODY,
    _INPUT_BODY,
    _RESUME_BODY,
    _RUN_TIMEOUT_NOTE,
    MAX_PAGE_BYTES,
    _package_version,
    _responses,
    with_workflows,
)
from ._request import HttpError
from ._routes import _WorkflowRoutes
from ._web import add_console_routes

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger
    from aws_lambda_powertools.event_handler.openapi.models import OpenAPI

__all__ = ["build_api"]

_LOGGER_NAME = "lambda_flow.aws.api"
"""The default logger's name: the public package's (not this module's), so it stays put."""

DOCS_PATH = "/docs"
"""Where the Swagger UI is served (``docs=True``)."""


class _WorkflowResolver(APIGatewayHttpResolver):
    """The Powertools resolver, whose OpenAPI document has each workflow's own operations.

    Every way the document is read (``/openapi.json``, the Swagger UI, tools calling
    ``get_openapi_schema``) goes through :func:`with_workflows`.
    """

    def __init__(self, flow: Flow) -> None:
        super().__init__(enable_validation=True)
        self._flow = flow

    def get_openapi_schema(self, *args: Any, **kwargs: Any) -> OpenAPI:
        """Powertools' document of the routes, with a typed start and run per workflow."""
        from aws_lambda_powertools.event_handler.openapi.models import OpenAPI, PathItem

        document = super().get_openapi_schema(*args, **kwargs)
        data = with_workflows(
            document.model_dump(by_alias=True, exclude_none=True, mode="json"), self._flow
        )
        paths = {path: PathItem.model_validate(item) for path, item in data["paths"].items()}
        return OpenAPI.model_validate({**data, "paths": paths})  # PathItems, as Powertools has


def build_api(
    service: WorkflowService,
    flow: Flow,
    *,
    max_body_bytes: int = 256 * 1024,
    allow_anonymous: bool = False,
    max_wait: Duration = "25s",
    poll_interval: Duration = "250ms",
    logger: logging.Logger | Logger | None = None,
    max_page_bytes: int = MAX_PAGE_BYTES,
    docs: bool = True,
    console: bool = True,
    mcp: bool = False,
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
        max_page_bytes: a ``GET /runs`` page stops once its runs take this many bytes of JSON.
        docs: serve the Swagger UI at ``/docs`` (its script and styles ship inside Powertools;
            nothing is fetched from a CDN). ``template.yaml`` gives it no route on AWS.
        console: serve the web console under ``/console`` (``lambda_flow.console``, imported
            on its first request), with the same caller checks and ``authorize`` hooks.
        mcp: serve MCP at ``POST /mcp`` (stateless streamable HTTP): every workflow as a tool
            for AI agents, each call behind the same caller checks and ``authorize`` hooks
            (``lambda_flow.agents``, imported on its first request; needs the ``mcp`` extra).

    Returns:
        The resolver, with every route and error answer registered.

    Raises:
        ConfigurationError: ``flow`` is not the service's flow, a limit is not positive, or
            ``mcp`` is asked without the ``mcp`` package installed.
    """
    poll = _checked_options(service, flow, max_body_bytes=max_body_bytes, poll=poll_interval)
    if max_page_bytes <= 0:
        raise ConfigurationError(f"max_page_bytes must be positive, got {max_page_bytes}")
    app = _WorkflowResolver(flow)
    routes = _WorkflowRoutes(
        app,
        service,
        max_body_bytes=max_body_bytes,
        allow_anonymous=allow_anonymous,
        wait_cap=parse_duration(max_wait),
        poll=poll,
        log=logger or logging.getLogger(_LOGGER_NAME),
        max_page_bytes=max_page_bytes,
    )
    _add_workflow_routes(routes)
    _add_run_routes(routes)
    _add_callback_routes(routes)
    _add_meta_routes(routes, docs=docs)
    if console:
        add_console_routes(routes)
    if mcp:
        add_agent_route(routes)
    _add_error_answers(app, routes)
    return app


def _checked_options(
    service: WorkflowService, flow: Flow, *, max_body_bytes: int, poll: Duration
) -> timedelta:
    """Refuse options the API cannot work with, before anything is built.

    Args:
        service: the service the API serves.
        flow: the Flow the caller says the service was built with.
        max_body_bytes: the largest request body.
        poll: how often ``/run`` looks at the run.

    Returns:
        The poll interval, parsed.

    Raises:
        ConfigurationError: ``flow`` is not the service's flow, or a limit is not positive.
    """
    if flow is not service.flow:
        raise ConfigurationError("build_api needs the Flow the service was built with")
    if max_body_bytes <= 0:
        raise ConfigurationError(f"max_body_bytes must be positive, got {max_body_bytes}")
    interval = parse_duration(poll)
    if interval <= timedelta(0):
        raise ConfigurationError("poll_interval must be positive")
    return interval


def _add_workflow_routes(routes: _WorkflowRoutes) -> None:
    """``GET /workflows``, ``POST /workflows/<name>/start`` and ``POST /workflows/<name>/run``.

    The OpenAPI document turns the two ``<name>`` routes into one per workflow.
    """
    routes.route(
        "GET",
        "/workflows",
        summary="List workflows",
        description="Every workflow with its description, tags and input and output schemas.",
        tags=["workflows"],
        responses=_responses([(200, WorkflowList, "The workflows, by name")], 401),
    )(routes.list_workflows)
    routes.route(
        "POST",
        "/workflows/<name>/start",
        summary="Start a run of a workflow",
        description="Stores a run and queues it (remote mode) or runs it here (inline mode)."
        + _RUN_TIMEOUT_NOTE,
        tags=["workflows"],
        responses=_responses(
            [(202, RunStarted, "The run was started, or the Idempotency-Key's first run")],
            *(400, 401, 403, 404, 413),
        ),
        openapi_extensions=_INPUT_BODY,
    )(routes.start_workflow)
    routes.route(
        "POST",
        "/workflows/<name>/run",
        summary="Run a workflow and wait for its end",
        description="200 with the outcome once the run has ended within the timeout, else 202."
        + _RUN_TIMEOUT_NOTE,
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


def _add_run_routes(routes: _WorkflowRoutes) -> None:
    """Reading, listing, resuming and cancelling runs under ``/runs``."""
    routes.route(
        "GET",
        "/runs/<run_id>",
        summary="Get a run",
        tags=["runs"],
        responses=_responses([(200, RunView, "The run")], 401, 403, 404),
    )(routes.get_run)
    routes.route(
        "GET",
        "/runs/<run_id>/history",
        summary="Get a run's history",
        description="Every attempt of every step, oldest first.",
        tags=["runs"],
        responses=_responses([(200, RunHistoryView, "The run's attempts")], 401, 403, 404),
    )(routes.get_run_history)
    routes.route(
        "GET",
        "/runs",
        summary="List runs",
        description=(
            "Newest first, as summaries (no input or output: GET /runs/{run_id} has them). Runs "
            "the caller may not read are left out, and a page stops at about 1 MiB, so a page "
            "can be short while next_cursor goes on."
        ),
        tags=["runs"],
        responses=_responses([(200, RunPage, "A page of runs")], 401),
    )(routes.list_runs)
    routes.route(
        "POST",
        "/runs/<run_id>/resume",
        summary="Resume a suspended run",
        tags=["runs"],
        description='The body may carry {"payload": ...}: what the awaited wf.suspend returns.',
        responses=_responses(
            [(200, RunView, "The run after resuming")], 400, 401, 403, 404, 409, 413
        ),
        openapi_extensions=_RESUME_BODY,
    )(routes.resume_run)
    routes.route(
        "POST",
        "/runs/<run_id>/cancel",
        summary="Cancel a run",
        tags=["runs"],
        responses=_responses([(200, RunView, "The cancelled run")], 400, 401, 403, 404, 409, 413),
        openapi_extensions=_CANCEL_BODY,
    )(routes.cancel_run)
    routes.route(
        "POST",
        "/runs/<run_id>/fork",
        summary="Fork a run from a step",
        tags=["runs"],
        description=(
            "Starts a new run of the same workflow that reuses the recorded steps before "
            '{"from_step": <step key>} and runs from there, with the run\'s input or the '
            'body\'s "input". 404 unknown run, 422 unknown step.'
        ),
        responses=_responses(
            [(202, RunStarted, "The new run was started")], 400, 401, 403, 404, 413
        ),
        openapi_extensions=_FORK_BODY,
    )(routes.fork_run)


def _add_callback_routes(routes: _WorkflowRoutes) -> None:
    """Completing, failing and heartbeating callbacks under ``/callbacks`` (by their id)."""
    for action, summary, body in (
        ("succeed", "Complete a callback with a payload (the body)", _CALLBACK_PAYLOAD_BODY),
        ("fail", "Fail a callback", _FAIL_CALLBACK_BODY),
        ("heartbeat", "Heartbeat a callback: its heartbeat deadline moves", None),
    ):
        routes.route(
            "POST",
            f"/callbacks/<callback_id>/{action}",
            summary=summary,
            description="Idempotent: the same completion again gets the same answer.",
            tags=["callbacks"],
            responses=_responses(
                [(200, CallbackAnswer, "The callback took it")], 400, 401, 403, 404, 409, 413
            ),
            **({} if body is None else {"openapi_extensions": body}),
        )(getattr(routes, f"{action}_callback"))


def _add_meta_routes(routes: _WorkflowRoutes, *, docs: bool) -> None:
    """``GET /openapi.json`` and the Swagger UI: the API's own description, without a caller."""
    routes.route("GET", "/openapi.json", summary="This OpenAPI document", tags=["meta"])(
        routes.openapi
    )
    if docs:
        _add_docs_route(routes.app)
        routes.remember("GET", DOCS_PATH)


def _add_docs_route(app: APIGatewayHttpResolver) -> None:
    """The Swagger UI at ``DOCS_PATH``, as Powertools' ``enable_swagger`` serves it.

    ``enable_swagger`` imports Powertools' OpenAPI models (~60 ms) and reads the package's
    version when the route is registered, at every cold start of the API; here both wait for
    the first request for the page. The page is the same: Powertools' HTML, with its own script
    and styles inlined (no CDN), ``?format=json`` the document and ``?format=oauth2-redirect``
    the OAuth2 redirect page.
    """

    @app.get(DOCS_PATH, include_in_schema=False)
    def swagger_handler() -> Response[str]:
        from pathlib import Path

        from aws_lambda_powertools.event_handler import api_gateway
        from aws_lambda_powertools.event_handler.openapi.compat import model_json
        from aws_lambda_powertools.event_handler.openapi.models import Server
        from aws_lambda_powertools.event_handler.openapi.swagger_ui import (
            generate_oauth2_redirect_html,
            generate_swagger_html,
        )

        query = app.current_event.query_string_parameters or {}
        if query.get("format") == "oauth2-redirect":
            return Response(
                status_code=200, content_type="text/html", body=generate_oauth2_redirect_html()
            )
        spec = app.get_openapi_schema(
            title="lambda-flow workflows API",
            version=_package_version(),
            description="Start, run, read, resume and cancel durable workflow runs.",
            servers=[Server(url=app._get_base_path() or "/")],  # as Powertools' own
        )
        # "</" escaped so the document cannot close the page's <script> early.
        escaped = model_json(spec, by_alias=True, exclude_none=True, indent=2).replace("</", "<\\/")
        if query.get("format") == "json":
            return Response(status_code=200, content_type="application/json", body=escaped)
        ui = Path(api_gateway.__file__).parent / "openapi" / "swagger_ui"
        body = generate_swagger_html(
            escaped,
            (ui / "swagger-ui-bundle.min.js").read_text(encoding="utf-8"),
            (ui / "swagger-ui.min.css").read_text(encoding="utf-8"),
            None,  # type: ignore[arg-type]  # Powertools passes its None default too
            None,
        )
        return Response(status_code=200, content_type="text/html", body=body)


def _add_error_answers(app: APIGatewayHttpResolver, routes: _WorkflowRoutes) -> None:
    """Map each error to its answer; Powertools picks the handler of the closest base class."""
    handlers: list[tuple[type[Exception], Callable[[Any], Response[Any]]]] = [
        (HttpError, routes.http_error),
        (UnstorableInput, routes.unstorable_input),
        (InputTooLarge, routes.input_too_large),
        (InvalidInput, routes.invalid_input),
        (InvalidOption, routes.invalid_option),
        (IdempotencyConflict, routes.idempotency_conflict),
        (RequestValidationError, routes.invalid_request),
        (WorkflowNotFound, routes.unknown_workflow),
        (RunNotFound, routes.unknown_run),
        (CallbackNotFound, routes.unknown_callback),
        (CallbackConflict, routes.callback_conflict),
        (InvalidRunState, routes.finished_run),
        (StoreUnavailable, routes.store_unavailable),
        (NotFoundError, routes.unknown_route),
        (ServiceError, routes.service_error),
        (Exception, routes.unexpected),
    ]
    for error_type, handler in handlers:
        app.exception_handler(error_type)(handler)

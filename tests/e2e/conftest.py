"""Fixtures for end-to-end tests: handlers called with realistic Lambda events.

API fixtures (``api_*`` names, ``lambda_context``) live here; queue, worker and moto fixtures
can sit beside them under their own prefixes.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import psycopg
import pytest

from lambda_flow import Flow, WorkflowService
from lambda_flow.aws.api import build_api
from lambda_flow.aws.runtime import reset_runtimes
from tests.conftest import count_rows
from tests.events import load_event


# -- Lambda context ----------------------------------------------------------------------------
@dataclass
class FakeLambdaContext:
    """The attributes Powertools reads from a Lambda context, with harmless values."""

    function_name: str = "lambda-flow-api"
    function_version: str = "$LATEST"
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:lambda-flow-api"
    memory_limit_in_mb: int = 512
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/lambda-flow-api"
    log_stream_name: str = "2026/01/01/[$LATEST]0123456789abcdef"
    remaining_ms: int = 30_000
    """What ``get_remaining_time_in_millis`` answers (time never passes here)."""

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    """A fresh fake Lambda context with 30 s left."""
    return FakeLambdaContext()


# -- callers as API Gateway's authorizers describe them ----------------------------------------
def jwt_authorizer(sub: str = "alice", **claims: Any) -> dict[str, Any]:
    """``requestContext.authorizer`` after a JWT authorizer accepted a token for ``sub``."""
    return {"jwt": {"claims": {"sub": sub, "token_use": "access", **claims}, "scopes": []}}


def iam_authorizer(user_arn: str | None, caller_id: str = "AROAEXAMPLE:ops") -> dict[str, Any]:
    """``requestContext.authorizer`` after IAM (SigV4) authorization."""
    return {
        "iam": {
            "accessKey": "AKIAIOSFODNN7EXAMPLE",
            "accountId": "123456789012",
            "callerId": caller_id,
            "userArn": user_arn,
            "userId": caller_id,
        }
    }


def lambda_authorizer(**context: Any) -> dict[str, Any]:
    """``requestContext.authorizer`` after a Lambda authorizer returned ``context``."""
    return {"lambda": context}


ANONYMOUS = None
"""Pass as ``authorizer=`` for a request API Gateway did not authenticate."""


# -- requests ----------------------------------------------------------------------------------
_ROUTE_TEMPLATES = [
    "/workflows/{name}/start",
    "/workflows/{name}/run",
    "/runs/{run_id}/history",
    "/runs/{run_id}/resume",
    "/runs/{run_id}/cancel",
    "/runs/{run_id}",
    "/runs",
    "/openapi.json",
]
_ROUTES = [
    (t, re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", t) + "$")) for t in _ROUTE_TEMPLATES
]
_NO_BODY = object()
_DEFAULT_CALLER = object()


@dataclass
class ApiResponse:
    """A resolved answer: status, decoded JSON body and headers."""

    status: int
    body: Any
    headers: dict[str, Any]


class ApiClient:
    """Sends payload-v2 events, built from ``events/api_start.json``, to a handler.

    Every request overrides the sample's method, path (``rawPath``, ``requestContext.http``,
    ``routeKey``, ``pathParameters`` as API Gateway would set them for the route), query, headers,
    body and ``requestContext.authorizer`` (a JWT caller ``alice`` unless told otherwise).
    """

    def __init__(self, handle: Callable[[dict[str, Any], Any], dict[str, Any]], context: Any):
        self.handle = handle
        self.context = context

    @staticmethod
    def event(
        method: str,
        path: str,
        *,
        json_body: Any = _NO_BODY,
        body: str | None = None,
        base64_body: bool = False,
        headers: Mapping[str, str] | None = None,
        query: Mapping[str, str] | None = None,
        authorizer: Any = _DEFAULT_CALLER,
    ) -> dict[str, Any]:
        """The v2 event for one request (see the class docstring)."""
        event = load_event("api_start")
        sample_headers = event["headers"]
        event["headers"] = {
            k: v
            for k, v in sample_headers.items()
            if k not in ("idempotency-key", "content-length")
        }
        event["headers"].update({k.lower(): v for k, v in (headers or {}).items()})
        route = "$default"
        event.pop("pathParameters", None)
        for template, pattern in _ROUTES:
            match = pattern.match(path)
            if match:
                route = f"{method} {template}"
                if match.groupdict():
                    event["pathParameters"] = match.groupdict()
                break
        event["routeKey"] = event["requestContext"]["routeKey"] = route
        event["rawPath"] = event["requestContext"]["http"]["path"] = path
        event["requestContext"]["http"]["method"] = method
        event["rawQueryString"] = urlencode(dict(query or {}))
        if query:
            event["queryStringParameters"] = dict(query)
        if json_body is not _NO_BODY:
            body = json.dumps(json_body)
        if body is not None and base64_body:
            body = base64.b64encode(body.encode()).decode()
        if body is None:
            event.pop("body", None)
        else:
            event["body"] = body
        event["isBase64Encoded"] = base64_body
        if authorizer is _DEFAULT_CALLER:
            authorizer = jwt_authorizer("alice")
        if authorizer is None:
            event["requestContext"].pop("authorizer", None)
        else:
            event["requestContext"]["authorizer"] = authorizer
        return event

    def send(self, event: dict[str, Any]) -> ApiResponse:
        """Resolve a ready-made event."""
        raw = self.handle(event, self.context)
        text = raw.get("body") or ""
        if raw.get("isBase64Encoded"):
            text = base64.b64decode(text).decode()
        return ApiResponse(raw["statusCode"], json.loads(text) if text else None, raw["headers"])

    def request(self, method: str, path: str, **kwargs: Any) -> ApiResponse:
        """Build the event for one request and resolve it."""
        return self.send(self.event(method, path, **kwargs))

    def get(self, path: str, **kwargs: Any) -> ApiResponse:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> ApiResponse:
        return self.request("POST", path, **kwargs)


@pytest.fixture
def api_service(make_service: Callable[..., WorkflowService]) -> WorkflowService:
    """The inline-mode service on the test's store and time-skipping clock."""
    return make_service()


@pytest.fixture
def api_client(
    flow: Flow, api_service: WorkflowService, lambda_context: FakeLambdaContext
) -> ApiClient:
    """A client of ``build_api`` over the inline service, with default limits and auth on."""
    app = build_api(api_service, flow)
    return ApiClient(app.resolve, lambda_context)


@pytest.fixture
def api_rows(db: psycopg.Connection[Any]) -> Callable[[], tuple[int, int, int]]:
    """Counts of (runs, steps, step_attempts) rows, to show a request wrote nothing."""

    def counts() -> tuple[int, int, int]:
        return count_rows(db, "runs"), count_rows(db, "steps"), count_rows(db, "step_attempts")

    return counts


@pytest.fixture
def api_handler_env(
    monkeypatch: pytest.MonkeyPatch, database_url: str, schema: str
) -> Iterator[pytest.MonkeyPatch]:
    """Environment for ``lambda_flow.handlers.api.handler``: the test's database and schema, no
    queues.

    Set ``LAMBDA_FLOW_APP`` (and anything else) on the yielded monkeypatch. Runtimes are reset
    before and after, so each test builds its own.
    """
    for name in (
        "LAMBDA_FLOW_DATABASE_SECRET_ARN",
        "LAMBDA_FLOW_ORCHESTRATOR_QUEUE_URL",
        "LAMBDA_FLOW_STEP_QUEUE_URL",
        "LAMBDA_FLOW_SCHEDULE_GROUP",
        "LAMBDA_FLOW_SCHEDULER_ROLE_ARN",
        "LAMBDA_FLOW_MAX_BODY_BYTES",
        "LAMBDA_FLOW_ALLOW_ANONYMOUS",
        "AWS_LAMBDA_FUNCTION_NAME",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LAMBDA_FLOW_DATABASE_URL", database_url)
    monkeypatch.setenv("LAMBDA_FLOW_SCHEMA", schema)
    reset_runtimes()
    yield monkeypatch
    reset_runtimes()

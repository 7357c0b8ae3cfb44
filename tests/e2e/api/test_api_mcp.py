"""``POST /mcp`` on the Api function (issue 16): payload-v2 events through the resolver.

The official MCP client talks to the route through an HTTP transport that turns each of its
requests into the API Gateway event the Api function would get (with the caller API Gateway
authenticated) and each answer back into HTTP; so the client, the route and the SDK's stateless
server are all real. Plain events check the HTTP side: 401 without a caller, 405, 413, and the
cold start without the MCP SDK.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import anyio
import anyio.to_thread
import httpx2
import pytest
from mcp import Client, ClientSession
from mcp.client.streamable_http import streamable_http_client

from lambda_flow import PostgresStore, WorkflowService
from lambda_flow.aws.api import build_api
from lambda_flow.handlers import api as api_handler
from lambda_flow.testing import TimeSkippingClock
from lambda_flow.transport.local import LocalQueue
from tests import ROOT
from tests.e2e.conftest import ANONYMOUS, ApiClient, FakeLambdaContext, jwt_authorizer
from tests.e2e.mcp import app

URL = "https://api.example.com/mcp"
ACCEPT = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
LEGACY = {**ACCEPT, "mcp-protocol-version": "2025-06-18"}

Resolve = Callable[[dict[str, Any], Any], dict[str, Any]]


@pytest.fixture
def remote_service(store: PostgresStore, clock: TimeSkippingClock) -> WorkflowService:
    """The deployed API's mode: runs are queued (no worker here), waits poll on the clock."""
    return WorkflowService(app.flow, store=store, queue=LocalQueue(clock), clock=clock)


@pytest.fixture
def resolve(remote_service: WorkflowService) -> Resolve:
    return build_api(remote_service, app.flow, mcp=True).resolve


def _transport(resolve: Resolve, authorizer: Any) -> httpx2.MockTransport:
    """HTTP requests of the MCP client as payload-v2 events, the resolver's answers as HTTP."""

    async def handle(request: httpx2.Request) -> httpx2.Response:
        body = (await request.aread()).decode()
        event = ApiClient.event(
            request.method,
            request.url.path,
            body=body or None,
            headers=dict(request.headers),
            authorizer=authorizer,
        )
        raw = await anyio.to_thread.run_sync(resolve, event, FakeLambdaContext())
        return httpx2.Response(
            raw["statusCode"], headers=raw.get("headers") or {}, content=raw.get("body") or ""
        )

    return httpx2.MockTransport(handle)


def _client(resolve: Resolve, authorizer: Any) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(transport=_transport(resolve, authorizer))


def test_the_official_client_through_api_gateway_events(resolve: Resolve) -> None:
    async def talk() -> None:
        async with (
            _client(resolve, jwt_authorizer("alice")) as http,
            streamable_http_client(URL, http_client=http) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()  # the handshake era, stateless: no session id
            tools = {t.name: t for t in (await session.list_tools()).tools}
            assert tools["greet"].input_schema["required"] == ["name"]
            assert "internal_cleanup" not in tools
            short = await session.call_tool("greet", {"name": "Ada"})
            assert short.structured_content == {
                "run_id": short.structured_content["run_id"],
                "workflow": "greet",
                "status": "running",  # queued: no worker in this test, the wait polled
                "waiting_for": [],
                "next": short.structured_content["next"],
            }
            bad = await session.call_tool("greet", {"times": 7})
            assert bad.is_error
            assert {tuple(d["loc"]) for d in bad.structured_content["error"]["details"]} == {
                ("name",),
                ("times",),
            }
            refused = await session.call_tool("delete_account", {"user_id": "u-1"})
            assert refused.is_error
            assert refused.structured_content["error"]["type"] == "Forbidden"

        async with (  # the newest protocol (an envelope per request), as an admin
            _client(resolve, jwt_authorizer("root", group="admins")) as http,
            Client(streamable_http_client(URL, http_client=http)) as client,
        ):
            assert client.protocol_version == "2026-07-28"
            allowed = await client.call_tool("delete_account", {"user_id": "u-1"})
            assert not allowed.is_error
            assert allowed.structured_content is not None
            assert allowed.structured_content["workflow"] == "delete_account"

    anyio.run(talk)


def test_a_long_workflow_then_get_run(
    remote_service: WorkflowService, resolve: Resolve, clock: TimeSkippingClock
) -> None:
    """The start answers the run id while it runs; get_run follows it (a worker drives it)."""
    from lambda_flow.worker import Dispatcher

    client = ApiClient(resolve, FakeLambdaContext())

    def call(name: str, arguments: dict[str, Any], id: int) -> dict[str, Any]:
        body = {
            "jsonrpc": "2.0",
            "id": id,
            "method": "tools/call",
            "params": {"name": name, "arguments": arguments},
        }
        response = client.post("/mcp", json_body=body, headers=LEGACY)
        assert response.status == 200, response.body
        result: dict[str, Any] = response.body["result"]
        return result

    started = call("slow_report", {"region": "emea", "delay": "1h"}, 1)["structuredContent"]
    assert started["status"] == "running"
    queue = remote_service.queue
    assert isinstance(queue, LocalQueue)
    dispatcher = Dispatcher(remote_service)
    while (message := queue.receive()) is not None:  # what the orchestrator would do
        dispatcher.run_message(json.loads(message.body))
        queue.delete(message.receipt)
    waiting = call("get_run", {"run_id": started["run_id"]}, 2)["structuredContent"]
    assert waiting["waiting_for"][0]["kind"] == "sleep"
    clock.advance("1h")
    while (message := queue.receive()) is not None:
        dispatcher.run_message(json.loads(message.body))
        queue.delete(message.receipt)
    done = call("get_run", {"run_id": started["run_id"], "wait_seconds": 1}, 3)
    assert done["structuredContent"]["status"] == "completed"
    assert done["structuredContent"]["output"] == {"region": "emea", "total": 400}
    assert done["isError"] is False


def test_http_side_anonymous_methods_and_size(resolve: Resolve) -> None:
    client = ApiClient(resolve, FakeLambdaContext())
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    anonymous = client.post("/mcp", json_body=ping, headers=LEGACY, authorizer=ANONYMOUS)
    assert anonymous.status == 401
    assert anonymous.body["error"]["type"] == "Unauthorized"
    assert client.post("/mcp", json_body=ping, headers=LEGACY).status == 200
    streams = client.get("/mcp", headers=LEGACY)
    assert streams.status == 405
    assert streams.headers["Allow"] == "POST"
    big = client.post("/mcp", body=" " * (300 * 1024), headers=LEGACY)
    assert big.status == 413
    garbage = client.post("/mcp", body="{not json", headers=LEGACY)
    assert garbage.status == 400  # the SDK's JSON-RPC parse error
    assert garbage.body["error"]["code"] == -32700


def test_the_route_is_off_by_default(remote_service: WorkflowService) -> None:
    client = ApiClient(build_api(remote_service, app.flow).resolve, FakeLambdaContext())
    assert client.post("/mcp", json_body={}, headers=LEGACY).status == 404


def test_the_handler_serves_it_when_enabled(
    api_handler_env: pytest.MonkeyPatch, lambda_context: FakeLambdaContext
) -> None:
    api_handler_env.setenv("LAMBDA_FLOW_APP", "tests.e2e.mcp.app:flow")
    client = ApiClient(api_handler.handler, lambda_context)
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    assert client.post("/mcp", json_body=ping, headers=LEGACY).status == 404
    api_handler_env.setenv("LAMBDA_FLOW_MCP_ENABLED", "true")
    answer = client.post("/mcp", json_body=ping, headers=LEGACY)
    assert answer.status == 200
    assert answer.body == {"jsonrpc": "2.0", "id": 1, "result": {}}


def test_the_cold_start_does_not_import_the_mcp_sdk() -> None:
    trace = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import lambda_flow.handlers.api"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "lambda_flow.handlers.api" in trace.stderr
    assert [line for line in trace.stderr.splitlines() if "mcp" in line] == []

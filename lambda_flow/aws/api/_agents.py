"""``POST /mcp``: the app's workflows as tools for AI agents, on the Api function (issue 16).

Streamable HTTP in the protocol's stateless mode with JSON answers: each request is one
JSON-RPC exchange, handled in-process by the official MCP SDK (``lambda_flow.agents``,
``handle_http``), so any Lambda instance can answer any request. The caller is the one API
Gateway authenticated (IAM or JWT, as for every route; anonymous gets 401), and each workflow's
``authorize`` hook sees it on every tool call. A workflow tool waits as ``/run`` does: up to
``max_wait`` and never past the invocation's own deadline. ``GET`` and ``DELETE /mcp`` (server
streams and sessions, which a stateless server does not have) get 405.

The SDK and the tools are imported by the first request to the route: the API's cold start is
the same with the route on or off (``template.yaml``'s ``McpEnabled``).
"""

from __future__ import annotations

import importlib.util
import weakref
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.event_handler import Response

from ...core import ConfigurationError
from ._request import _body_bytes

if TYPE_CHECKING:
    from ...agents import AgentTools
    from ._routes import _WorkflowRoutes

__all__ = ["MCP_PATH", "add_agent_route"]

MCP_PATH = "/mcp"

_tools: weakref.WeakKeyDictionary[_WorkflowRoutes, AgentTools] = weakref.WeakKeyDictionary()


def add_agent_route(routes: _WorkflowRoutes) -> None:
    """Register ``POST /mcp`` (left out of the OpenAPI document: it is a protocol endpoint).

    Raises:
        ConfigurationError: the ``mcp`` package is not installed (checked without importing it).
    """
    if importlib.util.find_spec("mcp") is None:
        raise ConfigurationError(
            "the MCP route needs the mcp package: add 'mcp>=2.3,<3' to requirements.txt (or "
            "install lambda-flow[mcp]), or set McpEnabled=false"
        )

    def mcp() -> Response[Any]:
        return answer(routes)

    routes.route("POST", MCP_PATH, include_in_schema=False)(mcp)


def _agent_tools(routes: _WorkflowRoutes) -> AgentTools:
    tools = _tools.get(routes)
    if tools is None:
        from ...agents import AgentTools

        tools = _tools[routes] = AgentTools(routes.service, wait=routes.wait_cap, poll=routes.poll)
    return tools


def answer(routes: _WorkflowRoutes) -> Response[Any]:
    """Answer one MCP request for the authenticated caller."""
    caller = routes.authenticated()
    body = _body_bytes(routes.event, routes.max_body_bytes)  # 413 before anything is parsed
    from ...agents import handle_http

    headers = routes.app.current_event.headers or {}
    reply = handle_http(
        _agent_tools(routes),
        caller=caller,
        method="POST",
        headers={str(k): str(v) for k, v in headers.items()},
        body=body,
        wait=lambda: routes.wait_budget(None),
    )
    content_type = reply.headers.get("content-type", "application/json")
    extra = {k: v for k, v in reply.headers.items() if k not in ("content-type", "content-length")}
    return Response(
        status_code=reply.status,
        content_type=content_type,
        body=reply.body.decode("utf-8", "replace"),
        headers=extra,
    )

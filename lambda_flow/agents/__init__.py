"""Workflows as tools for AI agents (issue 16): tool specs, tool calls and an MCP server.

Every workflow of an app (unless registered with ``tool=False``) is a tool named after it, whose
arguments are the workflow's input (its JSON Schema from the pydantic annotation) and whose call
starts a run and waits a bounded time for it; the run tools (``get_run``, ``get_run_history``,
``list_runs``, ``resume_run``, ``cancel_run``, ``complete_callback``) follow runs that take
longer. :class:`AgentTools` is the one place that says what a call does; it serves
``Flow.tool_specs`` / ``Flow.call_tool``, ``lambda-flow mcp`` (stdio or streamable HTTP) and the
Api function's ``POST /mcp`` route. docs/agents.md has the whole story.

The MCP server (:func:`mcp_server`, :func:`serve_stdio`, :func:`serve_http`,
:func:`handle_http` and its :class:`HttpAnswer`) needs the ``mcp`` extra and is imported on
first use of those names; the rest needs only lambda-flow itself.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..core import Caller, ConfigurationError, Duration, parse_duration
from ..engine import Flow
from ..service import WorkflowService
from ._specs import RUN_TOOL_NAMES, ToolDef, ToolFormat, render, tool_defs
from ._tools import ANONYMOUS, DEFAULT_WAIT, AgentTools, ToolResult

if TYPE_CHECKING:
    from ._mcp import HttpAnswer, handle_http, mcp_server, serve_http, serve_stdio

__all__ = [
    "DEFAULT_WAIT",
    "RUN_TOOL_NAMES",
    "AgentTools",
    "HttpAnswer",
    "ToolDef",
    "ToolFormat",
    "ToolResult",
    "call_tool",
    "handle_http",
    "mcp_server",
    "serve_http",
    "serve_stdio",
    "tool_specs",
]

_MCP_NAMES = frozenset({"HttpAnswer", "handle_http", "mcp_server", "serve_http", "serve_stdio"})


def __getattr__(name: str) -> Any:
    if name in _MCP_NAMES:
        from . import _mcp  # the MCP SDK: imported by the first use of the server

        value = getattr(_mcp, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def tool_specs(
    flow: Flow, format: ToolFormat = "mcp", *, run_tools: bool = True, wait: Duration = DEFAULT_WAIT
) -> list[dict[str, Any]]:
    """``flow``'s tools as plain specs in ``format``: see :meth:`lambda_flow.Flow.tool_specs`."""
    defs = tool_defs(flow, wait_seconds=parse_duration(wait).total_seconds(), run_tools=run_tools)
    return render(defs, format)


_default_services: weakref.WeakKeyDictionary[Flow, WorkflowService] = weakref.WeakKeyDictionary()
_tools: weakref.WeakKeyDictionary[WorkflowService, AgentTools] = weakref.WeakKeyDictionary()


def _tools_for(flow: Flow, service: WorkflowService | None) -> AgentTools:
    if service is None:
        service = _default_services.get(flow)
        if service is None:
            service = _default_services[flow] = WorkflowService(flow)
    elif service.flow is not flow:
        raise ConfigurationError("call_tool needs a service built with this Flow")
    tools = _tools.get(service)
    if tools is None:
        tools = _tools[service] = AgentTools(service)
    return tools


def call_tool(
    flow: Flow,
    name: str,
    arguments: Mapping[str, Any] | None = None,
    *,
    service: WorkflowService | None = None,
    caller: Caller | None = None,
    wait: Duration = DEFAULT_WAIT,
    idempotency_key: str | None = None,
) -> ToolResult:
    """Run one of ``flow``'s tools: see :meth:`lambda_flow.Flow.call_tool`."""
    tools = _tools_for(flow, service)
    return tools.call(
        name,
        arguments,
        caller=caller or ANONYMOUS,
        wait=parse_duration(wait),
        idempotency_key=idempotency_key,
    )

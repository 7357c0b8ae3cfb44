"""Typing test of issue 16's agent-tool names, checked by mypy (never run by pytest)."""

from __future__ import annotations

from typing import Any, assert_type

from lambda_flow import Caller, Flow, WorkflowContext
from lambda_flow.agents import ToolResult

flow = Flow()


@flow.workflow(tool=False)
async def hidden(wf: WorkflowContext) -> None:
    return None


assert_type(flow.tool_specs(), list[dict[str, Any]])
assert_type(flow.tool_specs(format="openai"), list[dict[str, Any]])
assert_type(flow.tool_specs("anthropic", run_tools=False, wait="5s"), list[dict[str, Any]])
flow.tool_specs(format="gemini")  # type: ignore[arg-type]

result = flow.call_tool("hidden", {}, caller=Caller(kind="anonymous"), wait="1s")
assert_type(result, ToolResult)
assert_type(result.data, dict[str, Any])
assert_type(result.is_error, bool)
assert_type(result.text, str)

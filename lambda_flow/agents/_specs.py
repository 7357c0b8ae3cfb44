"""What an agent sees of an app: one tool per workflow and the run tools, with their schemas.

Pure data, no MCP SDK: the MCP server, the AWS route and ``Flow.tool_specs`` all list the same
:class:`ToolDef` objects, rendered in the format each consumer takes (:func:`render`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import CodeType
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.errors import PydanticUserError

from ..core import ConfigurationError, InvalidInput, InvalidOption, RunStatus
from ..engine import Flow, WorkflowDef

__all__ = [
    "RUN_TOOL_NAMES",
    "CancelRunArgs",
    "CompleteCallbackArgs",
    "GetRunArgs",
    "GetRunHistoryArgs",
    "ListRunsArgs",
    "ResumeRunArgs",
    "ToolDef",
    "ToolFormat",
    "render",
    "tool_defs",
    "uses_callbacks",
]

ToolFormat = Literal["openai", "anthropic", "mcp"]
"""How :meth:`Flow.tool_specs` writes a tool: OpenAI Chat Completions function tools, Anthropic
Messages tools, or MCP ``Tool`` objects (as ``tools/list`` answers)."""

FORMATS: tuple[ToolFormat, ...] = ("openai", "anthropic", "mcp")

TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
"""The tool names OpenAI, Anthropic and MCP clients all accept."""

INPUT_KEY = "input"
"""The one argument of a workflow whose input is not a JSON object (a number, a list...)."""


# -- the run tools' arguments (their JSON Schemas are the tools' input schemas) ---------------
class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GetRunArgs(_Args):
    """Arguments of ``get_run``."""

    run_id: str = Field(description="The run's id, from a workflow tool's answer or list_runs.")
    wait_seconds: float = Field(
        default=0,
        ge=0,
        description="Wait up to this many seconds (capped by the server) for a running run to "
        "end before answering; 0 answers at once.",
    )


class GetRunHistoryArgs(_Args):
    """Arguments of ``get_run_history``."""

    run_id: str = Field(description="The run's id.")


class ListRunsArgs(_Args):
    """Arguments of ``list_runs``."""

    workflow: str | None = Field(default=None, description="Only runs of this workflow.")
    status: RunStatus | None = Field(default=None, description="Only runs in this status.")
    limit: int = Field(default=20, ge=1, le=100, description="At most this many runs.")
    cursor: str | None = Field(
        default=None, description="The next_cursor of the previous page, for the next one."
    )


class ResumeRunArgs(_Args):
    """Arguments of ``resume_run``."""

    run_id: str = Field(description="The suspended run's id.")
    payload: Any = Field(
        default=None, description="What the workflow's wf.suspend returns (a decision, say)."
    )


class CancelRunArgs(_Args):
    """Arguments of ``cancel_run``."""

    run_id: str = Field(description="The run's id.")
    reason: str | None = Field(
        default=None, max_length=1000, description="Why; kept as the run's error message."
    )


class CompleteCallbackArgs(_Args):
    """Arguments of ``complete_callback``."""

    callback_id: str = Field(description="The callback's id, from the run's waiting_for.")
    payload: Any = Field(default=None, description="What the waiting workflow receives.")


@dataclass(frozen=True, slots=True)
class ToolDef:
    """One tool: its name, what it does, the JSON Schema of its arguments."""

    name: str
    description: str
    input_schema: dict[str, Any]
    workflow: str | None = None
    """The workflow a workflow tool starts; None for a run tool."""
    wraps_input: bool = False
    """The workflow's input is not a JSON object: it is the tool's ``input`` argument."""
    read_only: bool = False
    """The tool changes nothing (``get_run``, ``get_run_history``, ``list_runs``)."""
    args: type[_Args] | None = field(default=None, compare=False)
    """A run tool's argument model."""


_RUN_TOOLS: tuple[tuple[str, type[_Args], bool, str], ...] = (
    (
        "get_run",
        GetRunArgs,
        True,
        "Get a run of a workflow: its status, its output once completed, its error once failed, "
        "and what it waits for while running or suspended. With wait_seconds it waits for a "
        "running run to end first.",
    ),
    (
        "get_run_history",
        GetRunHistoryArgs,
        True,
        "Every attempt of every step of a run, oldest first, with results and errors.",
    ),
    (
        "list_runs",
        ListRunsArgs,
        True,
        "List runs, newest first, optionally of one workflow or in one status "
        "(running, suspended, completed, failed, cancelled).",
    ),
    (
        "resume_run",
        ResumeRunArgs,
        False,
        "Resume a suspended run with an optional payload (what the workflow's wf.suspend "
        "returns); answers the run as it then is.",
    ),
    ("cancel_run", CancelRunArgs, False, "Cancel a running or suspended run."),
    (
        "complete_callback",
        CompleteCallbackArgs,
        False,
        "Complete a callback a run waits for (its callback_id is in the run's waiting_for) "
        "with a payload; the run goes on.",
    ),
)
RUN_TOOL_NAMES = frozenset(name for name, *_ in _RUN_TOOLS)
"""The names of the run tools: a workflow tool may not take one."""


def _schema(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema()
    schema.pop("title", None)
    schema.pop("description", None)
    return schema


def _tool_name(workflow: str) -> str:
    """The workflow's name when every client takes it, else it made to fit (``_`` for others)."""
    if TOOL_NAME.match(workflow):
        return workflow
    return re.sub(r"[^A-Za-z0-9_-]", "_", workflow)[:64] or "_"


def _input_schema(definition: WorkflowDef) -> tuple[dict[str, Any], bool]:
    """The tool's arguments schema for a workflow's input, and whether the input is wrapped."""
    if not definition.takes_data:
        return {"type": "object", "properties": {}, "additionalProperties": False}, False
    if definition.input.is_any:
        return {"type": "object", "additionalProperties": True}, False
    try:
        schema = definition.input.json_schema("validation")
    except PydanticUserError:  # a type with no JSON Schema: any object, checked on call
        return {"type": "object", "additionalProperties": True}, False
    if schema.get("type") == "object":
        return schema, False
    defs = schema.pop("$defs", None)
    wrapped: dict[str, Any] = {
        "type": "object",
        "properties": {INPUT_KEY: schema},
        "additionalProperties": False,
    }
    try:
        definition.input.validate(None, definition.name)
    except InvalidInput:  # None is refused: the argument is required
        wrapped["required"] = [INPUT_KEY]
    if defs:
        wrapped["$defs"] = defs
    return wrapped, True


def _workflow_description(definition: WorkflowDef, wait_seconds: float) -> str:
    about = (definition.description or f"Run the workflow {definition.name!r}.").strip()
    return (
        f"{about}\n\nStarts a durable run of workflow {definition.name!r} and waits up to "
        f"{wait_seconds:g} s for it: answers its output once completed, else its run_id, its "
        "status (running or suspended) and what it waits for; then use get_run (with "
        "wait_seconds) to follow it."
    )


_CALLBACK_CALLS = frozenset({"callback", "wait_for_callback"})
"""The ``WorkflowContext`` methods that make a callback."""


def _code_objects(code: CodeType) -> Iterator[CodeType]:
    yield code
    for const in code.co_consts:
        if isinstance(const, CodeType):
            yield from _code_objects(const)


def uses_callbacks(flow: Flow) -> bool:
    """Whether some workflow body (or a function defined in it) calls ``wf.callback``.

    Read from the bodies' compiled code, so a callback made in a helper the body calls is not
    seen: pass ``callbacks=True`` to :class:`~lambda_flow.agents.AgentTools` then.
    """
    for definition in flow:
        code = getattr(definition.fn, "__code__", None)
        if isinstance(code, CodeType) and any(
            _CALLBACK_CALLS.intersection(c.co_names) for c in _code_objects(code)
        ):
            return True
    return False


def tool_defs(
    flow: Flow, *, wait_seconds: float, run_tools: bool = True, callbacks: bool | None = None
) -> list[ToolDef]:
    """The tools of ``flow``: a tool per workflow (by name), then the run tools.

    Args:
        flow: the app.
        wait_seconds: how long a workflow tool waits (said in its description).
        run_tools: include the run tools.
        callbacks: include ``complete_callback``; None: when a workflow uses callbacks
            (:func:`uses_callbacks`).

    Raises:
        ConfigurationError: two tools would have the same name.
    """
    tools: list[ToolDef] = []
    taken: dict[str, str] = {}
    for definition in sorted(flow, key=lambda d: d.name):
        if not definition.tool:
            continue
        name = _tool_name(definition.name)
        clash = taken.get(name) or (
            f"the run tool {name!r}" if run_tools and name in RUN_TOOL_NAMES else None
        )
        if clash:
            raise ConfigurationError(
                f"workflow {definition.name!r} would be the tool {name!r}, as {clash} is: "
                "rename the workflow or register it with tool=False"
            )
        taken[name] = f"workflow {definition.name!r}"
        schema, wraps = _input_schema(definition)
        tools.append(
            ToolDef(
                name=name,
                description=_workflow_description(definition, wait_seconds),
                input_schema=schema,
                workflow=definition.name,
                wraps_input=wraps,
            )
        )
    if run_tools:
        with_callbacks = uses_callbacks(flow) if callbacks is None else callbacks
        for name, args, read_only, description in _RUN_TOOLS:
            if name == "complete_callback" and not with_callbacks:
                continue
            tools.append(ToolDef(name, description, _schema(args), read_only=read_only, args=args))
    return tools


def _openai(tool: ToolDef) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": tool.name,
            "description": tool.description,
            "parameters": tool.input_schema,
        },
    }


def _anthropic(tool: ToolDef) -> dict[str, Any]:
    return {"name": tool.name, "description": tool.description, "input_schema": tool.input_schema}


def _mcp(tool: ToolDef) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": tool.name,
        "description": tool.description,
        "inputSchema": tool.input_schema,
    }
    if tool.read_only:
        spec["annotations"] = {"readOnlyHint": True}
    return spec


_RENDER: Mapping[str, Callable[[ToolDef], dict[str, Any]]] = {
    "openai": _openai,
    "anthropic": _anthropic,
    "mcp": _mcp,
}


def render(tools: Sequence[ToolDef], format: str) -> list[dict[str, Any]]:
    """``tools`` as plain JSON-safe dicts in ``format``.

    Raises:
        InvalidOption: an unknown format.
    """
    to_spec = _RENDER.get(format)
    if to_spec is None:
        raise InvalidOption("format", f"expected one of {', '.join(FORMATS)}, got {format!r}")
    return [to_spec(tool) for tool in tools]

"""What each agent tool does: the one home the MCP server, the AWS route and ``call_tool`` share.

A workflow tool checks its arguments as the workflow's input, asks the workflow's ``authorize``
hook (``start``, with the caller), starts a run and waits a bounded time: the output comes back,
or the run id with its status and what it waits for. The run tools read, list, resume and cancel
runs and complete callbacks, each behind the same hook. Every problem is a result with
``is_error`` (never an exception), shaped like the HTTP API's errors: ``{"error": {"type",
"message", "details"}}``, and a refused or malformed call writes nothing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from pydantic import ValidationError

from ..core import (
    AccessRequest,
    Caller,
    ConfigurationError,
    Duration,
    InvalidInput,
    InvalidOption,
    LambdaFlowError,
    PendingItem,
    Run,
    RunNotFound,
    RunStatus,
    StoreUnavailable,
    parse_duration,
)
from ..engine import WorkflowDef
from ..service import WorkflowService
from ._specs import (
    INPUT_KEY,
    CancelRunArgs,
    CompleteCallbackArgs,
    GetRunArgs,
    GetRunHistoryArgs,
    ListRunsArgs,
    ResumeRunArgs,
    ToolDef,
    tool_defs,
)

__all__ = ["ANONYMOUS", "DEFAULT_WAIT", "AgentTools", "ToolResult"]

logger = logging.getLogger("lambda_flow.agents")

DEFAULT_WAIT = "20s"
"""How long a workflow tool waits for its run by default (``get_run``'s ``wait_seconds`` cap)."""

ANONYMOUS = Caller(kind="anonymous")
"""The caller of a tool call that names none."""

Action = Literal["start", "read", "resume", "cancel", "callback"]


@dataclass(frozen=True, slots=True)
class ToolResult:
    """What a tool call answers: JSON ``data``, and whether the call failed (``is_error``).

    A failed call's ``data`` is ``{"error": {"type", "message", "details"}}``; a workflow tool
    whose run failed or was cancelled is an error too (its ``data`` is the run's answer).
    """

    data: dict[str, Any]
    is_error: bool = False

    @property
    def text(self) -> str:
        """``data`` as JSON text: what a model reads."""
        return json.dumps(self.data, ensure_ascii=False, default=str)


class _Refused(LambdaFlowError):
    """A tool call refused by the tools themselves (unknown tool, bad arguments, forbidden)."""

    def __init__(self, type: str, message: str, details: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.type = type
        self.message = message
        self.details = details or []


def _error(type: str, message: str, details: list[dict[str, Any]] | None = None) -> ToolResult:
    return ToolResult({"error": {"type": type, "message": message, "details": details or []}}, True)


def _failure(exc: LambdaFlowError) -> ToolResult:
    """The error result of a library error, named by its class (as the HTTP API names them)."""
    if isinstance(exc, _Refused):
        return _error(exc.type, exc.message, exc.details)
    if isinstance(exc, InvalidInput):
        return _error(type(exc).__name__, str(exc), exc.errors)
    if isinstance(exc, InvalidOption):
        detail = {"loc": [exc.parameter], "msg": str(exc), "type": "invalid_option"}
        return _error("InvalidOption", str(exc), [detail])
    return _error(type(exc).__name__, str(exc))


def _pending(item: PendingItem) -> dict[str, Any]:
    return item.model_dump(mode="json", exclude_none=True)


class AgentTools:
    """The tools of one service's app, and what each call does.

    Args:
        service: the app's service (remote mode for exact waits: inline mode runs a run's steps
            in the calling thread, and a wait only bounds its timers).
        wait: how long a workflow tool waits for its run; ``get_run``'s ``wait_seconds`` is
            capped at it too.
        poll: how often a wait looks at the run in remote mode.
        run_tools: offer the run tools (``get_run``, ``list_runs``...).
        callbacks: offer ``complete_callback``; None: when some workflow uses callbacks.

    Raises:
        ConfigurationError: two tools would have the same name, or ``wait`` is negative.
    """

    def __init__(
        self,
        service: WorkflowService,
        *,
        wait: Duration = DEFAULT_WAIT,
        poll: Duration = "250ms",
        run_tools: bool = True,
        callbacks: bool | None = None,
    ) -> None:
        self.service = service
        self.flow = service.flow
        self.wait = parse_duration(wait)
        self.poll = parse_duration(poll)
        if self.wait < timedelta(0) or self.poll <= timedelta(0):
            raise ConfigurationError("wait must not be negative, poll must be positive")
        self.tools: list[ToolDef] = tool_defs(
            self.flow,
            wait_seconds=self.wait.total_seconds(),
            run_tools=run_tools,
            callbacks=callbacks,
        )
        """Every tool, workflow tools first (by name), then the run tools."""
        self._by_name = {tool.name: tool for tool in self.tools}

    # -- one call ------------------------------------------------------------------------------
    def call(
        self,
        name: str,
        arguments: Mapping[str, Any] | None = None,
        *,
        caller: Caller = ANONYMOUS,
        wait: timedelta | None = None,
        idempotency_key: str | None = None,
    ) -> ToolResult:
        """Run the tool ``name`` with ``arguments`` for ``caller``; never raises.

        Args:
            name: the tool.
            arguments: its arguments (a JSON object; None: none).
            caller: who asks, as the ``authorize`` hooks see it.
            wait: this call's bound on waiting instead of the tools' ``wait`` (the AWS route
                passes what is left of its Lambda invocation).
            idempotency_key: a workflow tool's start reuses the first run started with it.

        Returns:
            The result; ``is_error`` when the call failed (nothing was started or changed).
        """
        budget = self.wait if wait is None else max(timedelta(0), wait)
        try:
            tool = self._tool(name, arguments)
            arguments = arguments or {}
            if tool.workflow is not None:
                return self._start(tool, arguments, caller, budget, idempotency_key)
            return ToolResult(self._run_tool(tool, arguments, caller, budget))
        except LambdaFlowError as exc:
            if isinstance(exc, StoreUnavailable):
                logger.warning("tool call: database unavailable", extra={"tool": name})
            return _failure(exc)
        except Exception as exc:  # a tool call answers; it never crashes its server
            logger.exception(
                "unexpected error in a tool call",
                extra={"tool": name, "error_type": type(exc).__name__},
            )
            return _error("InternalError", "unexpected error; the server's logs have the details")

    # -- checks --------------------------------------------------------------------------------
    def _tool(self, name: str, arguments: Any) -> ToolDef:
        """The tool called ``name``, once its arguments are known to be an object (or None)."""
        tool = self._by_name.get(name)
        if tool is None:
            known = ", ".join(self._by_name) or "none"
            raise _Refused("UnknownTool", f"no tool {name!r}; the tools are: {known}")
        if arguments is not None and not isinstance(arguments, Mapping):
            raise _Refused(
                "InvalidInput",
                f"the arguments of tool {name!r} must be a JSON object",
                [{"loc": [], "msg": "must be a JSON object", "type": "dict_type"}],
            )
        return tool

    def _authorize(
        self,
        caller: Caller,
        action: Action,
        workflow: str,
        *,
        run_id: str | None = None,
        input: Any = None,
    ) -> None:
        request = AccessRequest(
            caller=caller, action=action, workflow=workflow, run_id=run_id, input=input
        )
        if self.flow.admits(request, logger):
            return
        raise _Refused("Forbidden", f"the caller may not {action} runs of workflow {workflow!r}")

    def _visible_run(self, run_id: str, caller: Caller, action: Action) -> Run:
        run = self.service.get_run(run_id)
        if run is None:
            raise RunNotFound(run_id)
        self._authorize(caller, action, run.workflow, run_id=run.id)
        return run

    @staticmethod
    def _args(tool: ToolDef, arguments: Mapping[str, Any]) -> Any:
        assert tool.args is not None  # noqa: S101 - every run tool has its model
        try:
            return tool.args.model_validate(dict(arguments))
        except ValidationError as exc:
            errors = [
                {"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]}
                for e in exc.errors(include_url=False, include_context=False, include_input=False)
            ]
            raise InvalidInput(f"tool {tool.name!r}", errors) from None

    @staticmethod
    def _workflow_input(
        tool: ToolDef, definition: WorkflowDef, arguments: Mapping[str, Any]
    ) -> Any:
        """The workflow's input from the tool's arguments (not yet validated)."""
        target = f"workflow {definition.name!r}"
        if not definition.takes_data or tool.wraps_input:
            allowed = {INPUT_KEY} if tool.wraps_input else set()
            extra = sorted(str(k) for k in arguments if k not in allowed)
            if extra:
                raise InvalidInput(
                    target,
                    [{"loc": [k], "msg": "unexpected argument", "type": "extra_forbidden"}
                     for k in extra],
                )  # fmt: skip
            return arguments.get(INPUT_KEY) if tool.wraps_input else None
        return dict(arguments)

    # -- the tools -----------------------------------------------------------------------------
    def _start(
        self,
        tool: ToolDef,
        arguments: Mapping[str, Any],
        caller: Caller,
        budget: timedelta,
        idempotency_key: str | None,
    ) -> ToolResult:
        assert tool.workflow is not None  # noqa: S101 - a workflow tool
        definition = self.flow.get_workflow(tool.workflow)
        data = self._workflow_input(tool, definition, arguments)
        typed = definition.input.validate(data, f"workflow {definition.name!r}")
        self._authorize(caller, "start", definition.name, input=typed)
        run = self.service.start_and_wait(
            definition.name, data, timeout=budget, idempotency_key=idempotency_key, poll=self.poll
        )
        logger.info(
            "run started by a tool call",
            extra={
                "run_id": run.id,
                "workflow": run.workflow,
                "status": run.status.value,
                "caller_kind": caller.kind,
                "principal": caller.principal,
            },
        )
        answer = self.run_answer(run)
        return ToolResult(answer, is_error=run.status in (RunStatus.FAILED, RunStatus.CANCELLED))

    def _run_tool(
        self, tool: ToolDef, arguments: Mapping[str, Any], caller: Caller, budget: timedelta
    ) -> dict[str, Any]:
        args = self._args(tool, arguments)
        if isinstance(args, GetRunArgs):
            run = self._visible_run(args.run_id, caller, "read")
            wait = min(timedelta(seconds=args.wait_seconds), budget)
            if run.status is RunStatus.RUNNING and wait > timedelta(0):
                run = self.service.wait(run.id, timeout=wait, poll=self.poll)
            return self.run_view(run)
        if isinstance(args, GetRunHistoryArgs):
            run = self._visible_run(args.run_id, caller, "read")
            history = [
                a.model_dump(mode="json", exclude_none=True, exclude={"error": {"traceback"}})
                for a in self.service.get_run_history(run.id)
            ]
            return {"run_id": run.id, "history": history}
        if isinstance(args, ListRunsArgs):
            return self._list_runs(args, caller)
        if isinstance(args, ResumeRunArgs):
            run = self._visible_run(args.run_id, caller, "resume")
            resumed = self.service.resume(run.id, args.payload)
            return self.run_answer(self._settle(resumed, budget))
        if isinstance(args, CancelRunArgs):
            run = self._visible_run(args.run_id, caller, "cancel")
            return self.run_answer(self.service.cancel(run.id, args.reason))
        assert isinstance(args, CompleteCallbackArgs)  # noqa: S101 - the last run tool
        return self._complete_callback(args, caller, budget)

    def _settle(self, run: Run, budget: timedelta) -> Run:
        """The run after up to ``budget`` more for it to end (it was just given work)."""
        if run.status is RunStatus.RUNNING and budget > timedelta(0):
            return self.service.wait(run.id, timeout=budget, poll=self.poll)
        return run

    def _list_runs(self, args: ListRunsArgs, caller: Caller) -> dict[str, Any]:
        page = self.service.list_runs(
            workflow=args.workflow,
            status=args.status,
            limit=args.limit,
            cursor=args.cursor,
            summary=True,
        )
        runs = []
        for run in page:
            request = AccessRequest(
                caller=caller, action="read", workflow=run.workflow, run_id=run.id
            )
            if self.flow.allows(request):  # the runs the caller may not read are left out
                runs.append(self._summary(run))
        more = len(page) == args.limit
        return {
            "runs": runs,
            "next_cursor": self.service.cursor_after(page[-1]) if more and page else None,
        }

    def _complete_callback(
        self, args: CompleteCallbackArgs, caller: Caller, budget: timedelta
    ) -> dict[str, Any]:
        state = self.service.find_callback(args.callback_id)
        run = self.service.get_run(state.run_id)
        if run is not None:
            self._authorize(caller, "callback", run.workflow, run_id=run.id)
        self.service.complete_callback(args.callback_id, args.payload)
        answer: dict[str, Any] = {"callback_id": args.callback_id, "status": "succeeded"}
        if run is not None:
            answer["run"] = self.run_answer(
                self._settle(self.service.get_run(run.id) or run, budget)
            )
        return answer

    # -- answers -------------------------------------------------------------------------------
    def run_answer(self, run: Run) -> dict[str, Any]:
        """What a tool says about a run: its status and output or error, or what it waits for."""
        answer: dict[str, Any] = {
            "run_id": run.id,
            "workflow": run.workflow,
            "status": run.status.value,
        }
        if run.status is RunStatus.COMPLETED:
            answer["output"] = run.output
        elif run.error is not None:
            answer["error"] = run.error.model_dump(
                mode="json", exclude_none=True, exclude={"traceback"}
            )
        if run.status.is_terminal:
            return answer
        answer["waiting_for"] = [_pending(item) for item in run.pending]
        if run.wake_at is not None:
            answer["wake_at"] = run.wake_at.isoformat()
        answer["next"] = self._next_step(run)
        return answer

    def run_view(self, run: Run) -> dict[str, Any]:
        """:meth:`run_answer` with the run's input and times (``get_run``)."""
        answer = self.run_answer(run)
        answer["input"] = run.input
        answer["created_at"] = run.created_at.isoformat()
        answer["updated_at"] = run.updated_at.isoformat()
        if run.parent_id is not None:
            answer["parent_id"] = run.parent_id
        return answer

    @staticmethod
    def _summary(run: Run) -> dict[str, Any]:
        summary: dict[str, Any] = {
            "run_id": run.id,
            "workflow": run.workflow,
            "status": run.status.value,
            "created_at": run.created_at.isoformat(),
            "updated_at": run.updated_at.isoformat(),
        }
        if run.error is not None:
            summary["error"] = {"type": run.error.type, "message": run.error.message[:1000]}
        return summary

    def _next_step(self, run: Run) -> str:
        """A sentence telling the agent how to go on with a run that has not ended."""
        if run.status is RunStatus.SUSPENDED:
            return (
                "The run is suspended (see waiting_for): call resume_run with its run_id (and a "
                "payload, if the workflow expects one) when it may go on."
            )
        if any(item.kind == "callback" for item in run.pending) and "complete_callback" in (
            self._by_name
        ):
            return (
                "The run waits for a callback (see waiting_for): call complete_callback with its "
                "callback_id and a payload, then get_run with the run_id."
            )
        return (
            "The run is still running: call get_run with its run_id and wait_seconds (up to "
            f"{self.wait.total_seconds():g}) to wait for its result."
        )

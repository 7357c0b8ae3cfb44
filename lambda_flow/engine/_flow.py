"""The registry of a lambda-flow application: its RPC functions and its workflows.

And what a step's failure is stored as (:meth:`Flow.step_error`): its type, message and the
traceback of the step's own code, passed through the application's ``redact`` hook.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar, overload

from ..core import (
    AccessRequest,
    Codec,
    Duration,
    ErrorInfo,
    FunctionNotFound,
    InvalidOption,
    LambdaFlowError,
    RawJson,
    WorkflowNotFound,
    codec_for,
    resolve_hints,
)
from ._retry import RetryPolicy
from ._timeout import parse_timeout

if TYPE_CHECKING:
    from ..agents import ToolFormat, ToolResult
    from ..core import Caller
    from ._context import WorkflowContext

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

Redact = Callable[[str], str]
"""A ``redact`` hook: given an error's message or traceback text, the text to store instead."""

logger = logging.getLogger("lambda_flow")


async def call_sync(fn: Callable[..., T], *args: Any) -> T:
    """Call a step's sync code in a worker thread, so the event loop goes on meanwhile.

    Other branches of the pass progress and its lease's heartbeat keeps beating while the
    code blocks. ``asyncio.to_thread`` copies the context, so :func:`current_step` still
    answers in the thread. (A pool of the engine's own was measured on the inline-steps
    benchmark: no cheaper; the thread switch itself is the cost.)
    """
    return await asyncio.to_thread(fn, *args)


_ENGINE_MODULES = ("lambda_flow.", "asyncio.", "concurrent.futures.")
"""Modules whose frames lead into a step's code: left out of the traceback stored for it."""


def step_traceback(exc: BaseException) -> str | None:
    """The formatted traceback of ``exc`` from the first frame of the step's own code.

    None when no such frame exists: the engine itself raised it (an unknown function, input
    that failed validation), and its own frames tell a user nothing.
    """
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_globals.get("__name__", "").startswith(_ENGINE_MODULES):
        tb = tb.tb_next
    if tb is None:
        return None
    return "".join(traceback.format_exception(type(exc), exc, tb))


@dataclass(frozen=True, slots=True)
class FunctionDef:
    """A registered RPC function: what runs when a workflow step names it."""

    name: str
    fn: Callable[..., Any]
    takes_data: bool
    """False for a function with no parameter (it is called with nothing)."""
    input: Codec
    output: Codec
    is_async: bool
    retry: RetryPolicy | None = None
    """The function's default retry policy (a step's own ``retry=`` wins over it)."""

    async def invoke(self, data: Any) -> Any:
        """Validate ``data``, call the function and return its JSON-safe result.

        A sync function runs in a worker thread (:func:`call_sync`).
        """
        return self.output.dump(await self._call(data))

    async def invoke_json(self, data: Any) -> RawJson:
        """:meth:`invoke`, its result serialized once to JSON bytes (for a step worker).

        The function's own result is released as soon as it is serialized.
        """
        return self.output.dump_json(await self._call(data))

    async def _call(self, data: Any) -> Any:
        args = (self.input.validate(data, f"function {self.name!r}"),) if self.takes_data else ()
        result = self.fn(*args) if self.is_async else await call_sync(self.fn, *args)
        if inspect.isawaitable(result):
            result = await result
        return result


@dataclass(frozen=True, slots=True)
class WorkflowDef:
    """A registered workflow."""

    name: str
    fn: Callable[..., Any]
    takes_data: bool
    input: Codec
    output: Codec
    description: str | None = None
    tags: tuple[str, ...] = field(default=())
    authorize: Callable[[AccessRequest], bool] | None = None
    """Decides whether a caller may start, read, resume or cancel runs (None: everyone the
    API's own authorizer let through)."""
    timeout: timedelta | None = None
    """How long a run may take before it fails with ``RunDeadlineExceeded`` (None: forever)."""
    tool: bool = True
    """Offered to AI agents as a tool (``lambda-flow mcp``, ``Flow.tool_specs``); False opts out."""

    def allows(self, request: AccessRequest) -> bool:
        """Ask the workflow's ``authorize`` hook; True when it has none."""
        return True if self.authorize is None else bool(self.authorize(request))

    def validate_input(self, data: Any) -> Any:
        """The JSON-safe stored form of ``data`` after validation.

        Raises:
            InvalidInput: the data does not match the workflow's annotation.
        """
        return self.input.dump(self.input.validate(data, f"workflow {self.name!r}"))


def _parameters(fn: Callable[..., Any]) -> list[inspect.Parameter]:
    return [
        p
        for p in inspect.signature(fn).parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]


class Flow:
    """The registry of functions and workflows one application offers.

    Example:
        flow = Flow()

        @flow.function
        async def create_profile(data: ProfileIn) -> Profile: ...

        @flow.workflow(name="onboarding")
        async def onboard_user(wf: WorkflowContext, data: OnboardIn) -> OnboardOut: ...

    Args:
        redact: strips secrets from what a failed step leaves behind: called with the error's
            message and, separately, with its traceback, it returns the text to store, show in
            the history and log instead (e.g. ``lambda text: TOKEN.sub("***", text)``). The
            run's own error (an exception the workflow body raised) goes through it too.
            None (the default): stored as raised.
        default_retry: the retry policy of every step that names none (nor its function);
            None: one attempt.

    Raises:
        InvalidOption: ``default_retry`` is not a :class:`RetryPolicy`.
    """

    def __init__(
        self, *, redact: Redact | None = None, default_retry: RetryPolicy | None = None
    ) -> None:
        if default_retry is not None and not isinstance(default_retry, RetryPolicy):
            raise InvalidOption("default_retry", "expected a RetryPolicy")
        self.redact = redact
        self.default_retry = default_retry
        """The application's retry policy for steps that name none."""
        """The hook every stored error goes through (see ``redact`` above), or None."""
        self._functions: dict[str, FunctionDef] = {}
        self._functions_by_ref: dict[Callable[..., Any], FunctionDef] = {}
        self._workflows: dict[str, WorkflowDef] = {}

    # -- errors ----------------------------------------------------------------------------
    def step_error(self, exc: BaseException, step_key: str) -> ErrorInfo:
        """What a failed step attempt stores: type, message, traceback, through ``redact``.

        The traceback starts at the step's own code (:func:`step_traceback`); an error only
        engine code raised has none.
        """
        return self.redacted(ErrorInfo.from_exception(exc, step_key, traceback=step_traceback(exc)))

    def redacted(self, error: ErrorInfo) -> ErrorInfo:
        """``error`` with its message and traceback passed through the ``redact`` hook.

        A hook that fails (or returns something other than text) fails closed: the message is
        replaced and the traceback dropped, so nothing unredacted is stored.
        """
        redact = self.redact
        if redact is None:
            return error
        try:
            message = redact(error.message)
            trace = None if error.traceback is None else redact(error.traceback)
            if not isinstance(message, str) or not (trace is None or isinstance(trace, str)):
                raise TypeError("redact must return a str")  # noqa: TRY301 - one fallback
        except Exception as exc:  # noqa: BLE001 - a user's hook: never store what it missed
            logger.warning(
                "redact hook failed: the error is stored without message and traceback",
                extra={"error_type": error.type, "hook_error": type(exc).__name__},
            )
            message, trace = f"(not shown: redact failed with {type(exc).__name__})", None
        return error.model_copy(update={"message": message, "traceback": trace})

    # -- functions -------------------------------------------------------------------------
    @overload
    def function(self, fn: F, /) -> F: ...
    @overload
    def function(
        self, *, name: str | None = None, retry: RetryPolicy | None = None
    ) -> Callable[[F], F]: ...

    def function(
        self, fn: Any = None, *, name: str | None = None, retry: RetryPolicy | None = None
    ) -> Any:
        """Register an RPC function (sync or async, zero or one parameter).

        The function is returned unchanged, so it can still be called directly and passed to
        ``wf.do`` by reference. ``retry`` is the retry policy of the steps calling it (a step's
        own ``retry=`` or ``retries=`` wins).

        Raises:
            InvalidOption: ``retry`` is not a :class:`RetryPolicy`.
        """
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise InvalidOption("retry", "expected a RetryPolicy")

        def register(f: F) -> F:
            fname = name or f.__name__
            if fname in self._functions:
                raise LambdaFlowError(f"function {fname!r} is already registered")
            params = _parameters(f)
            if len(params) > 1:
                raise LambdaFlowError(
                    f"function {fname!r} must take at most one parameter (its data), "
                    f"it takes {len(params)}"
                )
            hints = resolve_hints(f)
            definition = FunctionDef(
                name=fname,
                fn=f,
                takes_data=bool(params),
                input=codec_for(hints, params[0].name) if params else codec_for({}, ""),
                output=codec_for(hints, "return"),
                is_async=inspect.iscoroutinefunction(f),
                retry=retry,
            )
            self._functions[fname] = definition
            self._functions_by_ref[f] = definition
            return f

        return register(fn) if fn is not None else register

    def get_function(self, name_or_fn: str | Callable[..., Any]) -> FunctionDef:
        """The registered function by name or by reference.

        Raises:
            FunctionNotFound: nothing is registered under that name or reference.
        """
        if isinstance(name_or_fn, str):
            found = self._functions.get(name_or_fn)
        else:
            found = self._functions_by_ref.get(name_or_fn)
        if found is None:
            raise FunctionNotFound(name_or_fn if isinstance(name_or_fn, str) else repr(name_or_fn))
        return found

    def find_function(self, target: Callable[..., Any]) -> FunctionDef | None:
        """The registered function for this callable, or None for any other callable."""
        try:
            return self._functions_by_ref.get(target)
        except TypeError:  # unhashable callable object
            return None

    @property
    def functions(self) -> Mapping[str, FunctionDef]:
        """Registered functions by name."""
        return self._functions

    # -- workflows -------------------------------------------------------------------------
    @overload
    def workflow(self, fn: F, /) -> F: ...
    @overload
    def workflow(
        self,
        *,
        name: str | None = None,
        description: str | None = None,
        tags: tuple[str, ...] | list[str] = (),
        authorize: Callable[[AccessRequest], bool] | None = None,
        timeout: Duration | None = None,
        tool: bool = True,
    ) -> Callable[[F], F]: ...

    def workflow(
        self,
        fn: Any = None,
        *,
        name: str | None = None,
        description: str | None = None,
        tags: tuple[str, ...] | list[str] = (),
        authorize: Callable[[AccessRequest], bool] | None = None,
        timeout: Duration | None = None,
        tool: bool = True,
    ) -> Any:
        """Register a workflow: ``async def body(wf: WorkflowContext, data) -> result``.

        ``authorize`` sees an :class:`AccessRequest` (caller, action, input or run id) for every
        API call (and agent tool call) on this workflow and returns False to refuse it.
        ``timeout`` is how long a run may take (``"7d"``): past it the run fails with
        ``RunDeadlineExceeded`` (``start(run_timeout=...)`` overrides it per run). ``tool=False``
        keeps the workflow out of the tools offered to AI agents (``lambda-flow mcp``,
        :meth:`tool_specs`); the description (else the docstring) is the tool's description.

        Raises:
            InvalidOption: ``timeout`` is not a positive duration.
        """
        run_timeout = parse_timeout(timeout)

        def register(f: F) -> F:
            wname = name or f.__name__
            if wname in self._workflows:
                raise LambdaFlowError(f"workflow {wname!r} is already registered")
            if not inspect.iscoroutinefunction(f):
                raise LambdaFlowError(f"workflow {wname!r} must be an async def function")
            params = _parameters(f)
            if not 1 <= len(params) <= 2:
                raise LambdaFlowError(
                    f"workflow {wname!r} must take (wf) or (wf, data), it takes {len(params)}"
                )
            hints = resolve_hints(f)
            self._workflows[wname] = WorkflowDef(
                name=wname,
                fn=f,
                takes_data=len(params) == 2,
                input=codec_for(hints, params[1].name) if len(params) == 2 else codec_for({}, ""),
                output=codec_for(hints, "return"),
                description=description or inspect.getdoc(f),
                tags=tuple(tags),
                authorize=authorize,
                timeout=run_timeout,
                tool=bool(tool),
            )
            return f

        return register(fn) if fn is not None else register

    def get_workflow(self, name: str) -> WorkflowDef:
        """The registered workflow called ``name``.

        Raises:
            WorkflowNotFound: nothing is registered under that name.
        """
        found = self._workflows.get(name)
        if found is None:
            raise WorkflowNotFound(name)
        return found

    @property
    def workflows(self) -> Mapping[str, WorkflowDef]:
        """Registered workflows by name."""
        return self._workflows

    def __iter__(self) -> Iterator[WorkflowDef]:
        return iter(self._workflows.values())

    def allows(self, request: AccessRequest) -> bool:
        """Whether the workflow's ``authorize`` hook lets ``request`` through.

        A workflow this app does not register (an old run's) has no hook to ask: it is refused
        when any registered workflow has a hook (fail closed), allowed otherwise.
        """
        definition = self._workflows.get(request.workflow)
        if definition is None:
            return not any(d.authorize is not None for d in self)
        return definition.allows(request)

    def admits(self, request: AccessRequest, log: Any) -> bool:
        """:meth:`allows`, with a refusal logged on ``log`` (who asked what, never the input).

        The one check behind the HTTP API, the console and the agent tools: each answers a
        refusal its own way (403, a page, a tool error).
        """
        if self.allows(request):
            return True
        log.warning(
            "access refused",
            extra={
                "action": request.action,
                "workflow": request.workflow,
                "run_id": request.run_id,
                "caller_kind": request.caller.kind,
                "principal": request.caller.principal,
            },
        )
        return False

    # -- tools for AI agents ---------------------------------------------------------------
    # The tool semantics live in lambda_flow.agents (above the engine): these two methods import
    # it when called, as an optional feature (docs/agents.md, "Where the code lives").
    def tool_specs(
        self, format: ToolFormat = "mcp", *, run_tools: bool = True, wait: Duration = "20s"
    ) -> list[dict[str, Any]]:
        """Tool definitions of this app's workflows, for agent frameworks that take plain specs.

        One tool per workflow (named after it; ``tool=False`` leaves it out) that starts a run
        and waits a bounded time for its result, plus the run tools (``get_run``,
        ``get_run_history``, ``list_runs``, ``resume_run``, ``cancel_run`` and, when a workflow
        uses callbacks, ``complete_callback``) unless ``run_tools`` is False.

        Args:
            format: ``"openai"`` (Chat Completions: ``{"type": "function", "function": {"name",
                "description", "parameters"}}``), ``"anthropic"`` (``{"name", "description",
                "input_schema"}``) or ``"mcp"`` (``{"name", "description", "inputSchema"}``).
            run_tools: include the run tools.
            wait: how long the workflow tools wait (said in their descriptions; pass the same
                ``wait`` to :meth:`call_tool`).

        Returns:
            The definitions, workflow tools first (by name), then the run tools.

        Raises:
            InvalidOption: an unknown ``format``.
            ConfigurationError: two tools would have the same name (rename a workflow or give it
                ``tool=False``).
        """
        from ..agents import tool_specs

        return tool_specs(self, format, run_tools=run_tools, wait=wait)

    def call_tool(
        self,
        name: str,
        arguments: Mapping[str, Any] | None = None,
        *,
        service: Any = None,
        caller: Caller | None = None,
        wait: Duration = "20s",
        idempotency_key: str | None = None,
    ) -> ToolResult:
        """Run one tool of :meth:`tool_specs` the way the MCP server does; its result.

        A workflow tool validates ``arguments`` as the workflow's input, asks the workflow's
        ``authorize`` hook (``start``, with ``caller``), starts a run and waits up to ``wait``:
        the output comes back, or the run id with its status (``running``/``suspended``) and
        what it waits for. Every problem (unknown tool, bad arguments naming the field, a
        refusal, an unknown run) is a result with ``is_error`` True; nothing is started then.

        Args:
            name: the tool's name.
            arguments: its arguments (a JSON object).
            service: the :class:`~lambda_flow.WorkflowService` of this app to run on (inline or
                remote mode); by default one made on first use over ``LAMBDA_FLOW_DATABASE_URL``
                (else the embedded Postgres), inline, kept for later calls.
            caller: who asks, as the ``authorize`` hooks see it (default: anonymous).
            wait: how long a workflow tool waits for the run to end (``get_run``'s
                ``wait_seconds`` is capped at it too).
            idempotency_key: a workflow tool called again with the same key and input returns the
                first run instead of starting another.

        Returns:
            The result: ``data`` (JSON), ``is_error`` and ``text`` (``data`` as JSON text).

        Raises:
            ConfigurationError: ``service`` runs another Flow.
        """
        from ..agents import call_tool

        return call_tool(
            self,
            name,
            arguments,
            service=service,
            caller=caller,
            wait=wait,
            idempotency_key=idempotency_key,
        )

    def run_body(self, definition: WorkflowDef, wf: WorkflowContext, stored_input: Any) -> Any:
        """The coroutine of one execution of a workflow body."""
        if definition.takes_data:
            return definition.fn(wf, definition.input.load(stored_input))
        return definition.fn(wf)

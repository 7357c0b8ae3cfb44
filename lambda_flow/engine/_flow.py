"""The registry of a lambda-flow application: its RPC functions and its workflows."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar, overload

from ..core import (
    AccessRequest,
    Codec,
    FunctionNotFound,
    LambdaFlowError,
    WorkflowNotFound,
    codec_for,
    resolve_hints,
)

if TYPE_CHECKING:
    from ._context import WorkflowContext

F = TypeVar("F", bound=Callable[..., Any])


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

    async def invoke(self, data: Any) -> Any:
        """Validate ``data``, call the function and return its JSON-safe result."""
        args = (self.input.validate(data, f"function {self.name!r}"),) if self.takes_data else ()
        result = self.fn(*args)
        if inspect.isawaitable(result):
            result = await result
        return self.output.dump(result)


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
    """

    def __init__(self) -> None:
        self._functions: dict[str, FunctionDef] = {}
        self._functions_by_ref: dict[Callable[..., Any], FunctionDef] = {}
        self._workflows: dict[str, WorkflowDef] = {}

    # -- functions -------------------------------------------------------------------------
    @overload
    def function(self, fn: F, /) -> F: ...
    @overload
    def function(self, *, name: str | None = None) -> Callable[[F], F]: ...

    def function(self, fn: Any = None, *, name: str | None = None) -> Any:
        """Register an RPC function (sync or async, zero or one parameter).

        The function is returned unchanged, so it can still be called directly and passed to
        ``wf.do`` by reference.
        """

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
    ) -> Callable[[F], F]: ...

    def workflow(
        self,
        fn: Any = None,
        *,
        name: str | None = None,
        description: str | None = None,
        tags: tuple[str, ...] | list[str] = (),
        authorize: Callable[[AccessRequest], bool] | None = None,
    ) -> Any:
        """Register a workflow: ``async def body(wf: WorkflowContext, data) -> result``.

        ``authorize`` sees an :class:`AccessRequest` (caller, action, input or run id) for every
        API call on this workflow and returns False to refuse it.
        """

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

    def run_body(self, definition: WorkflowDef, wf: WorkflowContext, stored_input: Any) -> Any:
        """The coroutine of one execution of a workflow body."""
        if definition.takes_data:
            return definition.fn(wf, definition.input.load(stored_input))
        return definition.fn(wf)

"""What a workflow body sees: ``wf.do``, ``wf.sleep``, ``wf.suspend``, ``wf.cancel``.

And what a step's code sees: :func:`current_step`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, overload

from ..core import Duration

if TYPE_CHECKING:
    from ._replay import OrchestrationPass

T = TypeVar("T")
D = TypeVar("D")


@dataclass(frozen=True, slots=True)
class StepInfo:
    """The step a piece of code is running as."""

    run_id: str
    step_id: str
    """The step's key: its name, plus ``#n`` for the n-th repeat of that name in the run."""
    attempt: int
    """1 on the first attempt, 2 on the first retry, ..."""
    step_name: str
    workflow: str

    @property
    def idempotency_key(self) -> str:
        """Stable across attempts and replays of this step: pass it to external APIs."""
        return f"{self.run_id}:{self.step_id}"


_current_step: ContextVar[StepInfo | None] = ContextVar("lambda_flow_current_step", default=None)


def current_step() -> StepInfo | None:
    """The step the calling code runs as, or None outside any step."""
    return _current_step.get()


@contextmanager
def running_step(info: StepInfo) -> Iterator[StepInfo]:
    """Enter a step's context for the code that runs inside it."""
    token = _current_step.set(info)
    try:
        yield info
    finally:
        _current_step.reset(token)


class WorkflowContext:
    """The handle a workflow body receives as its first argument.

    Everything a workflow does that has an effect goes through it, so it can be recorded once
    and replayed from the record afterwards.
    """

    __slots__ = ("_pass",)

    def __init__(self, orchestration: OrchestrationPass) -> None:
        self._pass = orchestration

    @property
    def run_id(self) -> str:
        """The id of the run being executed."""
        return self._pass.run_id

    @property
    def workflow_name(self) -> str:
        """The registered name of the running workflow."""
        return self._pass.definition.name

    # Typed for callers: a function reference gives the step its return type and its input
    # type (an async function's result is awaited); a name gives Any (tests/typing pins it).
    @overload
    async def do(
        self,
        name: str,
        target: Callable[[], Awaitable[T]],
        data: None = None,
        *,
        retries: int = 0,
        retry_delay: Duration = 0,
    ) -> T: ...
    @overload
    async def do(
        self,
        name: str,
        target: Callable[[], T],
        data: None = None,
        *,
        retries: int = 0,
        retry_delay: Duration = 0,
    ) -> T: ...
    @overload
    async def do(
        self,
        name: str,
        target: Callable[[D], Awaitable[T]],
        data: D,
        *,
        retries: int = 0,
        retry_delay: Duration = 0,
    ) -> T: ...
    @overload
    async def do(
        self,
        name: str,
        target: Callable[[D], T],
        data: D,
        *,
        retries: int = 0,
        retry_delay: Duration = 0,
    ) -> T: ...
    @overload
    async def do(
        self,
        name: str,
        target: str,
        data: Any = None,
        *,
        retries: int = 0,
        retry_delay: Duration = 0,
    ) -> Any: ...
    async def do(
        self,
        name: str,
        target: str | Callable[..., Any],
        data: Any = None,
        *,
        retries: int = 0,
        retry_delay: Duration = 0,
    ) -> Any:
        """Run a step once and return its (stored) result.

        Args:
            name: the step's name; repeats get ``#1``, ``#2``... appended to form its key.
            target: a registered function, by name or by reference (an RPC step, given
                ``data``), or any other zero-argument callable, sync or async (an inline step).
            data: the RPC function's input, validated by its annotation.
            retries: attempts after the first one (total attempts = retries + 1).
            retry_delay: wait between attempts: a ``timedelta``, ``'1s'``, ``'5min'``, or
                milliseconds.

        Raises:
            StepFailed: the step failed on its last attempt.
        """
        return await self._pass.do(name, target, data, retries=retries, retry_delay=retry_delay)

    async def sleep(self, name: str, duration: Duration) -> None:
        """Wait durably: the run is parked and woken after ``duration`` (minutes or weeks)."""
        await self._pass.sleep(name, duration)

    async def suspend(self, reason: str) -> None:
        """Park the run as ``suspended`` until someone calls ``resume(run_id)``.

        ``reason`` names the step, so each distinct suspension point is resumed once.
        """
        await self._pass.suspend(reason)

    async def cancel(self, reason: str | None = None) -> None:
        """End the run now with status ``cancelled``; nothing after this call runs."""
        await self._pass.cancel(reason)

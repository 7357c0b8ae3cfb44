"""What a workflow body sees: ``wf.do``, ``wf.sleep``, ``wf.suspend``, ``wf.cancel``.

And what a step's code sees: :func:`current_step`.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, overload

from ..core import Duration, InvalidOption
from ._callback import Callback, ConditionPoll

if TYPE_CHECKING:
    from ._replay import OrchestrationPass
    from ._retry import RetryPolicy

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
        retries: int | None = None,
        retry_delay: Duration | None = None,
        retry: RetryPolicy | None = None,
        timeout: Duration | None = None,  # noqa: ASYNC109 - each attempt's, not this call's
        at_most_once: bool = False,
    ) -> T: ...
    @overload
    async def do(
        self,
        name: str,
        target: Callable[[], T],
        data: None = None,
        *,
        retries: int | None = None,
        retry_delay: Duration | None = None,
        retry: RetryPolicy | None = None,
        timeout: Duration | None = None,  # noqa: ASYNC109 - each attempt's, not this call's
        at_most_once: bool = False,
    ) -> T: ...
    @overload
    async def do(
        self,
        name: str,
        target: Callable[[D], Awaitable[T]],
        data: D,
        *,
        retries: int | None = None,
        retry_delay: Duration | None = None,
        retry: RetryPolicy | None = None,
        timeout: Duration | None = None,  # noqa: ASYNC109 - each attempt's, not this call's
        at_most_once: bool = False,
    ) -> T: ...
    @overload
    async def do(
        self,
        name: str,
        target: Callable[[D], T],
        data: D,
        *,
        retries: int | None = None,
        retry_delay: Duration | None = None,
        retry: RetryPolicy | None = None,
        timeout: Duration | None = None,  # noqa: ASYNC109 - each attempt's, not this call's
        at_most_once: bool = False,
    ) -> T: ...
    @overload
    async def do(
        self,
        name: str,
        target: str,
        data: Any = None,
        *,
        retries: int | None = None,
        retry_delay: Duration | None = None,
        retry: RetryPolicy | None = None,
        timeout: Duration | None = None,  # noqa: ASYNC109 - each attempt's, not this call's
        at_most_once: bool = False,
    ) -> Any: ...
    async def do(
        self,
        name: str,
        target: str | Callable[..., Any],
        data: Any = None,
        *,
        retries: int | None = None,
        retry_delay: Duration | None = None,
        retry: RetryPolicy | None = None,
        timeout: Duration | None = None,  # noqa: ASYNC109 - each attempt's, not this call's
        at_most_once: bool = False,
    ) -> Any:
        """Run a step once and return its (stored) result.

        Args:
            name: the step's name; repeats get ``#1``, ``#2``... appended to form its key.
            target: a registered function, by name or by reference (an RPC step, given
                ``data``), or any other zero-argument callable, sync or async (an inline step).
            data: the RPC function's input, validated by its annotation.
            retries: attempts after the first one (total attempts = retries + 1), with a fixed
                wait (``RetryPolicy.fixed``); not together with ``retry``.
            retry_delay: wait between attempts: a ``timedelta``, ``'1s'``, ``'5min'``, or
                milliseconds.
            retry: the step's :class:`RetryPolicy`. Without it (and without ``retries``), the
                registered function's ``retry``, then the application's ``default_retry``, then
                one attempt.
            timeout: how long one attempt may run; past it the attempt fails with
                :class:`StepTimedOut` and the retry policy decides. Async code is cancelled;
                sync code (run in a worker thread) is abandoned and may finish in the background.
            at_most_once: commit each attempt's start before running it, so an attempt
                interrupted by a crash is never run again (it fails with
                :class:`StepInterrupted`). One more commit per attempt.

        Raises:
            StepFailed: the step failed on its last attempt (:class:`StepTimedOut`,
                :class:`StepInterrupted` when that is how it failed).
            InvalidOption: ``retry`` given with ``retries`` or ``retry_delay``, a negative
                timeout (nothing is recorded).
            WorkflowCancelled: the run was cancelled while the body waited here.
        """
        return await self._pass.do(
            name,
            target,
            data,
            retries=retries,
            retry_delay=retry_delay,
            retry=retry,
            timeout=timeout,
            at_most_once=at_most_once,
        )

    async def sleep(self, name: str, duration: Duration) -> None:
        """Wait durably: the run is parked and woken after ``duration`` (minutes or weeks)."""
        await self._pass.sleep(name, duration)

    async def suspend(self, reason: str) -> Any:
        """Park the run as ``suspended`` until someone calls ``resume(run_id, payload)``.

        ``reason`` names the step, so each distinct suspension point is resumed once.

        Returns:
            The ``payload`` given to ``resume`` (an approval's decision, say); None without one.
        """
        return await self._pass.suspend(reason)

    async def cancel(self, reason: str | None = None) -> None:
        """End the run now with status ``cancelled``; nothing after this call runs."""
        await self._pass.cancel(reason)

    # Typed for callers: ``type=`` gives the payload its type (tests/typing pins it).
    @overload
    async def callback(
        self,
        name: str,
        *,
        timeout: Duration | None = None,  # noqa: ASYNC109 - the run's deadline, not this call's
        heartbeat_timeout: Duration | None = None,
        type: type[T],
    ) -> Callback[T]: ...
    @overload
    async def callback(
        self,
        name: str,
        *,
        timeout: Duration | None = None,  # noqa: ASYNC109 - the run's deadline, not this call's
        heartbeat_timeout: Duration | None = None,
        type: None = None,
    ) -> Callback[Any]: ...
    async def callback(
        self,
        name: str,
        *,
        timeout: Duration | None = None,  # noqa: ASYNC109 - the run's deadline, not this call's
        heartbeat_timeout: Duration | None = None,
        type: Any = None,
    ) -> Callback[Any]:
        """Create a callback and return its handle at once; ``await cb.result()`` waits for it.

        Hand ``cb.id`` to whoever completes it (``complete_callback``, ``fail_callback``, the
        HTTP routes or the CLI). The run goes on until ``result()`` is awaited, and parks there
        (``running``, no compute) until the callback is completed; a completion that comes
        earlier is kept.

        Args:
            name: the step's name; repeats get ``#1``, ``#2``... appended to form its key.
            timeout: how long the callback may take in all (None: no limit).
            heartbeat_timeout: how long it may go without a heartbeat
                (``heartbeat_callback``); each heartbeat moves the deadline.
            type: validate the payload into this type (a pydantic model, a dataclass...);
                plain JSON without one.

        Raises:
            InvalidOption: a timeout that is not a positive duration (nothing is recorded).
        """
        return await self._pass.callback(
            name, timeout=timeout, heartbeat_timeout=heartbeat_timeout, type=type
        )

    async def wait_for_callback(
        self,
        name: str,
        submitter: str | Callable[..., Any],
        data: Any = None,
        *,
        timeout: Duration | None = None,  # noqa: ASYNC109 - the run's deadline, not this call's
        heartbeat_timeout: Duration | None = None,
        type: Any = None,
        retries: int = 0,
        retry_delay: Duration = 0,
        retry: Any = None,
    ) -> Any:
        """Create a callback, hand its id to ``submitter`` in a step, and wait for the payload.

        The submitter step (key ``<name>.submit``) runs like any ``wf.do`` step with the given
        retry options: a registered function (by name or reference) receives
        ``{"callback_id": ..., "data": data}``; any other callable receives the callback id.

        Args:
            name: the callback step's name.
            submitter: what sends the callback id to the outside party.
            data: passed on to a registered submitter.
            timeout: as :meth:`callback`.
            heartbeat_timeout: as :meth:`callback`.
            type: as :meth:`callback`.
            retries: as :meth:`do`, for the submitter step.
            retry_delay: as :meth:`do`, for the submitter step.
            retry: a ``RetryPolicy`` for the submitter step (not with ``retries``).

        Raises:
            CallbackFailed: the callback was failed from outside (or its payload failed
                ``type``).
            CallbackTimedOut: its timeout or heartbeat timeout passed first.
            StepFailed: the submitter step failed on its last attempt.
        """
        cb = await self.callback(
            name, timeout=timeout, heartbeat_timeout=heartbeat_timeout, type=type
        )
        options: dict[str, Any] = {"retries": retries, "retry_delay": retry_delay}
        if retry is not None:
            options["retry"] = retry
        step = f"{name}.submit"
        if isinstance(submitter, str) or self._pass.engine.flow.find_function(submitter):
            do: Any = self.do  # the public wf.do, whatever options it takes
            await do(step, submitter, {"callback_id": cb.id, "data": data}, **options)
        else:
            if data is not None:
                raise InvalidOption(
                    "data",
                    "an inline submitter takes only the callback id; register it to pass data",
                )
            await self.do(step, functools.partial(submitter, cb.id), **options)
        return await cb.result()

    async def wait_for_condition(
        self,
        name: str,
        check: str | Callable[..., Any],
        *,
        initial_state: Any = None,
        until: Callable[[Any], Any] | None = None,
        interval: Duration = "5s",
        backoff: float = 1.0,
        max_interval: Duration | None = None,
        max_attempts: int | None = None,
    ) -> Any:
        """Poll until a condition holds: check, sleep durably, check again; return the state.

        ``check`` takes the state (``initial_state`` first) and returns the new one; each check
        is one recorded attempt of one step, its state stored as the step's result. Between
        checks the run sleeps as a timer (no compute) for ``interval``, multiplied by
        ``backoff`` after each check and capped at ``max_interval``.

        Args:
            name: the step's name.
            check: a registered function (by name or reference) or a callable, sync or async.
            initial_state: the state the first check gets (JSON-safe).
            until: stop when ``until(state)`` is true; by default when the state is truthy.
            interval: the first wait between checks.
            backoff: the factor (>= 1) applied to the wait after each check.
            max_interval: the longest wait.
            max_attempts: the most checks (None: no limit).

        Raises:
            ConditionNotMet: ``max_attempts`` checks and the condition never held.
            StepFailed: a check raised.
            InvalidOption: a bad option, named (nothing is recorded).
        """
        poll = ConditionPoll.build(
            self._pass.engine.flow, check, until=until, interval=interval, backoff=backoff,
            max_interval=max_interval, max_attempts=max_attempts,
        )  # fmt: skip
        return await self._pass.wait_for_condition(name, poll, initial_state)

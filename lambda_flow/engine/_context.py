"""What a workflow body sees: ``wf.do``, ``wf.sleep``, ``wf.suspend``, ``wf.cancel``.

And what a step's code sees: :func:`current_step`.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, overload

from ..core import Duration, InvalidOption
from ._batch import BatchResult, Completion, map_calls, parallel_calls, run_batch
from ._callback import Callback, ConditionPoll
from ._child import ChildRun

if TYPE_CHECKING:
    from ..store.base import StepRecord
    from ._replay import OrchestrationPass, StepOptions
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


scope_prefix: ContextVar[str] = ContextVar("lambda_flow_scope_prefix", default="")
"""The key prefix of the scope the calling code runs in (``""`` outside any scope).

Set by the pass around a scope's function, so every step taken inside it (and in the tasks it
starts, which copy the context) is keyed ``<scope key>/<name>``.
"""

_current_step: ContextVar[StepInfo | None] = ContextVar("lambda_flow_current_step", default=None)


def current_step() -> StepInfo | None:
    """The step the calling code runs as, or None outside any step."""
    return _current_step.get()


def outside_any_step() -> None:
    """Leave every scope and step in the calling task (a workflow body's start)."""
    scope_prefix.set("")
    _current_step.set(None)


@contextmanager
def running_step(info: StepInfo) -> Iterator[StepInfo]:
    """Enter a step's context for the code that runs inside it."""
    token = _current_step.set(info)
    try:
        yield info
    finally:
        _current_step.reset(token)


class LiveCall:
    """A ``wf.do`` call that is not a recorded success: the pass runs or waits for it.

    What :meth:`OrchestrationPass.replay_do` hands to ``live_do``: the step's key (taken), its
    record (claimed; None for a new step) and its options (checked).
    """

    __slots__ = ("key", "options", "record")

    def __init__(self, key: str, record: StepRecord | None, options: StepOptions) -> None:
        self.key = key
        self.record = record
        self.options = options


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
        orchestration = self._pass
        # A recorded success returns from the synchronous half, with no awaitable of its own
        # (a replay of 10,000 steps makes 10,000 of these calls).
        found = orchestration.replay_do(
            name, target, data, retries, retry_delay, retry, timeout, at_most_once
        )
        if type(found) is not LiveCall:
            return found
        return await orchestration.live_do(name, target, data, found)

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

    def patched(self, patch_id: str) -> bool:
        """Whether this run takes the new code path of patch ``patch_id`` (a plain call).

        Change a workflow whose runs are in flight: ``if wf.patched("free-shipping"): new
        else: old``. A run reaching this point on the new code records a marker and gets True
        (on every replay too); a run recorded before the patch existed gets False where it
        replays past this point, so it keeps doing what it did. Check a change with
        ``lambda-flow replay`` before deploying it.

        Args:
            patch_id: names the change; the marker's step is ``patch:<patch_id>``.

        Returns:
            True on the patched path, False when replaying a run recorded without the patch.
        """
        return self._pass.patched(patch_id)

    def deprecate_patch(self, patch_id: str) -> None:
        """Mark patch ``patch_id`` as the only path left (a plain call; it records nothing).

        Once no run from before the patch can still replay, drop the old branch and replace
        ``if wf.patched(id):`` with ``wf.deprecate_patch(id)``: runs that recorded the marker
        and runs that did not both replay. Remove the call once those runs have ended too.

        Args:
            patch_id: the id given to :meth:`patched`.
        """
        self._pass.deprecate_patch(patch_id)

    async def scope(self, name: str, func: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        """Run ``async def func(wf, *args)`` in a step namespace of its own; return its result.

        Steps inside are keyed ``<name>/<step>`` (nested scopes ``a/b/step``), so the same
        helper can run twice without its keys clashing. The result (JSON-safe, as stored) is
        recorded as one step; a replay of a finished scope returns it without running ``func``.

        Args:
            name: the scope's step name; repeats get ``#1``, ``#2``... appended.
            func: the scope's code; it gets a :class:`WorkflowContext` for the scope.
            *args: passed on to ``func``.

        Returns:
            ``func``'s result as stored (JSON: a model comes back as a dict).

        Raises:
            Exception: whatever ``func`` raised, unchanged (nothing is recorded for the scope).
        """

        async def body(_key: str) -> Any:
            return await func(self._pass.context(), *args)

        return await self._pass.scope(name, body, None)

    async def map(
        self,
        name: str,
        items: Sequence[Any],
        func: str | Callable[..., Any],
        *,
        max_concurrency: int | None = None,
        completion: Completion | None = None,
        item_name: Callable[[Any, int], str] | None = None,
    ) -> BatchResult[Any]:
        """Run ``func`` for each item, at most ``max_concurrency`` at a time; return the batch.

        ``func`` is a registered function (by name or reference: each item one RPC step, the
        item its input) or ``async def func(wf, item, index)`` (each item a scope). Items are
        keyed ``<name>/<item name>`` and start in index order. The batch's outcome is recorded
        as one step, so replays see the same outcome.

        Args:
            name: the batch's step name.
            items: the items (an empty list gives an empty batch).
            func: what to run for each item.
            max_concurrency: the most items in flight at once (None: no limit).
            completion: when to stop starting items; by default all run, failures tolerated.
            item_name: ``item_name(item, index) -> str`` names an item (default: its index).

        Returns:
            The :class:`BatchResult`; a failed item is in its ``errors``, not raised.

        Raises:
            InvalidOption: ``max_concurrency`` below 1, two items with the same name.
        """
        items = list(items)
        if item_name is None:
            names = [str(i) for i in range(len(items))]
        else:
            names = [item_name(item, i) for i, item in enumerate(items)]
        flow = self._pass.engine.flow
        function = flow.functions.get(func) if isinstance(func, str) else flow.find_function(func)
        return await run_batch(
            self._pass, name, map_calls(self._pass, items, func, names), names, kind="map",
            max_concurrency=max_concurrency, completion=completion,
            chained=None if function is None else (function, items),
        )  # fmt: skip

    async def parallel(
        self,
        name: str,
        branches: Sequence[Callable[..., Awaitable[Any]]]
        | Mapping[str, Callable[..., Awaitable[Any]]],
        *,
        max_concurrency: int | None = None,
        completion: Completion | None = None,
    ) -> BatchResult[Any]:
        """Run ``async def branch(wf)`` branches as scopes, like :meth:`map`.

        Args:
            name: the batch's step name.
            branches: a list (branches named by index) or a dict name -> branch (dict order).
            max_concurrency: the most branches in flight at once (None: no limit).
            completion: when to stop starting branches.

        Returns:
            The :class:`BatchResult`, one entry per branch.

        Raises:
            InvalidOption: ``max_concurrency`` below 1.
        """
        calls, names = parallel_calls(self._pass, branches)
        return await run_batch(
            self._pass, name, calls, names, kind="parallel",
            max_concurrency=max_concurrency, completion=completion,
        )  # fmt: skip

    # Typed for callers: a workflow reference gives the child's output type; a name gives Any.
    @overload
    async def child(
        self,
        name: str,
        workflow: Callable[..., Awaitable[T]],
        input: Any = None,
        *,
        timeout: Duration | None = None,  # noqa: ASYNC109 - how long the parent waits
    ) -> T: ...
    @overload
    async def child(
        self,
        name: str,
        workflow: str,
        input: Any = None,
        *,
        timeout: Duration | None = None,  # noqa: ASYNC109 - how long the parent waits
    ) -> Any: ...
    async def child(
        self,
        name: str,
        workflow: str | Callable[..., Awaitable[Any]],
        input: Any = None,
        *,
        timeout: Duration | None = None,  # noqa: ASYNC109 - how long the parent waits
    ) -> Any:
        """Run another registered workflow as a child of this run and return its output.

        ``await wf.child(...)`` is ``await (await wf.start_child(...)).result()``.

        Args:
            name: the step's name; repeats get ``#1``, ``#2``... appended.
            workflow: the child's workflow, by name or by reference.
            input: the child's input, validated by its annotation (nothing is recorded when it
                fails).
            timeout: how long this run waits for the child; past it the child is cancelled and
                :class:`ChildFailed` is raised with ``error_type`` ``"RunDeadlineExceeded"``.

        Raises:
            ChildFailed: the child failed, was cancelled or timed out.
            InvalidInput: ``input`` fails the child workflow's annotation.
            WorkflowNotFound: no workflow has that name.
        """
        handle = await self.start_child(name, workflow, input, timeout=timeout)
        return await handle.result()

    @overload
    async def start_child(
        self,
        name: str,
        workflow: Callable[..., Awaitable[T]],
        input: Any = None,
        *,
        timeout: Duration | None = None,  # noqa: ASYNC109 - how long the parent waits
    ) -> ChildRun[T]: ...
    @overload
    async def start_child(
        self,
        name: str,
        workflow: str,
        input: Any = None,
        *,
        timeout: Duration | None = None,  # noqa: ASYNC109 - how long the parent waits
    ) -> ChildRun[Any]: ...
    async def start_child(
        self,
        name: str,
        workflow: str | Callable[..., Awaitable[Any]],
        input: Any = None,
        *,
        timeout: Duration | None = None,  # noqa: ASYNC109 - how long the parent waits
    ) -> ChildRun[Any]:
        """Start another registered workflow as a child of this run; return its handle.

        The child is a run of its own (its own history, in ``list_runs``, ``GET /runs/{id}``)
        whose ``parent_id`` is this run; its id is the same on every replay, and starting it
        again is a no-op. Inline mode runs the child here until it ends or waits on something
        from outside; remote mode queues it. ``await handle.result()`` waits for its output:
        the child's end wakes this run (one message in remote mode). Cancelling this run
        cancels its unfinished children; so does this run ending first.

        Args:
            name: as :meth:`child`.
            workflow: as :meth:`child`.
            input: as :meth:`child`.
            timeout: as :meth:`child` (counted from the start).

        Raises:
            InvalidInput: ``input`` fails the child workflow's annotation.
            WorkflowNotFound: no workflow has that name.
            InvalidOption: ``timeout`` is not a positive duration.
        """
        return await self._pass.start_child(name, workflow, input, timeout=timeout)

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

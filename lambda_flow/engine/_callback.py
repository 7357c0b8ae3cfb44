"""What ``wf.callback`` hands back, and the options of ``wf.wait_for_condition``.

A :class:`Callback` is a handle on one recorded callback step: its id is the token an outside
party completes it with (``complete_callback``), stored on the step so every replay hands back
the same one. :class:`ConditionPoll` holds a validated ``wait_for_condition`` call: what to
check, when to stop, how long to sleep between checks.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ..core import (
    ANY_CODEC,
    Codec,
    Duration,
    InvalidDuration,
    InvalidOption,
    parse_duration,
)
from ._flow import call_sync

if TYPE_CHECKING:
    from ..store.base import StepRecord
    from ._flow import Flow, FunctionDef
    from ._replay import OrchestrationPass

T = TypeVar("T")


class Callback(Generic[T]):
    """A callback the run waits for: hand :attr:`id` to whoever completes it.

    Returned by ``await wf.callback(name)`` at once; ``await cb.result()`` parks the run until
    the callback is completed (``complete_callback``), failed (``fail_callback``) or timed out.
    A completion that arrives before ``result()`` is awaited is kept.
    """

    __slots__ = ("_pass", "_record", "codec", "id", "key", "name")

    def __init__(self, orchestration: OrchestrationPass, record: StepRecord, codec: Codec) -> None:
        self._pass = orchestration
        self._record = record
        self.codec = codec
        """Validates the payload (``type=``); plain JSON without one."""
        self.id: str = record.callback_id or ""
        """The opaque token (>= 128 random bits) that completes this callback; safe to share."""
        self.key = record.key
        """The callback step's key in the run's history."""
        self.name = record.name

    async def result(self) -> T:
        """Wait for the callback's payload (validated into ``type`` when one was given).

        Raises:
            CallbackFailed: it was failed from outside, or its payload failed ``type``
                (``error_type`` ``"InvalidInput"``).
            CallbackTimedOut: its timeout or heartbeat timeout passed first.
        """
        result: T = await self._pass.callback_result(self)
        return result

    def __repr__(self) -> str:
        return f"Callback(key={self.key!r}, id={self.id!r})"


def option_duration(
    parameter: str, value: Duration | None, *, zero_ok: bool = False
) -> timedelta | None:
    """A duration option, None when not given; a bad or negative one is :class:`InvalidOption`."""
    if value is None:
        return None
    try:
        delta = parse_duration(value)
    except InvalidDuration as exc:
        raise InvalidOption(parameter, str(exc)) from None
    if delta < timedelta(0) or (delta == timedelta(0) and not zero_ok):
        raise InvalidOption(parameter, f"must be positive, got {value!r}")
    return delta


def callback_codec(type_: Any) -> Codec:
    """The codec validating a callback's payload: ``type_`` or plain JSON."""
    return ANY_CODEC if type_ is None else Codec(type_)


@dataclass(frozen=True, slots=True)
class ConditionPoll:
    """One validated ``wait_for_condition`` call.

    Built (and so validated) before anything is recorded: a bad option writes nothing.
    """

    target: str | None
    """The registered check function's name; None for an inline callable."""
    check: Callable[..., Any]
    function: FunctionDef | None
    until: Callable[[Any], Any] | None
    interval: timedelta
    backoff: float
    max_interval: timedelta | None
    max_attempts: int | None

    @classmethod
    def build(
        cls,
        flow: Flow,
        check: str | Callable[..., Any],
        *,
        until: Callable[[Any], Any] | None,
        interval: Duration,
        backoff: float,
        max_interval: Duration | None,
        max_attempts: int | None,
    ) -> ConditionPoll:
        """Validate the options.

        Raises:
            InvalidOption: naming the first bad option.
        """
        function = _check_function(flow, check)
        if function is None and not callable(check):
            raise InvalidOption("check", f"must be a function or a callable, got {check!r}")
        if until is not None and not callable(until):
            raise InvalidOption("until", f"must be a callable, got {until!r}")
        every = option_duration("interval", interval, zero_ok=True) or timedelta(0)
        if isinstance(backoff, bool) or not isinstance(backoff, int | float) or backoff < 1:
            raise InvalidOption("backoff", f"must be a number >= 1, got {backoff!r}")
        cap = option_duration("max_interval", max_interval)
        if max_attempts is not None and (
            isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1
        ):
            raise InvalidOption(
                "max_attempts", f"must be a whole number >= 1, got {max_attempts!r}"
            )
        return cls(
            target=None if function is None else function.name,
            check=function.fn if function is not None else check,  # type: ignore[arg-type]
            function=function,
            until=until,
            interval=every,
            backoff=float(backoff),
            max_interval=cap,
            max_attempts=max_attempts,
        )

    def delay(self, checks: int) -> timedelta:
        """The sleep after the ``checks``-th check: interval * backoff^(checks-1), capped."""
        wait = self.interval * (self.backoff ** max(checks - 1, 0))
        return wait if self.max_interval is None else min(wait, self.max_interval)

    async def run_check(self, state: Any) -> Any:
        """One check: the new state, JSON-safe (what is stored and what ``until`` sees)."""
        if self.function is not None:
            return await self.function.invoke(state)
        fn = self.check
        result = fn(state) if inspect.iscoroutinefunction(fn) else await call_sync(fn, state)
        if inspect.isawaitable(result):
            result = await result
        return ANY_CODEC.dump(result)

    def holds(self, state: Any) -> bool:
        """Whether the loop stops at ``state``: ``until(state)``, or the state is truthy."""
        return bool(state if self.until is None else self.until(state))


def _check_function(flow: Flow, check: str | Callable[..., Any]) -> FunctionDef | None:
    if isinstance(check, str):
        function = flow.functions.get(check)
        if function is None:
            raise InvalidOption("check", f"no function is registered as {check!r}")
        return function
    return flow.find_function(check)

"""Bounding one step attempt by its ``timeout``, on the engine's clock.

The attempt runs as a task; past its timeout it is cancelled (async code) or abandoned (sync
code running in a worker thread, which may still finish in the background: Python cannot stop a
thread) and the attempt fails with :class:`~lambda_flow.StepTimedOut`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from datetime import timedelta
from typing import TypeVar

from ..core import Clock, Duration, InvalidOption, StepTimedOut, SystemClock, parse_duration

T = TypeVar("T")

CHECK_INTERVAL = 0.01
"""Seconds between looks at an injected clock (tests move it; the system clock is exact)."""


def parse_timeout(value: Duration | None, parameter: str = "timeout") -> timedelta | None:
    """A timeout option as a positive ``timedelta`` (None: no timeout).

    Raises:
        InvalidOption: negative, zero or not a duration, naming ``parameter``.
    """
    if value is None:
        return None
    try:
        parsed = parse_duration(value)
    except Exception as exc:  # noqa: BLE001 - any bad duration: named as this option
        raise InvalidOption(parameter, str(exc)) from None
    if parsed <= timedelta(0):
        raise InvalidOption(parameter, f"must be positive, got {value!r}")
    return parsed


async def within(
    clock: Clock,
    work: Awaitable[T],
    timeout: timedelta | None,  # noqa: ASYNC109 - on the engine's clock, which asyncio cannot see
    *,
    step_key: str,
    attempt: int,
) -> T:
    """Await ``work``, failing with :class:`StepTimedOut` once ``timeout`` passed on ``clock``.

    Raises:
        StepTimedOut: the attempt ran longer than ``timeout``; it was cancelled.
    """
    if timeout is None:
        return await work
    task = asyncio.ensure_future(work)
    deadline = clock.now() + timeout
    exact = isinstance(clock, SystemClock)
    try:
        while True:
            remaining = (deadline - clock.now()).total_seconds()
            if remaining <= 0:
                break
            wait = remaining if exact else min(remaining, CHECK_INTERVAL)
            done, _ = await asyncio.wait({task}, timeout=wait)
            if done:
                return task.result()
    except BaseException:
        task.cancel()
        raise
    task.cancel()
    with contextlib.suppress(BaseException):
        await asyncio.wait({task}, timeout=0)
    message = f"attempt {attempt} ran longer than its timeout of {timeout}"
    timed_out = StepTimedOut(step_key, attempt, StepTimedOut.__name__, message)
    timed_out.args = (message,)  # stored as the attempt's error: the plain message
    raise timed_out

"""Helpers for testing workflows: a clock that skips time, crash injection, and replaying
recorded histories (:func:`replay_history`) to catch changes that would break runs in flight."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from ._durations import Duration, parse_duration
from ._history import replay_history
from .store.base import RunLease, StepWrite, Store

__all__ = ["CrashBeforeWrite", "SimulatedCrash", "TimeSkippingClock", "replay_history"]


class TimeSkippingClock:
    """A clock that jumps straight to whatever time the engine waits for.

    ``now()`` only moves when the engine sleeps or the test calls :meth:`advance`, so a workflow
    sleeping for a week finishes at once and timestamps are reproducible.
    """

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, tzinfo=UTC)
        self.slept: list[timedelta] = []
        """Every wait the engine asked for, in order."""

    def now(self) -> datetime:
        return self._now

    def advance(self, by: Duration) -> datetime:
        """Move time forward by ``by`` and return the new time."""
        self._now += parse_duration(by)
        return self._now

    async def sleep_until(self, when: datetime) -> None:
        if when > self._now:
            self.slept.append(when - self._now)
            self._now = when
        await asyncio.sleep(0)


class SimulatedCrash(BaseException):
    """Raised by :class:`CrashBeforeWrite` where a real process would have died."""


class CrashBeforeWrite:
    """Wraps a real store and "kills the process" just before a chosen step write commits.

    Everything else is delegated to the wrapped store unchanged, so the database sees exactly
    what it would if the process died at that instant.

    Args:
        store: the real store.
        when: called with each step write; the first one it returns True for raises
            :class:`SimulatedCrash` instead of committing.
    """

    def __init__(self, store: Store, when: Callable[[StepWrite], bool]) -> None:
        self._store = store
        self._when = when
        self.crashed = False

    def write_steps(
        self, lease: RunLease, writes: Sequence[StepWrite], now: datetime, lease_until: datetime
    ) -> int:
        if not self.crashed and any(self._when(w) for w in writes):
            self.crashed = True
            raise SimulatedCrash("process killed before the step's result was committed")
        return self._store.write_steps(lease, writes, now, lease_until)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

"""Crash injection: end a "process" at a chosen point, exactly as if it had died there."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from ..store.base import RunLease, StepWrite, Store


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

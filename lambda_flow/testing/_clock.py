"""A clock for tests: time moves only when the engine waits or the test says so."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from ..core import Duration, parse_duration


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

"""An in-process queue with the same contract as SQS: ids only, delays, duplicates welcome.

The local runtime and the tests use it to run remote mode in one process: messages wait until
the injected clock reaches their delivery time, and :meth:`LocalQueue.drain` delivers them to
the same handlers the Lambda functions call.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

from .base import StepJob, run_message, step_message

if TYPE_CHECKING:
    from ..core import Clock

QueueName = Literal["orchestrator", "step"]


@dataclass(slots=True)
class LocalMessage:
    """One message waiting in a :class:`LocalQueue`."""

    queue: QueueName
    body: str
    deliver_at: datetime
    id: int = 0
    receive_count: int = 0


@dataclass(slots=True)
class LocalQueue:
    """Orchestrator and step queues in memory, timed by ``clock``."""

    clock: Clock
    messages: list[LocalMessage] = field(default_factory=list)
    batches: list[int] = field(default_factory=list)
    """Sizes of the step batches sent (one entry per ``enqueue_steps`` call of up to 10)."""
    sent: int = 0
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    def _put(self, queue: QueueName, body: str, deliver_at: datetime) -> None:
        self.sent += 1
        self.messages.append(LocalMessage(queue, body, deliver_at, next(self._ids)))

    def enqueue_run(self, run_id: str, *, delay: timedelta | None = None) -> None:
        self._put("orchestrator", run_message(run_id), self.clock.now() + (delay or timedelta(0)))

    def enqueue_steps(self, jobs: Sequence[StepJob]) -> None:
        for start in range(0, len(jobs), 10):
            chunk = jobs[start : start + 10]
            self.batches.append(len(chunk))
            for job in chunk:
                self._put("step", step_message(job), self.clock.now())

    def wake_at(self, run_id: str, when: datetime, now: datetime) -> None:
        self._put("orchestrator", run_message(run_id), when)

    def backlog(self) -> int | None:
        """Orchestrator messages that are due and not yet taken."""
        now = self.clock.now()
        return sum(1 for m in self.messages if m.queue == "orchestrator" and m.deliver_at <= now)

    def receive(self, queue: QueueName | None = None) -> LocalMessage | None:
        """Take the oldest message that is due (optionally from one queue only)."""
        now = self.clock.now()
        due = [
            m for m in self.messages if m.deliver_at <= now and (queue is None or m.queue == queue)
        ]
        if not due:
            return None
        message = min(due, key=lambda m: (m.deliver_at, m.id))
        self.messages.remove(message)
        message.receive_count += 1
        return message

    def next_delivery(self) -> datetime | None:
        """When the earliest waiting message becomes due."""
        return min((m.deliver_at for m in self.messages), default=None)

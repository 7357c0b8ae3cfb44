"""Local stand-ins for SQS queues that keep the semantics handlers depend on.

Each :class:`LocalSqsQueue` honours delivery delays, a visibility timeout (a received message
reappears unless deleted), and a redrive policy (a message received more than ``max_receives``
times moves to its dead-letter queue). :class:`LocalJobQueue` puts lambda-flow's jobs on a pair of
them, so the dev runtime feeds the very same batch handlers SQS would.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ..core import Clock
from ..transport.base import StepJob, run_message, step_message


@dataclass(slots=True)
class QueuedMessage:
    """One message in a local queue."""

    message_id: str
    body: str
    visible_at: datetime
    sent_at: datetime
    receive_count: int = 0
    receipt: str = ""


@dataclass
class LocalSqsQueue:
    """An SQS-like queue in memory, safe to use from several threads.

    Args:
        name: the queue's name (its fake ARN ends with it).
        clock: the time source delays and visibility timeouts follow.
        visibility_timeout: how long a received message stays hidden before it reappears.
        max_receives: receives after which a message moves to ``dead_letter`` (None: never).
        dead_letter: the dead-letter queue.
    """

    name: str
    clock: Clock
    visibility_timeout: timedelta = timedelta(seconds=30)
    max_receives: int | None = None
    dead_letter: LocalSqsQueue | None = None
    messages: list[QueuedMessage] = field(default_factory=list)
    _lock: threading.Condition = field(default_factory=threading.Condition)
    _seq: itertools.count[int] = field(default_factory=itertools.count)

    @property
    def arn(self) -> str:
        return f"arn:aws:sqs:local:000000000000:{self.name}"

    def send(self, body: str, *, delay: timedelta = timedelta(0)) -> str:
        """Add a message, visible after ``delay``; return its id."""
        now = self.clock.now()
        message = QueuedMessage(str(uuid.uuid4()), body, now + delay, now)
        with self._lock:
            self.messages.append(message)
            self._lock.notify_all()
        return message.message_id

    def receive(self, max_messages: int = 10) -> list[QueuedMessage]:
        """Take up to ``max_messages`` visible messages, hiding them for the visibility timeout.

        A message past its queue's ``max_receives`` goes to the dead-letter queue instead.
        """
        now = self.clock.now()
        taken: list[QueuedMessage] = []
        with self._lock:
            for message in sorted(self.messages, key=lambda m: m.visible_at):
                if len(taken) >= max_messages or message.visible_at > now:
                    break
                if self.max_receives is not None and message.receive_count >= self.max_receives:
                    self.messages.remove(message)
                    if self.dead_letter is not None:
                        self.dead_letter.send(message.body)
                    continue
                message.receive_count += 1
                message.visible_at = now + self.visibility_timeout
                message.receipt = f"{message.message_id}:{next(self._seq)}"
                taken.append(message)
        return taken

    def delete(self, receipt: str) -> None:
        """Remove a received message (ignored when the receipt is stale, as in SQS)."""
        with self._lock:
            self.messages = [m for m in self.messages if m.receipt != receipt]

    def next_visible_at(self) -> datetime | None:
        """When the next message becomes visible (None: the queue is empty)."""
        with self._lock:
            return min((m.visible_at for m in self.messages), default=None)

    def wait(self, timeout: float) -> None:
        """Block up to ``timeout`` seconds or until a message is sent."""
        with self._lock:
            self._lock.wait(timeout)

    def wake(self) -> None:
        """Wake every thread blocked in :meth:`wait`."""
        with self._lock:
            self._lock.notify_all()

    def __len__(self) -> int:
        with self._lock:
            return len(self.messages)

    def visible(self) -> int:
        """Messages that could be received now."""
        now = self.clock.now()
        with self._lock:
            return sum(1 for m in self.messages if m.visible_at <= now)

    def sqs_event(self, messages: Sequence[QueuedMessage]) -> dict[str, Any]:
        """The Lambda event SQS would deliver for ``messages``."""
        return {
            "Records": [
                {
                    "messageId": m.message_id,
                    "receiptHandle": m.receipt,
                    "body": m.body,
                    "attributes": {
                        "ApproximateReceiveCount": str(m.receive_count),
                        "SentTimestamp": str(int(m.sent_at.timestamp() * 1000)),
                        "SenderId": "LOCAL",
                        "ApproximateFirstReceiveTimestamp": str(int(time.time() * 1000)),
                    },
                    "messageAttributes": {},
                    "md5OfBody": hashlib.md5(m.body.encode(), usedforsecurity=False).hexdigest(),
                    "eventSource": "aws:sqs",
                    "eventSourceARN": self.arn,
                    "awsRegion": "local",
                }
                for m in messages
            ]
        }


class LocalJobQueue:
    """lambda-flow's :class:`~lambda_flow.transport.base.JobQueue` on two local queues.

    Unlike SQS there is no 15-minute cap on delays: a timer's message simply becomes visible
    when it is due.
    """

    def __init__(self, orchestrator: LocalSqsQueue, step: LocalSqsQueue) -> None:
        self.orchestrator = orchestrator
        self.step = step

    def enqueue_run(self, run_id: str, *, delay: timedelta | None = None) -> None:
        self.orchestrator.send(run_message(run_id), delay=delay or timedelta(0))

    def enqueue_steps(self, jobs: Sequence[StepJob]) -> None:
        for job in jobs:
            self.step.send(step_message(job))

    def wake_at(self, run_id: str, when: datetime, now: datetime) -> None:
        self.orchestrator.send(run_message(run_id), delay=max(when - now, timedelta(0)))

    def backlog(self) -> int | None:
        return self.orchestrator.visible()

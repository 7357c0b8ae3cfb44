"""lambda-flow's job queues in memory, with SQS's contract: ids only, delays, duplicates welcome.

One :class:`LocalQueue` holds the orchestrator and step queues and their dead-letter queues, timed
by an injected clock. It has two faces over the same messages:

- the tests and the benchmarks take messages one at a time, for good
  (:meth:`LocalQueue.receive`), and may edit :attr:`LocalQueue.messages` to lose or reorder them;
- ``lambda-flow dev`` and ``lambda-flow invoke`` consume it as Lambda consumes SQS
  (:meth:`LocalQueue.receive_batch`, :meth:`LocalQueue.delete`, :meth:`LocalQueue.sqs_event`):
  a received message stays hidden for the visibility timeout and reappears unless deleted, and
  one received more than ``max_receives`` times moves to its queue's dead-letter queue.

Unlike SQS there is no 15-minute cap on delays: a timer's message simply becomes due when it is.
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
from typing import TYPE_CHECKING, Any, Literal

from .base import StepJob, run_message, step_message

if TYPE_CHECKING:
    from ..core import Clock

QueueName = Literal["orchestrator", "step", "orchestrator-dlq", "step-dlq"]
"""The queues of a :class:`LocalQueue`: the two job queues and their dead-letter queues."""
WORK_QUEUES: tuple[QueueName, ...] = ("orchestrator", "step")
"""The queues the engine sends to and consumers receive from."""
DEAD_LETTER: dict[QueueName, QueueName] = {
    "orchestrator": "orchestrator-dlq",
    "step": "step-dlq",
}
"""Each job queue's dead-letter queue (its redrive target)."""
STEP_BATCH = 10
"""Step jobs per send, as SQS's ``SendMessageBatch`` takes at most ten entries."""


def _new_message_id() -> str:
    return str(uuid.uuid4())


@dataclass(slots=True)
class LocalMessage:
    """One message in a :class:`LocalQueue`.

    Attributes:
        queue: the queue it is on (a job queue, or a dead-letter queue once redriven).
        body: the message body (``{"run_id"}`` or ``{"run_id", "step_key", "attempt"}``).
        deliver_at: when it is due, or visible again after a receive.
        id: the send order, which breaks ties between messages due at the same time.
        receive_count: how many times it was received (SQS's ``ApproximateReceiveCount``).
        message_id: its SQS-style message id.
        sent_at: when it was sent.
        receipt: the receipt handle of its latest :meth:`LocalQueue.receive_batch` ("" before).
    """

    queue: QueueName
    body: str
    deliver_at: datetime
    id: int = 0
    receive_count: int = 0
    message_id: str = field(default_factory=_new_message_id, kw_only=True)
    sent_at: datetime = field(kw_only=True)
    receipt: str = field(default="", kw_only=True)


class LocalQueue:
    """The orchestrator and step queues (and their dead-letter queues) in memory.

    A :class:`~lambda_flow.transport.base.JobQueue`, safe to use from several threads.

    Args:
        clock: the time source delays and visibility timeouts follow.
        visibility_timeout: how long a message taken by :meth:`receive_batch` stays hidden
            before it reappears (unless deleted).
        max_receives: receives after which :meth:`receive_batch` moves a message to its
            queue's dead-letter queue instead (None: never, no redrive policy).
    """

    def __init__(
        self,
        clock: Clock,
        *,
        visibility_timeout: timedelta = timedelta(seconds=30),
        max_receives: int | None = None,
    ) -> None:
        self.clock = clock
        self.visibility_timeout = visibility_timeout
        self.max_receives = max_receives
        self.messages: list[LocalMessage] = []
        """Every message of every queue, due or not, in send order (tests may edit it)."""
        self.batches: list[int] = []
        """Sizes of the step batches sent (one entry per ``enqueue_steps`` call of up to 10)."""
        self.sent = 0
        """Messages sent so far (a redrive to a dead-letter queue is not a send)."""
        self._ids = itertools.count()
        self._receipts = itertools.count()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        """Notified on every change (:meth:`wait` waits on it)."""
        self._arrived: dict[QueueName, threading.Condition] = {
            name: threading.Condition(self._lock) for name in (*WORK_QUEUES, *DEAD_LETTER.values())
        }
        """Per queue: notified once per message sent to it (a consumer blocked in
        :meth:`receive_batch` with ``wait`` takes it), and on :meth:`wake`."""
        self._woken = 0
        """Bumped by :meth:`wake`: receivers blocked in :meth:`receive_batch` return empty."""
        self._waiting: dict[QueueName, int] = dict.fromkeys(self._arrived, 0)

    # -- the JobQueue protocol ------------------------------------------------------------------
    def enqueue_run(self, run_id: str, *, delay: timedelta | None = None) -> None:
        """Queue an orchestration pass of ``run_id``, due after ``delay``."""
        self._put("orchestrator", run_message(run_id), self.clock.now() + (delay or timedelta(0)))

    def enqueue_steps(self, jobs: Sequence[StepJob]) -> None:
        """Queue step jobs, due now, in batches of up to ten."""
        for start in range(0, len(jobs), STEP_BATCH):
            chunk = jobs[start : start + STEP_BATCH]
            self.batches.append(len(chunk))
            for job in chunk:
                self._put("step", step_message(job), self.clock.now())

    def wake_at(self, run_id: str, when: datetime, now: datetime) -> None:
        """Queue an orchestration pass of ``run_id``, due at ``when``."""
        self._put("orchestrator", run_message(run_id), when)

    def backlog(self) -> int | None:
        """Orchestrator messages that are due and not yet taken."""
        return self.visible("orchestrator")

    def _put(self, queue: QueueName, body: str, deliver_at: datetime) -> None:
        now = self.clock.now()
        with self._changed:
            self.sent += 1
            self.messages.append(
                LocalMessage(queue, body, deliver_at, next(self._ids), sent_at=now)
            )
            self._changed.notify_all()
            # One blocked receiver per message, not all of them (no thundering herd); one that
            # finds it taken by a receiver that was not waiting simply waits again.
            self._arrived[queue].notify()

    # -- one message at a time, for good (tests, benchmarks) ------------------------------------
    def receive(self, queue: QueueName | None = None) -> LocalMessage | None:
        """Take the oldest due message for good (from one queue, or from either job queue)."""
        now = self.clock.now()
        with self._changed:
            due = [m for m in self._on(queue) if m.deliver_at <= now]
            if not due:
                return None
            message = min(due, key=lambda m: (m.deliver_at, m.id))
            self.messages.remove(message)
            message.receive_count += 1
            return message

    def next_delivery(self) -> datetime | None:
        """When the earliest message waiting on a job queue becomes due."""
        with self._changed:
            return min((m.deliver_at for m in self._on(None)), default=None)

    # -- as Lambda consumes SQS (dev runtime, invoke) -------------------------------------------
    def receive_batch(
        self, queue: QueueName, max_messages: int = 10, *, wait: float = 0.0
    ) -> list[LocalMessage]:
        """Take up to ``max_messages`` due messages of ``queue``, as SQS's ReceiveMessage does.

        Each is hidden for the visibility timeout and gets a new receipt. A message already
        received ``max_receives`` times moves to the queue's dead-letter queue instead (keeping
        its id and body), as SQS's redrive policy does.

        ``wait``: like ``WaitTimeSeconds``, block up to that many seconds while none is due.
        A message sent to ``queue`` wakes one blocked receiver at once; a delayed one (or one
        whose visibility timeout runs out) is taken when it becomes due, without polling.
        :meth:`wake` makes every blocked receiver return (empty when nothing is due).
        """
        arrived = self._arrived[queue]
        deadline: float | None = None
        with self._lock:
            woken = self._woken
            while True:
                taken = self._take(queue, max_messages)
                if taken and self._waiting[queue]:
                    # This receiver may have been the one timing the next delayed message (or
                    # woken for one it left for others): another waiter takes over its watch.
                    arrived.notify()
                if taken or wait <= 0:
                    return taken
                if deadline is None:
                    deadline = time.monotonic() + wait
                upcoming = min((m.deliver_at for m in self._on(queue)), default=None)
                left = deadline - time.monotonic()
                if upcoming is not None:
                    left = min(left, (upcoming - self.clock.now()).total_seconds())
                if self._woken != woken or deadline - time.monotonic() <= 0:
                    return []
                if left > 0:
                    self._waiting[queue] += 1
                    try:
                        arrived.wait(left)
                    finally:
                        self._waiting[queue] -= 1

    def _take(self, queue: QueueName, max_messages: int) -> list[LocalMessage]:
        """:meth:`receive_batch` without waiting; call with the lock held."""
        now = self.clock.now()
        taken: list[LocalMessage] = []
        due = sorted(
            (m for m in self._on(queue) if m.deliver_at <= now),
            key=lambda m: (m.deliver_at, m.id),
        )
        for message in due:
            if len(taken) >= max_messages:
                break
            if self._exhausted(message):
                self._dead_letter(message, now)
                continue
            message.receive_count += 1
            message.deliver_at = now + self.visibility_timeout
            message.receipt = f"{message.message_id}:{next(self._receipts)}"
            taken.append(message)
        return taken

    def _exhausted(self, message: LocalMessage) -> bool:
        return (
            message.queue in DEAD_LETTER
            and self.max_receives is not None
            and message.receive_count >= self.max_receives
        )

    def _dead_letter(self, message: LocalMessage, now: datetime) -> None:
        message.queue = DEAD_LETTER[message.queue]
        message.deliver_at = now
        message.receipt = ""
        self._changed.notify_all()
        self._arrived[message.queue].notify()

    def delete(self, receipt: str) -> None:
        """Remove a received message (ignored when the receipt is stale, as in SQS)."""
        with self._changed:
            for message in self.messages:
                if receipt and message.receipt == receipt:
                    self.messages.remove(message)
                    return

    def next_visible_at(self, queue: QueueName) -> datetime | None:
        """When the next message of ``queue`` becomes visible (None: the queue is empty)."""
        with self._changed:
            return min((m.deliver_at for m in self._on(queue)), default=None)

    def wait(self, timeout: float) -> None:
        """Block up to ``timeout`` seconds, or until a message is sent or :meth:`wake` called."""
        with self._changed:
            self._changed.wait(timeout)

    def wake(self) -> None:
        """Wake every thread blocked in :meth:`wait` or :meth:`receive_batch` (to stop them)."""
        with self._changed:
            self._woken += 1
            self._changed.notify_all()
            for arrived in self._arrived.values():
                arrived.notify_all()

    def receivers_waiting(self, queue: QueueName) -> int:
        """Receivers blocked in :meth:`receive_batch` on ``queue`` right now."""
        with self._lock:
            return self._waiting[queue]

    def count(self, queue: QueueName) -> int:
        """Messages on ``queue``: due, delayed or in flight."""
        with self._changed:
            return sum(1 for _ in self._on(queue))

    def visible(self, queue: QueueName) -> int:
        """Messages of ``queue`` that could be received now."""
        now = self.clock.now()
        with self._changed:
            return sum(1 for m in self._on(queue) if m.deliver_at <= now)

    @staticmethod
    def arn(queue: QueueName) -> str:
        """The fake ARN of ``queue`` (the ``eventSourceARN`` of its records)."""
        return f"arn:aws:sqs:local:000000000000:{queue}"

    def sqs_event(self, messages: Sequence[LocalMessage]) -> dict[str, Any]:
        """The Lambda event SQS would deliver for ``messages`` (from :meth:`receive_batch`)."""
        received = str(int(self.clock.now().timestamp() * 1000))
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
                        "ApproximateFirstReceiveTimestamp": received,
                    },
                    "messageAttributes": {},
                    "md5OfBody": hashlib.md5(m.body.encode(), usedforsecurity=False).hexdigest(),
                    "eventSource": "aws:sqs",
                    "eventSourceARN": self.arn(m.queue),
                    "awsRegion": "local",
                }
                for m in messages
            ]
        }

    def _on(self, queue: QueueName | None) -> list[LocalMessage]:
        """Messages of ``queue`` (None: of either job queue); call with the lock held."""
        names: Sequence[str] = WORK_QUEUES if queue is None else (queue,)
        return [m for m in self.messages if m.queue in names]

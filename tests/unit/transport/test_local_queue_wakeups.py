"""The local queue's long poll: a blocked receiver is woken by a send, not by a timer (issue 14).

``receive_batch(..., wait=...)`` is how ``lambda-flow dev``'s pumps idle. Each test blocks a
receiver for a long poll far longer than the test may take (an hour), waits until the queue says
it is blocked, then acts: the receiver returning with the message shows the send woke it; no
assertion depends on how fast anything runs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from lambda_flow.core import SystemClock
from lambda_flow.local.dev import _LocalPump
from lambda_flow.transport.base import StepJob
from lambda_flow.transport.local import LocalQueue, QueueName

RUN_ID = "00000000-0000-4000-8000-000000000001"
HOUR = 3600.0
"""A long poll no test waits out."""
JOIN = 30.0
"""How long a test waits for a woken thread to finish (only reached on a failure)."""


def _queue() -> LocalQueue:
    return LocalQueue(SystemClock(), visibility_timeout=timedelta(seconds=30), max_receives=5)


class _Receiver(threading.Thread):
    """A thread blocked in one ``receive_batch`` (or in ``work``); what it got."""

    def __init__(self, work: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self.work = work
        self.got: Any = None
        self.done = threading.Event()

    def run(self) -> None:
        self.got = self.work()
        self.done.set()


def _blocked(queue: LocalQueue, name: QueueName, count: int = 1) -> None:
    """Return once ``count`` receivers are blocked on ``name``."""
    done = threading.Event()
    while queue.receivers_waiting(name) < count:
        done.wait(0.001)  # a yield while the receiver thread gets to its wait


def _receive(queue: LocalQueue, name: QueueName) -> _Receiver:
    receiver = _Receiver(lambda: queue.receive_batch(name, 1, wait=HOUR))
    receiver.start()
    _blocked(queue, name)
    return receiver


def test_a_send_wakes_a_receiver_blocked_in_a_long_poll() -> None:
    queue = _queue()
    receiver = _receive(queue, "step")

    queue.enqueue_steps([StepJob(RUN_ID, "Charge", 1)])

    assert receiver.done.wait(JOIN), "the send did not wake the blocked receiver"
    [message] = receiver.got
    assert (message.queue, message.receive_count) == ("step", 1)
    assert queue.receivers_waiting("step") == 0


def test_one_send_wakes_one_receiver_and_leaves_the_others_waiting() -> None:
    queue = _queue()
    first = _Receiver(lambda: queue.receive_batch("orchestrator", 1, wait=HOUR))
    second = _Receiver(lambda: queue.receive_batch("orchestrator", 1, wait=HOUR))
    first.start()
    second.start()
    _blocked(queue, "orchestrator", 2)

    queue.enqueue_run(RUN_ID)

    woken = _first_done(first, second)
    [message] = woken.got
    assert message.queue == "orchestrator"
    _blocked(queue, "orchestrator", 1)  # the other one is still in its long poll
    other = second if woken is first else first
    assert not other.done.is_set()

    queue.wake()  # as DevRuntime.stop() does

    assert other.done.wait(JOIN)
    assert other.got == []


def test_a_send_to_the_other_queue_leaves_a_receiver_blocked() -> None:
    queue = _queue()
    receiver = _receive(queue, "step")

    queue.enqueue_run(RUN_ID)  # an orchestrator message: nothing for the step receiver

    assert queue.visible("orchestrator") == 1
    assert queue.receivers_waiting("step") == 1
    assert not receiver.done.is_set()
    queue.wake()
    assert receiver.done.wait(JOIN)
    assert receiver.got == []


def test_a_receive_without_wait_returns_at_once_when_nothing_is_due() -> None:
    queue = _queue()

    assert queue.receive_batch("step", 1) == []
    assert queue.receivers_waiting("step") == 0


def test_a_message_sent_before_the_receive_is_taken_without_waiting() -> None:
    queue = _queue()
    queue.enqueue_run(RUN_ID)

    [message] = queue.receive_batch("orchestrator", 1, wait=HOUR)

    assert message.queue == "orchestrator"


def test_an_idle_dev_pump_delivers_a_message_as_soon_as_it_is_sent() -> None:
    queue = _queue()
    delivered: list[dict[str, Any]] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        delivered.append(event)
        return {"batchItemFailures": []}

    pump = _LocalPump(queue, "step", handler, "StepWorker", long_poll=HOUR)
    receiver = _Receiver(pump.pump_once)
    receiver.start()
    _blocked(queue, "step")

    queue.enqueue_steps([StepJob(RUN_ID, "Charge", 1)])

    assert receiver.done.wait(JOIN), "the idle pump was not woken by the send"
    assert receiver.got == 1
    [event] = delivered
    assert [r["eventSourceARN"] for r in event["Records"]] == [LocalQueue.arn("step")]
    assert queue.count("step") == 0  # handled and acknowledged


def _first_done(*receivers: _Receiver) -> _Receiver:
    """The receiver that finishes first."""
    tick = threading.Event()
    for _ in range(int(JOIN * 1000)):
        for receiver in receivers:
            if receiver.done.is_set():
                return receiver
        tick.wait(0.001)
    raise AssertionError("no receiver was woken")

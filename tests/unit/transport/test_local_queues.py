"""The local queue: SQS's delivery semantics for the dev runtime, one-at-a-time for the tests."""

import threading
import time
from datetime import timedelta

from lambda_flow.testing import TimeSkippingClock
from lambda_flow.transport.base import JobQueue, StepJob, parse_run_message, parse_step_message
from lambda_flow.transport.local import LocalQueue

RUN_ID = "00000000-0000-4000-8000-000000000001"


def make(clock: TimeSkippingClock, max_receives: int | None = 2) -> LocalQueue:
    return LocalQueue(clock, visibility_timeout=timedelta(seconds=30), max_receives=max_receives)


def test_it_is_a_job_queue() -> None:
    queue: JobQueue = make(TimeSkippingClock())  # mypy checks the protocol

    assert queue.backlog() == 0


def test_delayed_messages_wait_for_their_time() -> None:
    clock = TimeSkippingClock()
    queue = make(clock)
    queue.enqueue_run(RUN_ID, delay=timedelta(minutes=20))

    assert queue.receive_batch("orchestrator") == []
    assert queue.next_visible_at("orchestrator") == clock.now() + timedelta(minutes=20)
    clock.advance("20min")
    assert [parse_run_message(m.body) for m in queue.receive_batch("orchestrator")] == [RUN_ID]


def test_unacknowledged_messages_reappear_after_the_visibility_timeout() -> None:
    clock = TimeSkippingClock()
    queue = make(clock, max_receives=None)
    queue.enqueue_run(RUN_ID)

    first_receipt = queue.receive_batch("orchestrator")[0].receipt
    assert queue.receive_batch("orchestrator") == []  # hidden while a consumer works on it
    assert queue.visible("orchestrator") == 0
    assert queue.backlog() == 0
    clock.advance("31s")
    second = queue.receive_batch("orchestrator")

    assert [m.receive_count for m in second] == [2]
    queue.delete(first_receipt)  # a stale receipt deletes nothing
    assert queue.count("orchestrator") == 1
    queue.delete(second[0].receipt)
    assert queue.count("orchestrator") == 0
    assert queue.messages == []


def test_a_message_received_too_often_moves_to_the_dead_letter_queue() -> None:
    clock = TimeSkippingClock()
    queue = make(clock, max_receives=2)
    queue.enqueue_steps([StepJob(RUN_ID, "Send", 1)])
    [sent] = queue.messages

    for _ in range(2):
        assert [m.message_id for m in queue.receive_batch("step")] == [sent.message_id]
        clock.advance("31s")
    assert queue.receive_batch("step") == []

    assert queue.count("step") == 0
    dead = queue.receive_batch("step-dlq")
    assert [(m.message_id, m.body) for m in dead] == [(sent.message_id, sent.body)]
    assert queue.sent == 1  # a redrive is not a send


def test_dead_letter_queues_have_no_redrive_and_no_share_of_the_job_queues() -> None:
    clock = TimeSkippingClock()
    queue = make(clock, max_receives=1)
    queue.enqueue_run(RUN_ID)
    queue.receive_batch("orchestrator")
    clock.advance("31s")
    assert queue.receive_batch("orchestrator") == []  # now on orchestrator-dlq

    for _ in range(3):  # received again and again, it stays in the DLQ
        assert len(queue.receive_batch("orchestrator-dlq")) == 1
        clock.advance("31s")
    assert queue.count("orchestrator-dlq") == 1
    # The one-at-a-time face and the drain loops see the job queues only.
    assert queue.receive() is None
    assert queue.next_delivery() is None
    assert queue.backlog() == 0


def test_batches_take_at_most_max_messages_oldest_first() -> None:
    clock = TimeSkippingClock()
    queue = make(clock)
    queue.enqueue_steps([StepJob(RUN_ID, f"Step {i}", 1) for i in range(12)])

    first = queue.receive_batch("step")
    rest = queue.receive_batch("step", max_messages=5)

    assert queue.batches == [10, 2]
    assert [parse_step_message(m.body).step_key for m in first] == [f"Step {i}" for i in range(10)]
    assert [parse_step_message(m.body).step_key for m in rest] == ["Step 10", "Step 11"]
    assert len({m.receipt for m in first + rest}) == 12


def test_sqs_events_look_like_the_real_ones() -> None:
    clock = TimeSkippingClock()
    queue = make(clock)
    queue.enqueue_run(RUN_ID)
    [message] = queue.receive_batch("orchestrator")
    event = queue.sqs_event([message])
    record = event["Records"][0]

    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == "arn:aws:sqs:local:000000000000:orchestrator"
    assert record["eventSourceARN"] == queue.arn("orchestrator")
    assert record["messageId"] == message.message_id
    assert record["receiptHandle"] == message.receipt
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert record["attributes"]["SentTimestamp"] == str(int(clock.now().timestamp() * 1000))
    assert record["body"] == message.body
    assert parse_run_message(record["body"]) == RUN_ID


def test_job_queue_puts_ids_only_messages_on_the_right_queues() -> None:
    clock = TimeSkippingClock()
    queue = make(clock)

    queue.enqueue_run(RUN_ID)
    queue.enqueue_steps([StepJob(RUN_ID, "Send", 2)])
    queue.wake_at(RUN_ID, clock.now() + timedelta(hours=2), clock.now())

    now_due = queue.receive_batch("orchestrator")
    assert [parse_run_message(m.body) for m in now_due] == [RUN_ID]
    queue.delete(now_due[0].receipt)
    assert [parse_step_message(m.body) for m in queue.receive_batch("step")] == [
        StepJob(RUN_ID, "Send", 2)
    ]
    clock.advance("2h")
    assert [parse_run_message(m.body) for m in queue.receive_batch("orchestrator")] == [RUN_ID]


def test_receive_takes_the_oldest_due_message_for_good() -> None:
    clock = TimeSkippingClock()
    queue = LocalQueue(clock)
    queue.wake_at(RUN_ID, clock.now() + timedelta(minutes=5), clock.now())
    queue.enqueue_steps([StepJob(RUN_ID, "Send", 1)])
    queue.enqueue_run(RUN_ID)

    step = queue.receive()
    assert step is not None
    assert (step.queue, step.receive_count) == ("step", 1)
    assert queue.receive("step") is None
    assert queue.backlog() == 1
    run = queue.receive("orchestrator")
    assert run is not None
    assert run.queue == "orchestrator"
    assert queue.receive() is None  # the timer is not due
    assert queue.next_delivery() == clock.now() + timedelta(minutes=5)
    clock.advance("5min")
    assert queue.receive() is not None
    assert (queue.messages, queue.sent, queue.batches) == ([], 3, [1])


def test_wait_returns_when_a_message_is_sent() -> None:
    queue = LocalQueue(TimeSkippingClock())
    waited: list[float] = []

    def consumer() -> None:
        began = time.monotonic()
        queue.wait(10.0)
        waited.append(time.monotonic() - began)

    thread = threading.Thread(target=consumer)
    thread.start()
    while not waited and thread.is_alive():
        queue.enqueue_run(RUN_ID)  # until the consumer is waiting and hears one
        thread.join(0.01)
    thread.join()

    assert waited[0] < 5.0


def test_wake_releases_waiting_consumers() -> None:
    queue = LocalQueue(TimeSkippingClock())
    thread = threading.Thread(target=queue.wait, args=(10.0,))
    thread.start()
    while thread.is_alive():
        queue.wake()
        thread.join(0.01)

    assert queue.messages == []

"""The dev runtime's local queues keep SQS's delivery semantics."""

from datetime import timedelta

from lambda_flow.local.queues import LocalJobQueue, LocalSqsQueue
from lambda_flow.testing import TimeSkippingClock
from lambda_flow.transport.base import StepJob, parse_run_message, parse_step_message


def make(
    clock: TimeSkippingClock, max_receives: int | None = 2
) -> tuple[LocalSqsQueue, LocalSqsQueue]:
    dlq = LocalSqsQueue("dlq", clock)
    return LocalSqsQueue("q", clock, timedelta(seconds=30), max_receives, dlq), dlq


def test_delayed_messages_wait_for_their_time() -> None:
    clock = TimeSkippingClock()
    queue, _ = make(clock)
    queue.send("later", delay=timedelta(minutes=20))

    assert queue.receive() == []
    clock.advance("20min")
    assert [m.body for m in queue.receive()] == ["later"]


def test_unacknowledged_messages_reappear_after_the_visibility_timeout() -> None:
    clock = TimeSkippingClock()
    queue, _ = make(clock, max_receives=None)
    queue.send("job")

    first_receipt = queue.receive()[0].receipt
    assert queue.receive() == []  # hidden while a consumer works on it
    clock.advance("31s")
    second = queue.receive()

    assert [m.receive_count for m in second] == [2]
    queue.delete(first_receipt)  # a stale receipt deletes nothing
    assert len(queue) == 1
    queue.delete(second[0].receipt)
    assert len(queue) == 0


def test_a_message_received_too_often_moves_to_the_dead_letter_queue() -> None:
    clock = TimeSkippingClock()
    queue, dlq = make(clock, max_receives=2)
    queue.send("poison")

    for _ in range(2):
        assert [m.body for m in queue.receive()] == ["poison"]
        clock.advance("31s")
    assert queue.receive() == []

    assert len(queue) == 0
    assert [m.body for m in dlq.receive()] == ["poison"]


def test_sqs_events_look_like_the_real_ones() -> None:
    clock = TimeSkippingClock()
    queue, _ = make(clock)
    queue.send('{"run_id": "x"}')
    event = queue.sqs_event(queue.receive())
    record = event["Records"][0]

    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == "arn:aws:sqs:local:000000000000:q"
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert record["body"] == '{"run_id": "x"}'


def test_job_queue_puts_ids_only_messages_on_the_right_queues() -> None:
    clock = TimeSkippingClock()
    orchestrator, _ = make(clock)
    step, _ = make(clock)
    jobs = LocalJobQueue(orchestrator, step)
    run_id = "00000000-0000-4000-8000-000000000001"

    jobs.enqueue_run(run_id)
    jobs.enqueue_steps([StepJob(run_id, "Send", 2)])
    jobs.wake_at(run_id, clock.now() + timedelta(hours=2), clock.now())

    now_due = orchestrator.receive()
    assert [parse_run_message(m.body) for m in now_due] == [run_id]
    orchestrator.delete(now_due[0].receipt)
    assert [parse_step_message(m.body) for m in step.receive()] == [StepJob(run_id, "Send", 2)]
    clock.advance("2h")
    assert [parse_run_message(m.body) for m in orchestrator.receive()] == [run_id]

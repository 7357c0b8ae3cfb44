"""Retry policies, step timeouts, run deadlines and cancellation with cleanup in remote mode: the
step worker decides with the policy stored with the step (issue 12, items 3, 4 and 6)."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from typing import Any

from lambda_flow import (
    Flow,
    RetryPolicy,
    RunStatus,
    StepStatus,
    WorkflowCancelled,
    WorkflowContext,
    WorkflowService,
    current_step,
)
from lambda_flow.testing import TimeSkippingClock
from lambda_flow.transport.local import LocalQueue
from lambda_flow.worker import JobResult

from .test_remote import drain


class Flaky(Exception):
    """A failure worth retrying."""


class Fatal(Exception):
    """A failure the policy never retries."""


def _attempts(service: WorkflowService, run_id: str) -> list[tuple[str, StepStatus, str | None]]:
    return [
        (a.step_key, a.status, a.error.type if a.error else None)
        for a in service.get_run_history(run_id)
    ]


def test_the_worker_retries_with_the_steps_policy(
    flow: Flow, remote: Any, queue: LocalQueue, clock: TimeSkippingClock
) -> None:
    service, dispatcher = remote
    calls: Counter[str] = Counter()

    @flow.function
    def flaky() -> str:
        calls["flaky"] += 1
        if calls["flaky"] < 3:
            raise Flaky("try again")
        return "ok"

    @flow.function
    def fatal() -> str:
        calls["fatal"] += 1
        raise Fatal("never")

    policy = RetryPolicy(
        max_attempts=5, initial_delay="10s", backoff=3.0, jitter="none", dont_retry_on=(Fatal,)
    )

    @flow.workflow
    async def remote_policy(wf: WorkflowContext) -> str:
        first = await wf.do("flaky", "flaky", retry=policy)
        try:
            await wf.do("fatal", "fatal", retry=policy)
        except Exception as exc:
            return f"{first} then {type(exc).__name__}"
        return first

    start = clock.now()
    run_id = service.start("remote_policy")
    drain(queue, dispatcher)

    run = service.get_run(run_id)
    assert run.status is RunStatus.COMPLETED, run.error
    assert run.output == "ok then StepFailed"
    assert calls == {"flaky": 3, "fatal": 1}
    assert clock.now() - start == timedelta(seconds=10 + 30)
    assert _attempts(service, run_id) == [
        ("flaky", StepStatus.FAILED, "Flaky"),
        ("flaky", StepStatus.FAILED, "Flaky"),
        ("flaky", StepStatus.SUCCEEDED, None),
        ("fatal", StepStatus.FAILED, "Fatal"),
    ]


def test_the_worker_enforces_a_steps_timeout(
    flow: Flow, remote: Any, queue: LocalQueue, clock: TimeSkippingClock
) -> None:
    service, dispatcher = remote

    @flow.function
    async def hangs() -> str:
        step = current_step()
        assert step is not None
        if step.attempt == 1:
            clock.advance("2min")
            await asyncio.Event().wait()
        return "done"

    @flow.workflow
    async def slow(wf: WorkflowContext) -> str:
        return str(await wf.do("call", "hangs", timeout="1min", retries=1))

    run_id = service.start("slow")
    results = [r for _, r in drain(queue, dispatcher)]

    assert JobResult.RETRYING in results
    run = service.get_run(run_id)
    assert run.status is RunStatus.COMPLETED, run.error
    assert _attempts(service, run_id) == [
        ("call", StepStatus.FAILED, "StepTimedOut"),
        ("call", StepStatus.SUCCEEDED, None),
    ]


def test_a_run_past_its_deadline_drops_its_queued_job(
    flow: Flow, remote: Any, queue: LocalQueue, clock: TimeSkippingClock
) -> None:
    service, dispatcher = remote
    calls: Counter[str] = Counter()

    @flow.function
    def work() -> str:
        calls["work"] += 1
        return "done"

    @flow.workflow(timeout="1h")
    async def late(wf: WorkflowContext) -> str:
        await wf.sleep("nap", "2h")
        return str(await wf.do("work", "work"))

    run_id = service.start("late")
    drain(queue, dispatcher)

    run = service.get_run(run_id)
    assert run.status is RunStatus.FAILED
    assert run.error is not None
    assert run.error.type == "RunDeadlineExceeded"
    assert calls == {}
    assert _attempts(service, run_id) == [("nap", StepStatus.CANCELLED, None)]


def test_cancel_refuses_the_in_flight_job_and_runs_the_cleanup(
    flow: Flow, remote: Any, queue: LocalQueue
) -> None:
    service, dispatcher = remote
    calls: Counter[str] = Counter()

    @flow.function
    def charge() -> str:
        calls["charge"] += 1
        return "charged"

    @flow.function
    def refund(reason: str) -> str:
        calls[f"refund: {reason}"] += 1
        return "refunded"

    @flow.workflow
    async def order(wf: WorkflowContext) -> str:
        try:
            return str(await wf.do("charge", "charge"))
        except WorkflowCancelled as cancelled:
            await wf.do("refund", "refund", cancelled.reason or "")
            raise

    run_id = service.start("order")
    message = queue.receive()
    assert message is not None
    dispatcher.run_message(message.body)  # the pass queues charge's job

    run = service.cancel(run_id, "out of stock")
    assert run.status is RunStatus.RUNNING  # remote: requested, the cleanup is queued
    results = [r for _, r in drain(queue, dispatcher)]

    assert JobResult.SKIPPED in results  # charge's job, refused
    run = service.get_run(run_id)
    assert run.status is RunStatus.CANCELLED
    assert run.error is not None
    assert run.error.message == "out of stock"
    assert calls == {"refund: out of stock": 1}
    assert [(k, s) for k, s, _ in _attempts(service, run_id)] == [
        ("charge", StepStatus.CANCELLED),
        ("refund", StepStatus.SUCCEEDED),
    ]

"""Callbacks, conditions and resume payloads in remote mode, in one process (issue 12).

A completion commits in one statement and queues one orchestration message; it never runs the
workflow in the caller. Timeouts are timers (delayed messages), like sleeps.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from lambda_flow import (
    CallbackConflict,
    Flow,
    PostgresStore,
    RunStatus,
    WorkflowContext,
    WorkflowService,
)
from lambda_flow.testing import TimeSkippingClock
from lambda_flow.transport.local import LocalQueue
from lambda_flow.worker import Dispatcher
from tests.functional.worker.test_remote import drain


@pytest.fixture
def paying(flow: Flow) -> None:
    @flow.function
    def submit(request: dict[str, Any]) -> str:
        return str(request["callback_id"])

    @flow.workflow
    async def pay(wf: WorkflowContext, data: dict[str, Any]) -> Any:
        return await wf.wait_for_callback(
            "paid", submit, data, timeout=data.get("timeout"), heartbeat_timeout=data.get("beat")
        )


def _pending_id(service: WorkflowService, run_id: str) -> str:
    run = service.get_run(run_id)
    assert run is not None
    callback_id = run.pending[0].callback_id
    assert callback_id is not None
    return callback_id


def test_completion_is_one_statement_and_one_orchestration_message(
    paying: None, remote: tuple[WorkflowService, Dispatcher], queue: LocalQueue,
    store: PostgresStore,
) -> None:  # fmt: skip
    service, dispatcher = remote
    run_id = service.start("pay", {"amount": 3})
    drain(queue, dispatcher, skip_time=False)
    run = service.get_run(run_id)
    assert run is not None
    assert run.status is RunStatus.RUNNING
    callback_id = _pending_id(service, run_id)

    before, sent = store.stats.round_trips, len(queue.messages)
    service.complete_callback(callback_id, {"ok": True})
    assert store.stats.round_trips - before == 1  # the bench target is at most 2
    assert [(m.queue, json.loads(m.body)) for m in queue.messages[sent:]] == [
        ("orchestrator", {"run_id": run_id})
    ]
    run = service.get_run(run_id)
    assert run is not None
    assert run.status is RunStatus.RUNNING

    before = store.stats.round_trips
    service.complete_callback(callback_id, {"ok": True})  # a repeat: one more read, no message
    assert store.stats.round_trips - before == 2
    assert len(queue.messages) == sent + 1

    drain(queue, dispatcher, skip_time=False)
    run = service.get_run(run_id)
    assert run is not None
    assert (run.status, run.output) == (RunStatus.COMPLETED, {"ok": True})


def test_a_timeout_is_a_delayed_message(
    paying: None, remote: tuple[WorkflowService, Dispatcher], queue: LocalQueue,
    clock: TimeSkippingClock,
) -> None:  # fmt: skip
    service, dispatcher = remote
    run_id = service.start("pay", {"timeout": "10min"})
    drain(queue, dispatcher, skip_time=False)
    assert queue.next_delivery() == clock.now() + timedelta(minutes=10)
    callback_id = _pending_id(service, run_id)
    drain(queue, dispatcher)  # skips the clock to the timer
    run = service.get_run(run_id)
    assert run is not None
    assert run.status is RunStatus.FAILED
    assert run.error is not None
    assert "CallbackTimedOut" in run.error.message
    with pytest.raises(CallbackConflict, match="timed out"):
        service.complete_callback(callback_id, 1)


def test_a_heartbeat_moves_the_deadline_and_the_early_timer_rearms(
    paying: None, remote: tuple[WorkflowService, Dispatcher], queue: LocalQueue,
    clock: TimeSkippingClock,
) -> None:  # fmt: skip
    service, dispatcher = remote
    run_id = service.start("pay", {"timeout": "1h", "beat": "10min"})
    drain(queue, dispatcher, skip_time=False)
    callback_id = _pending_id(service, run_id)
    sent = len(queue.messages)
    clock.advance("5min")
    service.heartbeat_callback(callback_id)
    assert len(queue.messages) == sent  # a heartbeat queues nothing
    clock.advance("5min")  # the first timer fires: the pass re-arms for the moved deadline
    drain(queue, dispatcher, skip_time=False)
    run = service.get_run(run_id)
    assert run is not None
    assert run.status is RunStatus.RUNNING
    assert run.wake_at == clock.now() + timedelta(minutes=5)
    service.complete_callback(callback_id, "done")
    drain(queue, dispatcher, skip_time=False)
    run = service.get_run(run_id)
    assert run is not None
    assert run.output == "done"


def test_a_waiting_callback_is_not_swept_as_stuck(
    paying: None, remote: tuple[WorkflowService, Dispatcher], queue: LocalQueue,
    clock: TimeSkippingClock,
) -> None:  # fmt: skip
    service, dispatcher = remote
    service.start("pay", {})
    drain(queue, dispatcher, skip_time=False)
    clock.advance("1h")
    assert dispatcher.sweep().runs == []


def test_condition_polls_are_timers(
    flow: Flow, remote: tuple[WorkflowService, Dispatcher], queue: LocalQueue,
    clock: TimeSkippingClock,
) -> None:  # fmt: skip
    service, dispatcher = remote

    @flow.workflow
    async def poll(wf: WorkflowContext) -> Any:
        return await wf.wait_for_condition(
            "job", lambda n: n + 1, initial_state=0, until=lambda n: n >= 3, interval="1min"
        )

    run_id = service.start("poll")
    start = clock.now()
    drain(queue, dispatcher)
    run = service.get_run(run_id)
    assert run is not None
    assert run.output == 3
    assert clock.now() - start == timedelta(minutes=2)


def test_resume_payload_in_remote_mode(
    flow: Flow, remote: tuple[WorkflowService, Dispatcher], queue: LocalQueue
) -> None:
    service, dispatcher = remote

    @flow.workflow
    async def approval(wf: WorkflowContext) -> Any:
        return await wf.suspend("approve")

    run_id = service.start("approval")
    drain(queue, dispatcher)
    service.resume(run_id, {"approved": True})
    drain(queue, dispatcher)
    run = service.get_run(run_id)
    assert run is not None
    assert run.output == {"approved": True}

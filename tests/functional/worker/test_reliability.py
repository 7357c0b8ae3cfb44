"""Nothing lost and nothing wrong: the defects the chaos harness found (issue 9), each as the
minimal reproduction that failed before it was fixed.

Remote mode runs in-process here (``LocalQueue`` + the dispatcher the Lambda handlers use);
``tests/e2e/test_queues.py`` covers the same through the real handlers on moto.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from lambda_flow import (
    Flow,
    NonDeterminismError,
    PostgresStore,
    RunStatus,
    StepFailed,
    StepInterrupted,
    StepStatus,
    WorkflowContext,
    WorkflowService,
)
from lambda_flow.testing import SimulatedCrash, TimeSkippingClock, replay_history
from lambda_flow.transport.base import StepJob
from lambda_flow.transport.local import LocalQueue
from lambda_flow.worker import Dispatcher
from tests.functional.worker.test_remote import deliver, drain


def attempts(service: WorkflowService, run_id: str) -> list[tuple[str, int, StepStatus, str]]:
    return [
        (a.step_key, a.attempt, a.status, a.error.type if a.error else "")
        for a in service.get_run_history(run_id)
    ]


# -- 1. a step that kills its process ends its run instead of looping -------------------------
def test_an_rpc_step_that_kills_every_worker_fails_its_run_after_its_retries(
    flow: Flow, remote: Any, queue: LocalQueue, clock: TimeSkippingClock
) -> None:
    service, dispatcher = remote
    executions: Counter[str] = Counter()

    @flow.function
    def explode() -> str:
        executions["explode"] += 1
        raise SimulatedCrash("out of memory")  # the worker process dies every time

    @flow.workflow
    async def poison(wf: WorkflowContext) -> str:
        try:
            return str(await wf.do("Explode", explode, retries=2))
        except StepInterrupted as exc:  # a StepFailed: the workflow may handle it
            return f"gave up after {exc.attempts}: {exc.error_type}"

    run_id = service.start("poison")
    for _ in range(10):  # bounded: before the fix this looped forever
        if service.get_run(run_id).status is not RunStatus.RUNNING:
            break
        try:
            drain(queue, dispatcher)
        except SimulatedCrash:
            clock.advance("6min")  # the dead worker's claim expires; the message died with it
            dispatcher.sweep()

    run = service.get_run(run_id)
    assert run is not None
    assert run.output == "gave up after 3: StepInterrupted"
    assert executions == {"explode": 3}
    assert attempts(service, run_id) == [
        ("Explode", n, StepStatus.FAILED, "StepInterrupted") for n in (1, 2, 3)
    ]


def test_an_uncaught_interrupted_step_fails_the_run_naming_the_reason(
    flow: Flow, remote: Any, queue: LocalQueue, clock: TimeSkippingClock
) -> None:
    service, dispatcher = remote

    @flow.function
    def explode() -> str:
        raise SimulatedCrash("segfault")

    @flow.workflow
    async def poison(wf: WorkflowContext) -> str:
        return str(await wf.do("Explode", explode))

    run_id = service.start("poison")
    with pytest.raises(SimulatedCrash):
        drain(queue, dispatcher)
    clock.advance("6min")
    dispatcher.sweep()
    drain(queue, dispatcher)

    run = service.get_run(run_id)
    assert run is not None
    assert run.status is RunStatus.FAILED
    assert run.error is not None
    assert run.error.type == "StepInterrupted"
    assert "never finished" in run.error.message


def test_an_inline_step_that_kills_the_orchestrator_fails_its_run_after_its_retries(
    flow: Flow, service: WorkflowService, clock: TimeSkippingClock
) -> None:
    executions: Counter[str] = Counter()

    def explode() -> str:
        executions["explode"] += 1
        raise SimulatedCrash("killed by the OOM killer")

    @flow.workflow
    async def poison(wf: WorkflowContext) -> str:
        await wf.do("Before", lambda: "fine")
        return str(await wf.do("Explode", explode, retries=1))

    with pytest.raises(SimulatedCrash):
        service.start("poison")
    [run] = service.list_runs()
    for _ in range(10):  # bounded: before the fix every pass re-ran the step, forever
        clock.advance("31s")  # the dead pass's lease expires
        try:
            service.resume(run.id)
        except SimulatedCrash:
            continue
        break

    ended = service.get_run(run.id)
    assert ended is not None
    assert ended.status is RunStatus.FAILED
    assert ended.error is not None
    assert "StepInterrupted" in ended.error.message
    # The first crash is unknown to the store (an inline step's start costs no commit); the
    # pass after it records each start, so the next crashes count as interrupted attempts.
    assert executions == {"explode": 3}
    assert attempts(service, run.id) == [
        ("Before", 1, StepStatus.SUCCEEDED, ""),
        ("Explode", 1, StepStatus.FAILED, "StepInterrupted"),
        ("Explode", 2, StepStatus.FAILED, "StepInterrupted"),
    ]


def test_a_pass_recovering_from_a_crash_still_completes_healthy_steps_once(
    flow: Flow, service: WorkflowService, clock: TimeSkippingClock
) -> None:
    executions: Counter[str] = Counter()
    crash = [True]

    def flaky_process() -> str:
        executions["flaky"] += 1
        if crash.pop() if crash else False:
            raise SimulatedCrash("the host went away")
        return "ok"

    @flow.workflow
    async def recovering(wf: WorkflowContext) -> list[str]:
        a = await wf.do("A", flaky_process)
        b = await wf.do("B", lambda: executions.update(["b"]) or "b")
        return [str(a), str(b)]

    with pytest.raises(SimulatedCrash):
        service.start("recovering")
    [run] = service.list_runs()
    clock.advance("31s")
    service.resume(run.id)

    assert service.get_run(run.id).output == ["ok", "b"]  # type: ignore[union-attr]
    assert executions == {"flaky": 2, "b": 1}
    assert [(k, n, s) for k, n, s, _ in attempts(service, run.id)] == [
        ("A", 1, StepStatus.SUCCEEDED),
        ("B", 1, StepStatus.SUCCEEDED),
    ]


# -- 2. a committed result always leads to a pass promptly ------------------------------------
@pytest.fixture
def gathered(flow: Flow) -> Counter[str]:
    calls: Counter[str] = Counter()

    @flow.function
    def fetch() -> str:
        calls["fetch"] += 1
        return "data"

    @flow.function
    def store_it(data: str) -> str:
        calls["store_it"] += 1
        return f"stored {data}"

    @flow.workflow
    async def fan(wf: WorkflowContext) -> list[Any]:
        async def fetch_then_store() -> str:
            data = await wf.do("Fetch", fetch)
            return str(await wf.do("Store", store_it, data))

        return list(await asyncio.gather(fetch_then_store(), wf.sleep("Long nap", "10min")))

    return calls


def _worker_dies_after_committing(
    service: WorkflowService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The next hand-over after a committed result dies with its process.

    The statement that stored the result took the run's lease for the worker's pass (issue 14:
    no separate acquire), so the dead worker leaves that lease to expire.
    """

    async def killed(engine: Any, run_id: str, **_: Any) -> None:
        monkeypatch.undo()
        raise SimulatedCrash("worker killed after committing the step's result")

    monkeypatch.setattr(type(service.engine), "continue_run", killed)


def test_a_redelivered_job_of_a_committed_step_drives_the_run_once_the_lease_expires(
    remote: Any,
    queue: LocalQueue,
    clock: TimeSkippingClock,
    gathered: Counter[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    service, dispatcher = remote
    run_id = service.start("fan")
    deliver(dispatcher, queue.receive())  # the pass: Fetch queued, Long nap timed
    job = queue.receive("step")
    assert job is not None
    _worker_dies_after_committing(service, monkeypatch)
    with pytest.raises(SimulatedCrash):
        deliver(dispatcher, job)
    started = clock.now()

    deliver(dispatcher, job)  # redelivered while the dead worker's lease on the run holds
    assert gathered == {"fetch": 1}
    clock.advance(service.engine.lease_ttl)
    deliver(dispatcher, job)  # SQS redelivers the message the dead worker never deleted
    drain(queue, dispatcher, skip_time=False)

    assert gathered == {"fetch": 1, "store_it": 1}  # Store ran without waiting for the nap
    assert clock.now() == started + service.engine.lease_ttl
    steps = {a.step_key: a.status for a in service.get_run_history(run_id)}
    assert steps["Store"] is StepStatus.SUCCEEDED


def test_a_committed_result_whose_worker_died_is_redriven_by_the_next_sweep(
    remote: Any,
    queue: LocalQueue,
    clock: TimeSkippingClock,
    gathered: Counter[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    service, dispatcher = remote
    run_id = service.start("fan")
    deliver(dispatcher, queue.receive())
    job = queue.receive("step")
    assert job is not None
    _worker_dies_after_committing(service, monkeypatch)
    with pytest.raises(SimulatedCrash):
        deliver(dispatcher, job)  # and the message is gone for good

    assert dispatcher.sweep().runs == []  # the worker may still be handing over
    clock.advance("6s")
    assert dispatcher.sweep().runs == []  # it holds the run's lease (taken with the result)
    clock.advance(service.engine.lease_ttl)
    assert dispatcher.sweep().runs == [run_id]  # not only when the 10-minute nap is due
    drain(queue, dispatcher, skip_time=False)

    assert gathered == {"fetch": 1, "store_it": 1}
    assert clock.now() < service.get_run(run_id).created_at + timedelta(minutes=1)  # type: ignore[union-attr]
    drain(queue, dispatcher)
    assert service.get_run(run_id).status is RunStatus.COMPLETED  # type: ignore[union-attr]


# -- 5. a backlog is not multiplied by the sweeper -------------------------------------------
@pytest.fixture
def idle(flow: Flow) -> str:
    @flow.workflow
    async def idle(wf: WorkflowContext) -> str:
        return "done"

    return "idle"


def test_sweepers_do_not_multiply_a_backlog_of_queued_runs(
    flow: Flow, store: PostgresStore, clock: TimeSkippingClock, idle: str
) -> None:
    queue = LocalQueue(clock)  # one queue, four racing runtimes sweeping it
    services = [WorkflowService(flow, store=store, queue=queue, clock=clock) for _ in range(4)]
    sweepers = [Dispatcher(s) for s in services]
    run_ids = [services[0].start(idle) for _ in range(50)]  # 50 messages wait in a backlog

    for _ in range(10):  # ten minutes of sweeping by four sweepers, once a minute each
        clock.advance("1min")
        for sweeper in sweepers:
            sweeper.sweep()

    assert queue.sent == len(run_ids)  # before: 9 sweeps x 4 sweepers x 50 runs extra
    for _ in range(len(run_ids)):  # the backlog drains
        message = queue.receive()
        assert message is not None
        deliver(sweepers[0], message)
    assert {store.get_run(r).status for r in run_ids} == {RunStatus.COMPLETED}  # type: ignore[union-attr]


def test_a_backlog_older_than_the_bound_is_redriven_with_growing_waits(
    flow: Flow, store: PostgresStore, clock: TimeSkippingClock, idle: str
) -> None:
    queue = LocalQueue(clock)
    services = [WorkflowService(flow, store=store, queue=queue, clock=clock) for _ in range(4)]
    sweepers = [Dispatcher(s) for s in services]
    run_ids = [services[0].start(idle) for _ in range(20)]

    for _ in range(60):  # an hour of a backlog that never drains
        clock.advance("1min")
        for sweeper in sweepers:
            sweeper.sweep()

    per_run = Counter(json.loads(m.body)["run_id"] for m in queue.messages)
    # Each run: its own message, then re-driven at 15 and 45 minutes (the wait doubles after
    # each re-drive no pass followed), never by two sweepers at once.
    assert set(per_run) == set(run_ids)
    assert set(per_run.values()) == {3}


def test_a_run_whose_first_message_was_lost_is_redriven_once_per_period(
    flow: Flow, store: PostgresStore, clock: TimeSkippingClock, queue: LocalQueue, idle: str
) -> None:
    service = WorkflowService(flow, store=store, queue=queue, clock=clock)
    dispatcher = Dispatcher(service)
    run_id = service.start(idle)
    queue.messages.clear()  # the message was lost

    clock.advance("2min")
    assert dispatcher.sweep().runs == [run_id]
    assert dispatcher.sweep().runs == []  # a second sweeper at the same moment sends nothing
    clock.advance("1min")
    assert dispatcher.sweep().runs == []
    drain(queue, dispatcher)
    assert service.get_run(run_id).status is RunStatus.COMPLETED  # type: ignore[union-attr]


# -- 6. `finally:` runs durable steps only when the body really ends --------------------------
def test_a_finally_block_records_nothing_when_a_pass_merely_waits(
    flow: Flow, remote: Any, queue: LocalQueue
) -> None:
    service, dispatcher = remote
    effects: Counter[str] = Counter()

    @flow.workflow
    async def order(wf: WorkflowContext) -> str:
        try:
            await wf.sleep("Wait for stock", "10min")
            await wf.do("Ship", lambda: effects.update(["ship"]) or "shipped")
        finally:
            await wf.do("Release hold", lambda: effects.update(["release"]) or "released")
            await wf.sleep("Cool down", "1min")  # hung the pass before the fix
        return "ok"

    run_id = service.start("order")
    deliver(dispatcher, queue.receive())  # the first pass ends at the sleep

    assert effects == {}
    assert [a.step_key for a in service.get_run_history(run_id)] == ["Wait for stock"]
    assert service.get_run(run_id).status is RunStatus.RUNNING  # type: ignore[union-attr]

    drain(queue, dispatcher)
    assert service.get_run(run_id).output == "ok"  # type: ignore[union-attr]
    assert effects == {"ship": 1, "release": 1}
    assert [a.step_key for a in service.get_run_history(run_id)] == [
        "Wait for stock", "Ship", "Release hold", "Cool down",
    ]  # fmt: skip


def test_a_finally_block_cannot_cancel_a_run_that_only_waits(
    flow: Flow, service: WorkflowService, clock: TimeSkippingClock
) -> None:
    @flow.workflow
    async def approval(wf: WorkflowContext) -> str:
        try:
            await wf.suspend("Needs approval")
        finally:
            await wf.cancel("unwound")
        return "approved"

    run_id = service.start("approval")
    assert service.get_run(run_id).status is RunStatus.SUSPENDED  # type: ignore[union-attr]


# -- 7. the replay check refuses code that runs past a completed history -----------------------
def test_replay_fails_when_the_code_goes_on_past_a_completed_history(
    flow: Flow, service: WorkflowService, tmp_path: Path
) -> None:
    @flow.workflow
    async def short(wf: WorkflowContext) -> str:
        await wf.do("One", lambda: 1)
        return "done"

    run_id = service.start("short")
    history = service.export_run(run_id)
    assert replay_history(flow, history) is RunStatus.COMPLETED

    changed = Flow()

    @changed.workflow
    async def short(wf: WorkflowContext) -> str:  # type: ignore[no-redef]  # noqa: F811
        await wf.do("One", lambda: 1)
        await wf.do("Two", lambda: 2)  # new code after the point where the run completed
        return "done"

    with pytest.raises(NonDeterminismError) as raised:
        replay_history(changed, history)
    assert raised.value.step_key == "Two"
    assert "completed" in str(raised.value)


def test_replay_of_a_run_failed_from_outside_may_end_running(
    flow: Flow, remote: Any, queue: LocalQueue
) -> None:
    service, _ = remote

    @flow.workflow
    async def napper(wf: WorkflowContext) -> str:
        await wf.sleep("Nap", "1h")
        return "done"

    run_id = service.start("napper")
    service.cancel(run_id, "no longer needed")
    assert replay_history(flow, service.export_run(run_id)) is RunStatus.RUNNING


# -- 9. cancel leaves no step pending ---------------------------------------------------------
def test_cancel_marks_every_waiting_step_cancelled(
    flow: Flow, remote: Any, queue: LocalQueue, db: psycopg.Connection[Any]
) -> None:
    service, dispatcher = remote

    @flow.function
    def slow() -> str:
        return "late"

    @flow.workflow
    async def waiting(wf: WorkflowContext) -> None:
        await asyncio.gather(wf.suspend("Approve"), wf.do("Slow", slow), wf.sleep("Nap", "1h"))

    run_id = service.start("waiting")
    deliver(dispatcher, queue.receive("orchestrator"))
    assert {a.status for a in service.get_run_history(run_id)} == {
        StepStatus.PENDING,
        StepStatus.SCHEDULED,
    }

    service.cancel(run_id, "customer left")

    assert {a.step_key: a.status for a in service.get_run_history(run_id)} == {
        "Approve": StepStatus.CANCELLED,
        "Slow": StepStatus.CANCELLED,
        "Nap": StepStatus.CANCELLED,
    }
    rows = db.execute("SELECT DISTINCT status FROM steps").fetchall()
    assert rows == [("cancelled",)]
    # The step job still in the queue is refused: nothing runs, nothing changes.
    job = queue.receive("step")
    assert job is not None
    deliver(dispatcher, job)
    assert service.get_run(run_id).status is RunStatus.CANCELLED  # type: ignore[union-attr]


def test_an_interrupted_step_is_a_step_failed(flow: Flow) -> None:
    assert issubclass(StepInterrupted, StepFailed)
    error = StepInterrupted("Charge", 2, "StepInterrupted", "gone")
    assert (error.step_key, error.attempts, error.error_type) == ("Charge", 2, "StepInterrupted")


def test_the_sweeper_never_sends_the_same_step_job_from_two_sweepers_at_once(
    flow: Flow, remote: Any, queue: LocalQueue, clock: TimeSkippingClock
) -> None:
    service, dispatcher = remote

    @flow.function
    def work() -> str:
        return "done"

    @flow.workflow
    async def one(wf: WorkflowContext) -> str:
        return str(await wf.do("Work", work))

    run_id = service.start("one")
    deliver(dispatcher, queue.receive("orchestrator"))
    queue.messages.clear()  # the step job was never sent

    clock.advance("3min")
    assert dispatcher.sweep().step_jobs == [StepJob(run_id, "Work", 1)]
    assert dispatcher.sweep().step_jobs == []  # stamped: the next sweeper waits its turn

"""Remote mode in one process: jobs move through an in-process queue with SQS's contract, and the
same dispatcher the Lambda handlers use consumes them."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest

from lambda_flow import (
    Flow,
    InvalidRunState,
    PostgresStore,
    RunStatus,
    StepStatus,
    WorkflowContext,
    WorkflowService,
    current_step,
)
from lambda_flow.core import InvalidMessage
from lambda_flow.testing import SimulatedCrash, TimeSkippingClock
from lambda_flow.transport.base import StepJob
from lambda_flow.transport.local import LocalMessage, LocalQueue
from lambda_flow.worker import Dispatcher, JobResult


def drain(
    queue: LocalQueue, dispatcher: Dispatcher, *, limit: int = 500, skip_time: bool = True
) -> list[tuple[LocalMessage, Any]]:
    """Deliver every message, skipping the clock ahead to delayed ones."""
    handled: list[tuple[LocalMessage, Any]] = []
    clock = dispatcher.service.clock
    assert isinstance(clock, TimeSkippingClock)
    for _ in range(limit):
        message = queue.receive()
        if message is None:
            upcoming = queue.next_delivery()
            if upcoming is None or not skip_time:
                return handled
            clock.advance(max(upcoming - clock.now(), timedelta(0)))
            continue
        handled.append((message, deliver(dispatcher, message)))
    raise AssertionError("queue never drained")


def deliver(dispatcher: Dispatcher, message: LocalMessage) -> Any:
    if message.queue == "orchestrator":
        return dispatcher.run_message(message.body)
    return dispatcher.step_message(message.body)


@pytest.fixture
def onboarding(flow: Flow) -> Counter[str]:
    calls: Counter[str] = Counter()

    @flow.function
    def create_profile(data: dict[str, str]) -> dict[str, str]:
        calls["create_profile"] += 1
        return {"user_id": data["user_id"]}

    @flow.function
    def send_email(data: dict[str, str]) -> str:
        calls["send_email"] += 1
        step = current_step()
        assert step is not None
        if step.attempt == 1:
            raise ConnectionError("smtp down")
        return "sent"

    @flow.function
    def provision(data: dict[str, str]) -> str:
        calls["provision"] += 1
        return "ws-1"

    @flow.workflow
    async def onboard(wf: WorkflowContext, data: dict[str, str]) -> dict[str, str]:
        profile = await wf.do("Create profile", "create_profile", data)
        greeting = await wf.do("Greet", lambda: f"hi {profile['user_id']}")
        await wf.sleep("Wait", "5min")
        await wf.do("Send email", "send_email", {"to": greeting}, retries=3, retry_delay="1s")
        workspace = await wf.do("Provision", "provision", profile)
        return {"workspace": workspace}

    return calls


def test_start_stores_the_run_and_queues_one_job(
    remote: Any, queue: LocalQueue, onboarding: Counter[str]
) -> None:
    service, _ = remote

    run_id = service.start("onboard", {"user_id": "u1"})

    assert service.get_run(run_id).status is RunStatus.RUNNING
    assert [(m.queue, m.body) for m in queue.messages] == [
        ("orchestrator", f'{{"run_id":"{run_id}"}}')
    ]
    assert onboarding == {}


def test_onboarding_runs_to_completion_through_the_queues(
    remote: Any, queue: LocalQueue, onboarding: Counter[str]
) -> None:
    service, dispatcher = remote
    run_id = service.start("onboard", {"user_id": "u1"})

    handled = drain(queue, dispatcher)

    run = service.get_run(run_id)
    assert run.status is RunStatus.COMPLETED, run.error
    assert run.output == {"workspace": "ws-1"}
    assert onboarding == {"create_profile": 1, "send_email": 2, "provision": 1}
    history = [(h.step_name, h.attempt, h.status) for h in service.get_run_history(run_id)]
    assert history == [
        ("Create profile", 1, StepStatus.SUCCEEDED),
        ("Greet", 1, StepStatus.SUCCEEDED),
        ("Wait", 1, StepStatus.SUCCEEDED),
        ("Send email", 1, StepStatus.FAILED),
        ("Send email", 2, StepStatus.SUCCEEDED),
        ("Provision", 1, StepStatus.SUCCEEDED),
    ]
    # Happy path budget: one message and one invocation per RPC step attempt, plus the start
    # and one wake-up per timer (the sleep and the retry delay), except for a step chained by
    # the worker of the step before (Provision, the one step its pass schedules: issue 14).
    rpc_attempts, timers, chained = 4, 2, 1
    assert queue.sent == 1 + rpc_attempts - chained + timers
    assert len(handled) == queue.sent
    steps = [r for m, r in handled if m.queue == "step"]
    assert steps == [JobResult.SUCCEEDED, JobResult.RETRYING, JobResult.SUCCEEDED]


def test_gather_siblings_are_queued_in_one_pass_in_batches_of_ten(
    flow: Flow, remote: Any, queue: LocalQueue
) -> None:
    service, dispatcher = remote

    @flow.function
    def fetch(data: dict[str, int]) -> int:
        return data["id"] * 2

    @flow.workflow
    async def fan(wf: WorkflowContext) -> list[int]:
        return list(await asyncio.gather(*(wf.do(f"Get {i}", fetch, {"id": i}) for i in range(12))))

    run_id = service.start("fan")
    first = queue.receive()
    assert first is not None
    dispatcher.run_message(first.body)

    assert queue.batches == [10, 2]
    assert sorted(m.queue for m in queue.messages) == ["step"] * 12
    drain(queue, dispatcher)
    assert service.get_run(run_id).output == [i * 2 for i in range(12)]


def test_every_message_delivered_twice_changes_nothing(
    remote: Any, queue: LocalQueue, onboarding: Counter[str]
) -> None:
    service, dispatcher = remote
    run_id = service.start("onboard", {"user_id": "u1"})
    delivered: list[LocalMessage] = []

    for _ in range(200):
        message = queue.receive()
        if message is None:
            upcoming = queue.next_delivery()
            if upcoming is None:
                break
            dispatcher.service.clock.advance(upcoming - dispatcher.service.clock.now())
            continue
        for _twice in range(2):
            deliver(dispatcher, message)
        delivered.append(message)

    assert service.get_run(run_id).status is RunStatus.COMPLETED
    assert onboarding == {"create_profile": 1, "send_email": 2, "provision": 1}
    # And late: every message again, after the end.
    for message in delivered:
        handler = (
            dispatcher.run_message if message.queue == "orchestrator" else dispatcher.step_message
        )
        handler(message.body)
    assert onboarding == {"create_profile": 1, "send_email": 2, "provision": 1}
    assert len(service.get_run_history(run_id)) == 6


class DroppingQueue(LocalQueue):
    """Loses the first batch of step jobs, as if the process died between commit and send."""

    dropped: int = 0

    def enqueue_steps(self, jobs: Sequence[StepJob]) -> None:
        if not self.dropped:
            self.dropped = len(jobs)
            return
        super().enqueue_steps(jobs)


def test_a_job_lost_between_commit_and_send_is_recovered_by_the_sweeper(
    flow: Flow, store: PostgresStore, clock: TimeSkippingClock, onboarding: Counter[str]
) -> None:
    queue = DroppingQueue(clock)
    service = WorkflowService(flow, store=store, queue=queue, clock=clock)
    dispatcher = Dispatcher(service)
    run_id = service.start("onboard", {"user_id": "u1"})

    drain(queue, dispatcher)
    assert queue.dropped == 1
    assert service.get_run(run_id).status is RunStatus.RUNNING  # stuck: the job never left
    assert dispatcher.sweep().step_jobs == []  # too early to call it lost

    clock.advance("3min")
    report = dispatcher.sweep()

    assert report.step_jobs == [StepJob(run_id, "Create profile", 1)]
    drain(queue, dispatcher)
    assert service.get_run(run_id).status is RunStatus.COMPLETED
    assert onboarding == {"create_profile": 1, "send_email": 2, "provision": 1}


def test_a_worker_that_dies_mid_step_is_recovered_when_its_claim_expires(
    flow: Flow, remote: Any, queue: LocalQueue, clock: TimeSkippingClock
) -> None:
    service, dispatcher = remote
    calls: list[int] = []

    @flow.function
    def charge() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise SimulatedCrash("worker killed mid-step")
        return "charged"

    @flow.workflow
    async def pay(wf: WorkflowContext) -> str:
        return str(await wf.do("Charge", charge, retries=1))

    run_id = service.start("pay")
    with pytest.raises(SimulatedCrash):
        drain(queue, dispatcher)
    # The message died with the worker (SQS would redeliver it; assume the worst: it is gone).
    assert [h.status for h in service.get_run_history(run_id)] == [StepStatus.RUNNING]
    assert dispatcher.sweep().step_jobs == []  # the claim is still live

    clock.advance("6min")
    assert dispatcher.sweep().step_jobs == [StepJob(run_id, "Charge", 1)]
    drain(queue, dispatcher)

    # The interrupted attempt counts as a failed one; the retry ran the step again.
    assert service.get_run(run_id).output == "charged"
    assert calls == [1, 1]
    history = service.get_run_history(run_id)
    assert [(h.attempt, h.status) for h in history] == [
        (1, StepStatus.FAILED),
        (2, StepStatus.SUCCEEDED),
    ]
    assert history[0].error is not None
    assert history[0].error.type == "StepInterrupted"


def test_a_pass_that_died_holding_the_lease_is_redriven(
    flow: Flow, store: PostgresStore, clock: TimeSkippingClock, queue: LocalQueue
) -> None:
    from lambda_flow.testing import CrashBeforeWrite

    effects: Counter[str] = Counter()

    @flow.workflow
    async def two(wf: WorkflowContext) -> str:
        await wf.do("one", lambda: effects.update(["one"]))
        await wf.do("two", lambda: effects.update(["two"]))
        return "ok"

    crashing = CrashBeforeWrite(store, when=lambda w: w.key == "two")
    dying = Dispatcher(WorkflowService(flow, store=crashing, queue=queue, clock=clock))  # type: ignore[arg-type]
    healthy = Dispatcher(WorkflowService(flow, store=store, queue=queue, clock=clock))
    run_id = healthy.service.start("two")
    message = queue.receive()
    assert message is not None
    with pytest.raises(SimulatedCrash):
        dying.run_message(message.body)

    assert healthy.sweep().runs == []  # the lease has not run out yet
    clock.advance("31s")
    assert healthy.sweep().runs == [run_id]
    drain(queue, healthy)

    assert healthy.service.get_run(run_id).status is RunStatus.COMPLETED
    assert effects == {"one": 1, "two": 2}


def test_a_result_stored_during_a_pass_leads_to_another_pass(
    flow: Flow, remote: Any, queue: LocalQueue
) -> None:
    service, dispatcher = remote
    worker_results: list[JobResult] = []

    @flow.function
    def remote_part() -> str:
        return "remote"

    async def run_the_worker_meanwhile() -> str:
        # While this inline step runs, the pass has already sent the RPC sibling's job; a worker
        # finishes it now, while the pass still holds the run's lease.
        for _ in range(100):
            message = queue.receive("step")
            if message is not None:
                job = message.body
                from lambda_flow.transport.base import parse_step_message

                parsed = parse_step_message(job)
                worker_results.append(
                    await dispatcher.runner.run(parsed.run_id, parsed.step_key, parsed.attempt)
                )
                return "local"
            await asyncio.sleep(0)
        raise AssertionError("the RPC job was not sent while the inline step ran")

    @flow.workflow
    async def race(wf: WorkflowContext) -> list[str]:
        return list(
            await asyncio.gather(
                wf.do("remote", remote_part), wf.do("local", run_the_worker_meanwhile)
            )
        )

    run_id = service.start("race")
    start = queue.receive()
    assert start is not None
    dispatcher.run_message(start.body)

    assert worker_results == [JobResult.SUCCEEDED]
    # The pass noticed the result written meanwhile and ran again at once: nothing was lost,
    # and no extra message had to be delivered for the run to finish.
    assert service.get_run(run_id).status is RunStatus.COMPLETED
    assert service.get_run(run_id).output == ["remote", "local"]
    # The worker, finding the lease taken, also queued a pass; it arrives late and is harmless.
    assert [m.queue for m in queue.messages] == ["orchestrator"]
    assert dispatcher.run_message(queue.messages[0].body) is None


def test_resume_and_cancel_in_remote_mode(flow: Flow, remote: Any, queue: LocalQueue) -> None:
    service, dispatcher = remote

    @flow.workflow
    async def gate(wf: WorkflowContext) -> str:
        await wf.suspend("approve")
        return "approved"

    run_id = service.start("gate")
    drain(queue, dispatcher)
    assert service.get_run(run_id).status is RunStatus.SUSPENDED

    service.resume(run_id)
    assert service.get_run(run_id).status is RunStatus.RUNNING  # queued, not run here
    drain(queue, dispatcher)
    assert service.get_run(run_id).output == "approved"
    with pytest.raises(InvalidRunState):
        service.cancel(run_id)


def test_run_to_completion_waits_for_the_workers(
    flow: Flow, remote: Any, queue: LocalQueue, clock: TimeSkippingClock
) -> None:
    from lambda_flow import RunTimedOut

    service, dispatcher = remote

    @flow.workflow
    async def quick(wf: WorkflowContext) -> str:
        return "done"

    began = clock.now()
    with pytest.raises(RunTimedOut):
        service.run_to_completion("quick", timeout="2s")  # no worker consumes the queue here
    assert clock.now() - began == timedelta(seconds=2)
    drain(queue, dispatcher)
    assert service.list_runs()[0].status is RunStatus.COMPLETED


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "JSON object"),
        ("{}", "no run_id"),
        ('{"run_id": "abc"}', "not a UUID"),
    ],
)
def test_malformed_orchestrator_messages_are_refused(remote: Any, body: str, problem: str) -> None:
    _, dispatcher = remote
    with pytest.raises(InvalidMessage, match=problem):
        dispatcher.run_message(body)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ('{"run_id": "00000000-0000-4000-8000-000000000000"}', "no step_key"),
        (
            '{"run_id": "00000000-0000-4000-8000-000000000000", "step_key": "x", "attempt": 0}',
            "attempt must be",
        ),
    ],
)
def test_malformed_step_messages_are_refused(remote: Any, body: str, problem: str) -> None:
    _, dispatcher = remote
    with pytest.raises(InvalidMessage, match=problem):
        dispatcher.step_message(body)


def test_a_job_for_an_unknown_run_does_nothing(remote: Any) -> None:
    _, dispatcher = remote
    body = '{"run_id": "00000000-0000-4000-8000-000000000000", "step_key": "x", "attempt": 1}'
    assert dispatcher.step_message(body) is JobResult.SKIPPED
    assert dispatcher.run_message('{"run_id": "00000000-0000-4000-8000-000000000000"}') is None

"""Chained steps (issue 14): a step worker whose pass schedules exactly one RPC step claims and
runs it itself, in the same invocation, without a message; fan-out still goes through the queue;
the chain stops when the invocation's time runs short; a worker dying mid-chain is recovered by
the step's claim expiring."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest

from lambda_flow import (
    Flow,
    PostgresStore,
    RetryPolicy,
    RunStatus,
    StepStatus,
    WorkflowContext,
    WorkflowService,
)
from lambda_flow.testing import SimulatedCrash, TimeSkippingClock
from lambda_flow.transport.local import LocalQueue
from lambda_flow.worker import Dispatcher, JobResult
from tests.functional.worker.test_remote import deliver, drain


class CountingQueue(LocalQueue):
    def __init__(self, clock: TimeSkippingClock) -> None:
        super().__init__(clock)
        self.step_jobs: list[str] = []

    def enqueue_steps(self, jobs: Any) -> None:
        jobs = list(jobs)
        self.step_jobs += [job.step_key for job in jobs]
        super().enqueue_steps(jobs)


@pytest.fixture
def rig(
    flow: Flow, store: PostgresStore, clock: TimeSkippingClock
) -> tuple[WorkflowService, Dispatcher, CountingQueue]:
    queue = CountingQueue(clock)
    service = WorkflowService(flow, store=store, queue=queue, clock=clock)
    return service, Dispatcher(service, step_timeout=timedelta(minutes=5)), queue


@pytest.fixture
def calls(flow: Flow) -> Counter[str]:
    counted: Counter[str] = Counter()

    @flow.function(retry=RetryPolicy(max_attempts=2, initial_delay="1s"))
    def work(name: str) -> str:
        counted[name] += 1
        return name.upper()

    @flow.workflow
    async def sequence(wf: WorkflowContext) -> list[str]:
        return [await wf.do(f"Step {n}", work, f"s{n}") for n in range(5)]

    @flow.workflow
    async def fan(wf: WorkflowContext) -> list[str]:
        first = await wf.do("First", work, "first")
        rest = await asyncio.gather(*(wf.do(f"Leg {n}", work, f"leg{n}") for n in range(3)))
        return [first, *rest]

    return counted


def test_a_sequential_run_is_chained_by_the_worker_of_its_first_step(
    rig: Any, calls: Counter[str]
) -> None:
    service, dispatcher, queue = rig
    run_id = service.start("sequence")

    handled = drain(queue, dispatcher)

    run = service.get_run(run_id)
    assert run is not None
    assert run.status is RunStatus.COMPLETED, run.error
    assert run.output == ["S0", "S1", "S2", "S3", "S4"]
    assert calls == {f"s{n}": 1 for n in range(5)}
    assert queue.step_jobs == ["Step 0"]  # the other four were chained: no message
    assert [m.queue for m, _ in handled] == ["orchestrator", "step"]
    history = [(a.step_key, a.attempt, a.status) for a in service.get_run_history(run_id)]
    assert history == [(f"Step {n}", 1, StepStatus.SUCCEEDED) for n in range(5)]


def test_fan_out_still_goes_through_the_queue(rig: Any, calls: Counter[str]) -> None:
    service, dispatcher, queue = rig
    run_id = service.start("fan")

    drain(queue, dispatcher)

    assert service.get_run(run_id).output == ["FIRST", "LEG0", "LEG1", "LEG2"]  # type: ignore[union-attr]
    # The start's pass (an orchestrator, which never chains) sends First; First's worker's pass
    # schedules three legs at once: siblings run in parallel, each from a message.
    assert queue.step_jobs == ["First", "Leg 0", "Leg 1", "Leg 2"]


def test_the_chain_stops_when_the_invocation_runs_short_of_time(
    rig: Any, calls: Counter[str]
) -> None:
    service, dispatcher, queue = rig
    run_id = service.start("sequence")
    deliver(dispatcher, queue.receive())  # type: ignore[arg-type] - the start's pass

    job = queue.receive("step")
    assert job is not None
    # A minute left of a five-minute step timeout: not enough for another step.
    assert dispatcher.step_message(job.body, remaining=lambda: timedelta(minutes=1)) is (
        JobResult.SUCCEEDED
    )
    assert queue.step_jobs == ["Step 0", "Step 1"]  # Step 1 went to the queue
    job = queue.receive("step")
    assert job is not None
    dispatcher.step_message(job.body, remaining=lambda: timedelta(minutes=5))  # plenty: chains
    drain(queue, dispatcher)

    assert service.get_run(run_id).status is RunStatus.COMPLETED  # type: ignore[union-attr]
    assert queue.step_jobs == ["Step 0", "Step 1"]
    assert calls == {f"s{n}": 1 for n in range(5)}


def test_a_worker_dying_mid_chain_is_recovered_through_the_steps_claim(
    clock: TimeSkippingClock,
    rig: Any,
    calls: Counter[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    service, dispatcher, queue = rig
    run_id = service.start("sequence")
    deliver(dispatcher, queue.receive())  # type: ignore[arg-type]
    job = queue.receive("step")
    assert job is not None

    # The worker is killed right after its pass claimed Step 1 for it, before running it.
    original = type(dispatcher.runner)._step

    async def dies_on_step_1(self: Any, claim: Any, chain: Any) -> Any:
        if claim.step_key == "Step 1":
            raise SimulatedCrash("worker killed before running its chained step")
        return await original(self, claim, chain)

    monkeypatch.setattr(type(dispatcher.runner), "_step", dies_on_step_1)
    with pytest.raises(SimulatedCrash):
        deliver(dispatcher, job)
    monkeypatch.undo()
    assert calls == {"s0": 1}
    steps = {s["step_key"]: s["status"] for s in service.export_run(run_id)["steps"]}
    assert steps == {"Step 0": "succeeded", "Step 1": "running"}  # claimed, never run

    clock.advance("6min")  # the claim expires; the sweeper sends the step's job again
    assert [j.step_key for j in dispatcher.sweep().step_jobs] == ["Step 1"]
    drain(queue, dispatcher)

    run = service.get_run(run_id)
    assert run is not None
    assert run.status is RunStatus.COMPLETED, run.error
    # Its interrupted attempt counts as failed (invariant 10); the retry ran it once.
    attempts = [(a.attempt, a.status) for a in service.get_run_history(run_id)
                if a.step_key == "Step 1"]  # fmt: skip
    assert attempts == [(1, StepStatus.FAILED), (2, StepStatus.SUCCEEDED)]
    assert calls == {f"s{n}": 1 for n in range(5)}

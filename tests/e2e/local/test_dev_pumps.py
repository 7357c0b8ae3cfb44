"""``lambda-flow dev``'s queue pumps: sized by the caller, idle without polling (issue 14).

The runtime runs in this process on the test database. Nothing here asserts how fast a run
goes; the tests check what the threads do: a run of sequential RPC steps completes with a single
thread per pool, and once the work is done every pump thread is blocked in its queue's long poll
(woken by the next send) rather than spinning or sleeping between looks.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest

from lambda_flow import Flow, RunStatus, WorkflowContext
from lambda_flow.local.dev import DevRuntime

STEPS = 5
PATIENCE = 60.0
"""Seconds a test waits for something that must happen (only reached on a failure)."""

flow = Flow()


@flow.function
def bump(n: int) -> int:
    return n + 1


@flow.workflow
async def sequential(wf: WorkflowContext, data: dict[str, Any]) -> int:
    n = 0
    for i in range(int(data["steps"])):
        n = await wf.do(f"step {i}", bump, n)
    return n


def _until(condition: Callable[[], bool], what: str) -> None:
    tick = threading.Event()
    for _ in range(int(PATIENCE / 0.005)):
        if condition():
            return
        tick.wait(0.005)
    raise AssertionError(f"never happened: {what}")


@pytest.fixture
def runtime(database_url: str, schema: str, request: pytest.FixtureRequest) -> Iterator[DevRuntime]:
    workers, orchestrators = request.param
    with DevRuntime(
        flow,
        database_url=database_url,
        schema=schema,
        port=0,
        sweep_every=timedelta(minutes=10),
        step_workers=workers,
        orchestrators=orchestrators,
    ) as running:
        yield running


@pytest.mark.parametrize("runtime", [(1, 1), (3, 2)], indirect=True, ids=["1x1", "3x2"])
def test_sequential_rpc_steps_complete_and_the_pumps_go_back_to_their_long_poll(
    runtime: DevRuntime,
) -> None:
    service, queue = runtime.service, runtime.local_queue
    assert queue is not None
    workers = sum(1 for p in runtime.pumps if p.function == "StepWorker")
    orchestrators = len(runtime.pumps) - workers

    sent = queue.sent
    run_id = service.start("sequential", {"steps": STEPS})

    _until(lambda: service.get_run(run_id).status is RunStatus.COMPLETED, "the run completed")
    assert service.get_run(run_id).output == STEPS
    # A step worker chains the run's next step itself (its invocation has the StepWorker's
    # whole timeout, as on AWS): the steps do not each go through the queue.
    assert queue.sent - sent < STEPS
    history = service.get_run_history(run_id)
    assert [a.step_key for a in history] == [f"step {i}" for i in range(STEPS)]
    # Idle: every pump thread blocked on its queue, waiting for a send.
    _until(
        lambda: (
            (queue.receivers_waiting("step"), queue.receivers_waiting("orchestrator"))
            == (workers, orchestrators)
        ),
        "every pump blocked in its long poll",
    )
    assert queue.visible("step") == queue.visible("orchestrator") == 0

    again = service.start("sequential", {"steps": STEPS})  # a send wakes them up again

    _until(lambda: service.get_run(again).status is RunStatus.COMPLETED, "the second run")


@pytest.mark.parametrize("runtime", [(2, 1)], indirect=True, ids=["2x1"])
def test_stop_releases_pumps_blocked_in_their_long_poll(runtime: DevRuntime) -> None:
    queue = runtime.local_queue
    assert queue is not None
    _until(lambda: queue.receivers_waiting("step") == 2, "the step pumps idle")
    threads = [t for t in runtime._threads if t.name.startswith("lf-StepWorker")]
    assert len(threads) == 2

    runtime.stop()

    for thread in threads:
        thread.join(PATIENCE)
        assert not thread.is_alive()

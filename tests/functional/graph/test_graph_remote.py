"""Graph workflows in remote mode, in one process: jobs move through a LocalQueue and the same
Dispatcher the Lambda handlers use consumes them."""

from __future__ import annotations

import random
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest

from lambda_flow import (
    Flow,
    PostgresStore,
    RunStatus,
    WorkflowService,
    branch,
    current_step,
)
from lambda_flow.testing import TimeSkippingClock
from lambda_flow.transport.local import LocalQueue
from lambda_flow.worker import Dispatcher, JobResult


def _run(service: WorkflowService, run_id: str) -> Any:
    run = service.get_run(run_id)
    assert run is not None
    return run


def _drain(queue: LocalQueue, dispatcher: Dispatcher) -> list[Any]:
    handled = []
    clock = dispatcher.service.clock
    assert isinstance(clock, TimeSkippingClock)
    for _ in range(200):
        message = queue.receive()
        if message is None:
            upcoming = queue.next_delivery()
            if upcoming is None:
                return handled
            clock.advance(max(upcoming - clock.now(), timedelta(0)))
            continue
        if message.queue == "orchestrator":
            handled.append(dispatcher.run_message(message.body))
        else:
            handled.append(dispatcher.step_message(message.body))
    raise AssertionError("queue never drained")


@pytest.fixture
def remote(
    flow: Flow, store: PostgresStore, clock: TimeSkippingClock
) -> tuple[WorkflowService, Dispatcher, LocalQueue]:
    queue = LocalQueue(clock)
    service = WorkflowService(flow, store=store, queue=queue, clock=clock)
    return service, Dispatcher(service), queue


def test_a_graph_runs_through_the_queues_with_fan_out_queued_in_one_pass(
    flow: Flow, remote: tuple[WorkflowService, Dispatcher, LocalQueue]
) -> None:
    service, dispatcher, queue = remote
    calls: Counter[str] = Counter()

    @flow.function
    def part(data: Any) -> str:
        step = current_step()
        assert step is not None
        calls[step.step_name] += 1
        if step.step_name == "c" and step.attempt == 1:
            raise ConnectionError("flaky")
        if step.step_name == "start":
            branch("go")
        return step.step_name

    flow.graph(
        "remote_fan",
        nodes={"start": part, "b": part, "c": part, "d": part, "join": part},
        config={
            "start": {"next": {"go": ["b", "c", "d"]}},
            "b": {"next": "join"},
            "c": {"next": "join", "retries": 1},
            "d": {"next": "join"},
        },
    )

    run_id = service.start("remote_fan")
    _drain(queue, dispatcher)

    run = _run(service, run_id)
    assert run.status is RunStatus.COMPLETED, run.error
    assert run.output == {"join": "join"}
    assert calls == {"start": 1, "b": 1, "c": 2, "d": 1, "join": 1}
    # start, then b/c/d in one batch from one pass; c's retry and then the join are each the
    # one step a worker's pass scheduled: that worker runs it itself (chained, no message).
    assert queue.batches == [1, 3]
    assert len(service.get_run_history(run_id)) == 6


def test_cancel_a_graph_run_while_its_job_is_queued(
    flow: Flow, remote: tuple[WorkflowService, Dispatcher, LocalQueue]
) -> None:
    service, dispatcher, queue = remote
    calls: list[str] = []
    flow.function(name="record")(lambda: calls.append("ran"))
    flow.graph("queued", nodes={"only": "record"})
    run_id = service.start("queued")
    start = queue.receive()
    assert start is not None
    dispatcher.run_message(start.body)  # the pass queues the node's job

    service.cancel(run_id, reason="not needed")  # the job's step is cancelled, a pass queued

    results = _drain(queue, dispatcher)
    assert [r for r in results if isinstance(r, JobResult)] == [JobResult.SKIPPED]
    assert calls == []
    assert _run(service, run_id).status is RunStatus.CANCELLED


@pytest.mark.parametrize("seed", range(6))
def test_results_arriving_in_any_order_and_twice_never_diverge(
    seed: int, flow: Flow, remote: tuple[WorkflowService, Dispatcher, LocalQueue]
) -> None:
    service, dispatcher, queue = remote
    shuffle = random.Random(seed)  # noqa: S311 - a reproducible order, not a secret
    calls: Counter[str] = Counter()

    @flow.function
    def node(data: Any) -> Any:
        step = current_step()
        assert step is not None
        calls[step.step_name] += 1
        if step.step_name == "fork":
            branch("both")
        return data if step.step_name == "last" else step.step_name

    flow.graph(
        "tangle",
        nodes=dict.fromkeys(("start", "fork", "b", "b2", "c", "d", "join", "last"), node),
        config={
            "start": {"next": ["fork", "d"]},
            "fork": {"next": {"both": ["b", "c"], "none": "last"}},
            "b": {"next": "b2"},
            "b2": {"next": "join"},
            "c": {"next": "join"},
            "d": {"next": "join"},
            "join": {"next": "last"},
            "last": {"input": lambda ref: [ref("b2"), ref("c"), ref("d"), ref("join")]},
        },
    )
    run_id = service.start("tangle")

    for _ in range(300):  # deliver any due message, in a random order, some of them twice
        due = [m for m in queue.messages if m.deliver_at <= dispatcher.service.clock.now()]
        if not due:
            break
        message = shuffle.choice(due)
        queue.messages.remove(message)
        for _twice in range(shuffle.choice((1, 2))):
            if message.queue == "orchestrator":
                dispatcher.run_message(message.body)
            else:
                dispatcher.step_message(message.body)

    run = _run(service, run_id)
    assert run.status is RunStatus.COMPLETED, run.error
    assert run.output == {"last": ["b2", "c", "d", "join"]}
    assert calls == dict.fromkeys(("start", "fork", "b", "b2", "c", "d", "join", "last"), 1)

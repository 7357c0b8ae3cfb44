"""Child workflows in remote mode: the child's end wakes its parent with one message; messages
delivered twice and out of order; messages lost between a commit and its send; cancellation
and timeouts through the queue."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest

from lambda_flow import (
    ChildFailed,
    Flow,
    PostgresStore,
    RunStatus,
    WorkflowCancelled,
    WorkflowContext,
    WorkflowService,
)
from lambda_flow.testing import TimeSkippingClock
from lambda_flow.transport.local import LocalQueue
from lambda_flow.worker import Dispatcher
from tests.functional.worker.test_remote import deliver, drain
from tests.functional.worker.test_remote_batches import shuffled_drain


class CountingQueue(LocalQueue):
    """A local queue that counts orchestration messages per run and can drop some."""

    def __init__(self, clock: TimeSkippingClock) -> None:
        super().__init__(clock)
        self.runs: Counter[str] = Counter()
        self.drop: set[str] = set()

    def enqueue_run(self, run_id: str, **kwargs: Any) -> None:
        self.runs[run_id] += 1
        if run_id in self.drop:
            self.drop.discard(run_id)  # lost once: between the commit and the send
            return
        super().enqueue_run(run_id, **kwargs)


def deliver_next(queue: LocalQueue, dispatcher: Dispatcher, count: int) -> None:
    """Deliver the next ``count`` messages that are due."""
    for _ in range(count):
        message = queue.receive()
        assert message is not None
        deliver(dispatcher, message)


@pytest.fixture
def counting(
    flow: Flow, store: PostgresStore, clock: TimeSkippingClock
) -> tuple[WorkflowService, Dispatcher, CountingQueue]:
    queue = CountingQueue(clock)
    service = WorkflowService(flow, store=store, queue=queue, clock=clock)
    return service, Dispatcher(service), queue


@pytest.fixture
def provisioning(flow: Flow) -> Counter[str]:
    effects: Counter[str] = Counter()

    @flow.function
    def create_workspace(name: str) -> str:
        effects[name] += 1
        return f"ws-{name}"

    @flow.workflow
    async def provision(wf: WorkflowContext, name: str) -> str:
        return str(await wf.do("Create", create_workspace, name))

    @flow.workflow
    async def order(wf: WorkflowContext, names: list[str]) -> list[str]:
        handles = [await wf.start_child(f"Provision {n}", provision, n) for n in names]
        return [await h.result() for h in handles]

    return effects


def test_a_childs_end_wakes_its_parent_with_one_message(
    counting: Any, provisioning: Counter[str]
) -> None:
    service, dispatcher, queue = counting

    run_id = service.start("order", ["a"])
    drain(queue, dispatcher)

    run = service.get_run(run_id)
    assert run is not None
    assert run.status is RunStatus.COMPLETED, run
    assert run.output == ["ws-a"]
    [child] = service.list_runs(parent_id=run_id)
    # start, then the child's end: no polling, no pass per child step
    assert queue.runs[run_id] == 2
    assert queue.runs[child.id] == 1  # its start (the worker of its step carries it on)
    assert provisioning == {"a": 1}


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_children_survive_duplicate_and_reordered_messages(
    remote: Any, queue: LocalQueue, provisioning: Counter[str], seed: int
) -> None:
    service, dispatcher = remote

    run_id = service.start("order", ["a", "b", "c"])
    shuffled_drain(queue, dispatcher, random.Random(seed))  # noqa: S311 - a reproducible order

    run = service.get_run(run_id)
    assert run is not None
    assert run.status is RunStatus.COMPLETED, run
    assert run.output == ["ws-a", "ws-b", "ws-c"]
    assert provisioning == {"a": 1, "b": 1, "c": 1}
    assert len(service.list_runs(parent_id=run_id)) == 3


def test_a_parent_wake_up_lost_after_the_childs_end_is_recovered_by_the_sweeper(
    counting: Any, provisioning: Counter[str], clock: TimeSkippingClock
) -> None:
    service, dispatcher, queue = counting
    run_id = service.start("order", ["a"])
    drain(queue, dispatcher)  # the parent's first pass, then the child... all of it
    assert service.get_run(run_id).status is RunStatus.COMPLETED  # type: ignore[union-attr]

    # Again, this time the child's end is committed and its process dies before the send.
    second = service.start("order", ["b"])
    queue.drop.add(second)
    drain(queue, dispatcher)  # the start message is dropped: the sweeper must find it
    clock.advance("3min")
    dispatcher.sweep()
    drain(queue, dispatcher)
    assert service.get_run(second).status is RunStatus.COMPLETED  # type: ignore[union-attr]

    third = service.start("order", ["c"])
    deliver_next(queue, dispatcher, 2)  # the parent's pass, the child's first pass
    queue.drop.add(third)  # the child's end will not reach the parent
    drain(queue, dispatcher)
    parent = service.get_run(third)
    assert parent is not None
    assert parent.status is RunStatus.RUNNING
    [child] = service.list_runs(parent_id=third)
    assert child.status is RunStatus.COMPLETED
    assert next(iter(service.export_run(third)["steps"]))["status"] == "succeeded"

    clock.advance("6s")
    assert third in dispatcher.sweep().runs  # an unsettled run: a result no pass has seen
    drain(queue, dispatcher)

    assert service.get_run(third).output == ["ws-c"]  # type: ignore[union-attr]
    assert provisioning == {"a": 1, "b": 1, "c": 1}


def test_a_child_whose_start_message_was_lost_is_driven_by_the_sweeper(
    flow: Flow, counting: Any, provisioning: Counter[str], clock: TimeSkippingClock
) -> None:
    service, dispatcher, queue = counting
    run_id = service.start("order", ["a"])
    deliver_next(queue, dispatcher, 1)  # the parent's pass commits the child, then sends it
    [child] = service.list_runs(parent_id=run_id)
    queue.messages.clear()  # ... and the send is lost

    assert dispatcher.sweep().runs == []  # the parent waits for its child: not stuck
    clock.advance("3min")
    assert dispatcher.sweep().runs == [child.id]
    drain(queue, dispatcher)

    assert service.get_run(run_id).output == ["ws-a"]  # type: ignore[union-attr]
    assert provisioning == {"a": 1}


def test_cancelling_a_remote_parent_cancels_its_children(flow: Flow, counting: Any) -> None:
    service, dispatcher, queue = counting
    cleanups: Counter[str] = Counter()

    @flow.function
    def release(what: str) -> None:
        cleanups[what] += 1

    @flow.workflow
    async def hold(wf: WorkflowContext) -> None:
        try:
            await wf.sleep("Hold", "30d")
        except WorkflowCancelled:
            await wf.do("Release", release, "hold")
            raise

    @flow.workflow
    async def parent(wf: WorkflowContext) -> None:
        await wf.child("Hold", hold)

    run_id = service.start("parent")
    drain(queue, dispatcher, skip_time=False)
    [child] = service.list_runs(parent_id=run_id)

    service.cancel(run_id, reason="stop")
    drain(queue, dispatcher, skip_time=False)

    assert service.get_run(run_id).status is RunStatus.CANCELLED  # type: ignore[union-attr]
    assert service.get_run(child.id).status is RunStatus.CANCELLED  # type: ignore[union-attr]
    assert cleanups == {"hold": 1}


def test_a_remote_child_past_its_timeout_raises_in_the_parent(
    flow: Flow, remote: Any, queue: LocalQueue
) -> None:
    service, dispatcher = remote

    @flow.workflow
    async def slow(wf: WorkflowContext) -> str:
        await wf.sleep("Long", "2h")
        return "late"

    @flow.workflow
    async def parent(wf: WorkflowContext) -> str:
        try:
            return str(await wf.child("Slow", slow, timeout="1h"))
        except ChildFailed as failed:
            return f"{failed.error_type} {failed.child_run_id}"

    run_id = service.start("parent")
    drain(queue, dispatcher)

    run = service.get_run(run_id)
    assert run is not None
    assert run.status is RunStatus.COMPLETED, run
    [child] = service.list_runs(parent_id=run_id)
    assert run.output == f"RunDeadlineExceeded {child.id}"
    assert child.status is RunStatus.CANCELLED

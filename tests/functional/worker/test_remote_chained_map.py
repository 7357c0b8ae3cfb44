"""A remote map over a registered function is chained: each item's worker starts the next item
in the statement that stores its result, so the workflow body is replayed at the batch's start
and end, not once per item (issue 13's scale requirement)."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from typing import Any

import psycopg
import pytest

from lambda_flow import (
    Completion,
    Flow,
    PostgresStore,
    RetryPolicy,
    RunStatus,
    WorkflowContext,
    WorkflowService,
)
from lambda_flow.engine import OrchestrationPass
from lambda_flow.testing import TimeSkippingClock
from lambda_flow.transport.base import StepJob
from lambda_flow.transport.local import LocalQueue
from lambda_flow.worker import Dispatcher
from tests.functional.worker.test_remote import deliver, drain
from tests.functional.worker.test_remote_batches import shuffled_drain


class CountingQueue(LocalQueue):
    """Counts what is sent; can lose the next step jobs sent (a worker dying before the send)."""

    def __init__(self, clock: TimeSkippingClock) -> None:
        super().__init__(clock)
        self.run_messages = 0
        self.step_messages = 0
        self.lose_steps = 0

    def enqueue_run(self, run_id: str, **kwargs: Any) -> None:
        self.run_messages += 1
        super().enqueue_run(run_id, **kwargs)

    def enqueue_steps(self, jobs: Any) -> None:
        jobs = list(jobs)
        self.step_messages += len(jobs)
        if self.lose_steps:
            self.lose_steps -= 1
            return
        super().enqueue_steps(jobs)


@pytest.fixture
def counting(
    flow: Flow, store: PostgresStore, clock: TimeSkippingClock
) -> tuple[WorkflowService, Dispatcher, CountingQueue]:
    queue = CountingQueue(clock)
    service = WorkflowService(flow, store=store, queue=queue, clock=clock)
    return service, Dispatcher(service), queue


@pytest.fixture
def passes(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Orchestration passes per run id."""
    counted: Counter[str] = Counter()
    original = OrchestrationPass.run

    async def run(self: OrchestrationPass) -> Any:
        counted[self.run_id] += 1
        return await original(self)

    monkeypatch.setattr(OrchestrationPass, "run", run)
    return counted


@pytest.fixture
def charging(flow: Flow) -> Counter[int]:
    charged: Counter[int] = Counter()

    @flow.function
    def charge(invoice: int) -> int:
        charged[invoice] += 1
        if invoice % 10 == 7:
            raise ValueError(f"card declined for invoice {invoice}")
        return invoice * 10

    @flow.workflow
    async def billing(wf: WorkflowContext, data: dict[str, Any]) -> dict[str, Any]:
        batch = await wf.map(
            "Invoices", list(range(data["n"])), charge, max_concurrency=data["limit"],
            completion=Completion(
                tolerated_failure_ratio=data.get("ratio"), min_successful=data.get("min")
            ),
        )  # fmt: skip
        await wf.do("Report", lambda: len(batch.succeeded()))
        return {
            "results": batch.results,
            "failed": [i for i, _ in batch.failed()],
            "reason": batch.completion_reason,
        }

    return charged


def test_a_chained_map_costs_one_message_per_item_and_two_passes(
    counting: Any, charging: Counter[int], passes: Counter[str]
) -> None:
    service, dispatcher, queue = counting

    run_id = service.start("billing", {"n": 60, "limit": 5})
    drain(queue, dispatcher)

    run = service.get_run(run_id)
    assert run is not None
    assert run.status is RunStatus.COMPLETED, run.error
    assert run.output["failed"] == [7, 17, 27, 37, 47, 57]
    assert run.output["results"][:3] == [0, 10, 20]
    assert run.output["reason"] == "all_completed"
    assert charging == dict.fromkeys(range(60), 1)
    assert queue.step_messages == 60  # one per item (the report step is inline)
    assert queue.run_messages == 1  # the start; the end is carried on by the last worker
    assert passes[run_id] == 2  # the start and the end (not one per item)
    kinds = {s["step_key"]: s for s in service.export_run(run_id)["steps"]}
    positions = [kinds[f"Invoices/{i}"]["position"] for i in range(60)]
    assert positions == sorted(positions)  # items in index order, the batch's step after
    assert kinds["Invoices"]["position"] > positions[-1]
    assert kinds["Report"]["position"] > kinds["Invoices"]["position"]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_chained_map_keeps_its_limit_under_duplicates_and_reordering(
    counting: Any, charging: Counter[int], seed: int
) -> None:
    service, dispatcher, queue = counting
    run_id = service.start("billing", {"n": 30, "limit": 4})
    peak = {"n": 0}

    def observe() -> None:
        steps = service.export_run(run_id)["steps"]
        flying = sum(
            1
            for s in steps
            if s["step_key"].startswith("Invoices/") and s["status"] in ("scheduled", "running")
        )
        peak["n"] = max(peak["n"], flying)

    shuffled_drain(queue, dispatcher, random.Random(seed), after=observe)  # noqa: S311 - a reproducible order

    run = service.get_run(run_id)
    assert run is not None
    assert run.status is RunStatus.COMPLETED, run.error
    assert run.output["failed"] == [7, 17, 27]
    assert peak["n"] == 4
    assert charging == dict.fromkeys(range(30), 1)


def test_a_chained_map_stops_past_its_failure_tolerance(
    counting: Any, charging: Counter[int]
) -> None:
    service, dispatcher, queue = counting

    run_id = service.start("billing", {"n": 40, "limit": 1, "ratio": 0.0})
    drain(queue, dispatcher)

    run = service.get_run(run_id)
    assert run is not None
    assert run.output["reason"] == "failure_tolerance_exceeded"
    assert run.output["failed"] == [7]
    assert sorted(charging) == list(range(8))  # one at a time: nothing after the failure
    assert run.output["results"][8:] == [None] * 32


def test_a_chained_map_stops_once_enough_items_succeeded(
    counting: Any, charging: Counter[int]
) -> None:
    service, dispatcher, queue = counting

    run_id = service.start("billing", {"n": 40, "limit": 2, "min": 5})
    drain(queue, dispatcher)

    run = service.get_run(run_id)
    assert run is not None
    assert run.output["reason"] == "min_successful_reached"
    assert 5 <= len(charging) <= 6  # the item running when the fifth succeeded finishes


def test_chained_items_retry_through_a_pass_and_run_each_attempt_once(
    flow: Flow, counting: Any
) -> None:
    service, dispatcher, queue = counting
    attempts: Counter[int] = Counter()

    @flow.function(retry=RetryPolicy.fixed(2, "10s"))
    def flaky(n: int) -> int:
        attempts[n] += 1
        if n % 3 == 0 and attempts[n] < 3:
            raise ConnectionError("try again")
        return n

    @flow.workflow
    async def batch(wf: WorkflowContext) -> list[Any]:
        return (await wf.map("Items", list(range(9)), flaky, max_concurrency=3)).values()

    run_id = service.start("batch")
    drain(queue, dispatcher)

    run = service.get_run(run_id)
    assert run is not None
    assert run.status is RunStatus.COMPLETED, run.error
    assert run.output == list(range(9))
    assert attempts == {n: 3 if n % 3 == 0 else 1 for n in range(9)}


def test_the_next_items_lost_before_their_send_are_sent_again_by_the_sweeper(
    counting: Any, charging: Counter[int], clock: TimeSkippingClock
) -> None:
    service, dispatcher, queue = counting
    run_id = service.start("billing", {"n": 6, "limit": 2})
    deliver(dispatcher, queue.receive())  # type: ignore[arg-type] - the first pass: items 0, 1
    queue.lose_steps = 1  # the worker of item 0 stores its result, dies before sending item 2
    drain(queue, dispatcher, skip_time=False)
    assert service.get_run(run_id).status is RunStatus.RUNNING  # type: ignore[union-attr]

    clock.advance("3min")
    report = dispatcher.sweep()
    assert StepJob(run_id, "Invoices/2", 1) in report.step_jobs
    drain(queue, dispatcher)

    run = service.get_run(run_id)
    assert run is not None
    assert run.status is RunStatus.COMPLETED, run.error
    assert charging == dict.fromkeys(range(6), 1)


def test_cancelling_a_run_stops_its_chained_map(
    flow: Flow, counting: Any, charging: Counter[int]
) -> None:
    service, dispatcher, queue = counting
    run_id = service.start("billing", {"n": 20, "limit": 2})
    deliver(dispatcher, queue.receive())  # type: ignore[arg-type] - the first pass: items 0, 1
    deliver(dispatcher, queue.receive())  # type: ignore[arg-type] - item 0 runs, starts 2

    service.cancel(run_id, reason="stop billing")
    drain(queue, dispatcher)

    run = service.get_run(run_id)
    assert run is not None
    assert run.status is RunStatus.CANCELLED
    assert sorted(charging) == [0]  # items 1 and 2 were cancelled before a worker took them


def test_the_last_item_sees_an_item_committed_while_it_waited_for_the_batch(
    counting: Any, charging: Counter[int], database_url: str, schema: str
) -> None:
    """Two last items settle at once: the second one's statement started (its snapshot taken)
    before the first one committed, then waited for the batch row. Its pass must still see
    both results, not park on a stale view of the steps (it reads them again)."""
    service, dispatcher, queue = counting
    run_id = service.start("billing", {"n": 2, "limit": 2})
    deliver(dispatcher, queue.receive())  # type: ignore[arg-type] - the first pass: 0 and 1
    first = queue.receive("step")
    second = queue.receive("step")
    assert first is not None
    assert second is not None
    assert charging == {}

    with psycopg.connect(database_url) as other:  # item 0's worker, mid-commit
        other.execute(f'SET search_path TO "{schema}"')
        other.execute(
            "UPDATE steps SET status = 'succeeded', result = '0' WHERE run_id = %s"
            " AND step_key = 'Invoices/0'",
            [run_id],
        )
        other.execute(
            "UPDATE batches SET running = running - 1, succeeded = succeeded + 1"
            " WHERE run_id = %s",
            [run_id],
        )
        worker = threading.Thread(target=deliver, args=(dispatcher, second))
        worker.start()  # item 1: its statement waits for the batch row
        deadline = time.monotonic() + 10
        while not _waiting_on_a_lock(database_url) and time.monotonic() < deadline:
            time.sleep(0.01)
        other.commit()
    worker.join(timeout=30)

    run = service.get_run(run_id)
    assert run is not None
    assert run.status is RunStatus.COMPLETED, run
    assert run.output["results"] == [0, 10]


def _waiting_on_a_lock(database_url: str) -> bool:
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
        ).fetchone()
    return bool(row and row[0])

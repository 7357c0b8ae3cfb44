"""Map, parallel and scopes in remote mode: jobs through an in-process queue, delivered in a
random order and some of them twice, consumed by the dispatcher the Lambda handlers use."""

from __future__ import annotations

import random
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest

from lambda_flow import (
    Completion,
    Flow,
    RunStatus,
    WorkflowContext,
    WorkflowService,
)
from lambda_flow.testing import TimeSkippingClock
from lambda_flow.transport.local import LocalQueue
from lambda_flow.worker import Dispatcher
from tests.functional.worker.test_remote import deliver


def shuffled_drain(
    queue: LocalQueue,
    dispatcher: Dispatcher,
    rng: random.Random,
    *,
    after: Any = None,
    limit: int = 2000,
) -> None:
    """Deliver due messages in a random order, a third of them twice; skip time to the rest."""
    clock = dispatcher.service.clock
    assert isinstance(clock, TimeSkippingClock)
    for _ in range(limit):
        now = clock.now()
        due = [m for m in queue.messages if m.deliver_at <= now]
        if not due:
            upcoming = queue.next_delivery()
            if upcoming is None:
                return
            clock.advance(max(upcoming - now, timedelta(0)))
            continue
        message = rng.choice(due)
        queue.messages.remove(message)
        deliver(dispatcher, message)
        if rng.random() < 1 / 3:
            deliver(dispatcher, message)  # at-least-once: the same message again
        if after is not None:
            after()
    raise AssertionError("queue never drained")


def _in_flight(service: WorkflowService, run_id: str, prefix: str) -> int:
    steps = service.export_run(run_id)["steps"]
    return sum(
        1
        for s in steps
        if s["step_key"].startswith(prefix) and s["status"] in ("scheduled", "running")
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_remote_map_keeps_the_limit_and_runs_each_item_once(
    flow: Flow, remote: Any, queue: LocalQueue, seed: int
) -> None:
    service, dispatcher = remote
    charged: Counter[int] = Counter()

    @flow.function
    def charge(invoice: int) -> int:
        charged[invoice] += 1
        if invoice == 7:
            raise ValueError("card declined")
        return invoice * 10

    @flow.workflow
    async def billing(wf: WorkflowContext) -> dict[str, Any]:
        batch = await wf.map(
            "Charge", list(range(12)), charge, max_concurrency=3,
            completion=Completion(tolerated_failure_ratio=0.1),
        )  # fmt: skip
        return {
            "results": batch.results,
            "failed": [i for i, _ in batch.failed()],
            "reason": batch.completion_reason,
        }

    run_id = service.start("billing")
    peak = {"n": 0}

    def observe() -> None:
        peak["n"] = max(peak["n"], _in_flight(service, run_id, "Charge/"))

    shuffled_drain(queue, dispatcher, random.Random(seed), after=observe)  # noqa: S311 - a reproducible order

    run = service.get_run(run_id)
    assert run.status is RunStatus.COMPLETED, run.error
    assert run.output["failed"] == [7]
    assert run.output["reason"] == "all_completed"
    assert run.output["results"] == [None if i == 7 else i * 10 for i in range(12)]
    assert 1 <= peak["n"] <= 3
    assert peak["n"] == 3 or seed != 1  # the limit is reached, not only kept
    assert set(charged) == set(range(12))
    assert all(n == 1 for n in charged.values())  # the function raises, no retries: once each


def test_a_remote_map_stops_scheduling_when_failures_exceed_the_tolerance(
    flow: Flow, remote: Any, queue: LocalQueue
) -> None:
    service, dispatcher = remote
    charged: list[int] = []

    @flow.function
    def charge(invoice: int) -> int:
        charged.append(invoice)
        raise ValueError("declined")

    @flow.workflow
    async def billing(wf: WorkflowContext) -> Any:
        batch = await wf.map(
            "Charge", list(range(10)), charge, max_concurrency=2,
            completion=Completion(tolerated_failures=1),
        )  # fmt: skip
        return [batch.completion_reason, len(batch.failed())]

    run_id = service.start("billing")
    shuffled_drain(queue, dispatcher, random.Random(5))  # noqa: S311 - a reproducible order

    run = service.get_run(run_id)
    assert run.status is RunStatus.COMPLETED, run.error
    assert run.output[0] == "failure_tolerance_exceeded"
    assert 2 <= run.output[1] <= 3  # the second failure stops it; one may still be running
    assert sorted(charged) == list(range(run.output[1]))


@pytest.mark.parametrize("seed", [4, 6])
def test_remote_scopes_and_parallel_branches(
    flow: Flow, remote: Any, queue: LocalQueue, seed: int
) -> None:
    service, dispatcher = remote
    calls: Counter[str] = Counter()

    @flow.function
    def reserve(data: dict[str, str]) -> str:
        calls[data["what"]] += 1
        return f"{data['what']} reserved"

    async def reserve_twice(wf: WorkflowContext, what: str) -> list[str]:
        first = await wf.do("Reserve", reserve, {"what": what})
        await wf.sleep("Hold", "1min")
        second = await wf.do("Confirm", reserve, {"what": f"{what}!"})
        return [first, second]

    async def flight(wf: WorkflowContext) -> Any:
        return await wf.scope("Seat", reserve_twice, "seat")

    async def hotel(wf: WorkflowContext) -> Any:
        return await wf.scope("Room", reserve_twice, "room")

    @flow.workflow
    async def trip(wf: WorkflowContext) -> Any:
        batch = await wf.parallel("Book", {"flight": flight, "hotel": hotel}, max_concurrency=1)
        again = await wf.scope("Again", reserve_twice, "car")
        return [batch.values(), again]

    run_id = service.start("trip")
    shuffled_drain(queue, dispatcher, random.Random(seed))  # noqa: S311 - a reproducible order

    run = service.get_run(run_id)
    assert run.status is RunStatus.COMPLETED, run.error
    assert run.output == [
        [["seat reserved", "seat! reserved"], ["room reserved", "room! reserved"]],
        ["car reserved", "car! reserved"],
    ]
    assert calls == {"seat": 1, "seat!": 1, "room": 1, "room!": 1, "car": 1, "car!": 1}
    keys = {s["step_key"] for s in service.export_run(run_id)["steps"]}
    assert {"Book/flight/Seat/Reserve", "Book/hotel/Room/Confirm", "Again/Hold"} <= keys

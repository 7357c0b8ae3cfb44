"""Scopes, map and parallel in inline mode: namespaces, limits, completion policies, replay."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from lambda_flow import (
    BatchFailed,
    BatchResult,
    Completion,
    Flow,
    InvalidOption,
    RunStatus,
    RunTimedOut,
    WorkflowContext,
    WorkflowService,
)
from lambda_flow.testing import TimeSkippingClock


def _keys(service: WorkflowService, run_id: str) -> list[str]:
    return [s["step_key"] for s in service.export_run(run_id)["steps"]]


def _finish(service: WorkflowService, run_id: str) -> Any:
    """The output of a run that slept (inline, the clock skips): a later pass replayed it."""
    run = service.get_run(run_id)
    assert run is not None
    assert run.status is RunStatus.COMPLETED, run.error
    return run.output


def _park(service: WorkflowService, name: str) -> str:
    """Start a run and leave it parked on its sleep."""
    with pytest.raises(RunTimedOut):
        service.run_to_completion(name, timeout="1min")
    return service.list_runs()[0].id


async def _provision(wf: WorkflowContext, region: str) -> str:
    zone = await wf.do("Zone", lambda: f"{region}-a")
    await wf.do("Disk", lambda: f"disk in {zone}")
    return zone


def test_a_helper_runs_twice_in_scopes_of_its_own(
    flow: Flow, service: WorkflowService, clock: TimeSkippingClock
) -> None:
    effects: Counter[str] = Counter()

    async def counted(wf: WorkflowContext, region: str) -> str:
        effects[region] += 1
        return await _provision(wf, region)

    @flow.workflow
    async def setup(wf: WorkflowContext) -> list[str]:
        first = await wf.scope("eu", counted, "eu")
        second = await wf.scope("us", counted, "us")
        await wf.sleep("Settle", "1h")
        return [first, second]

    run_id = service.start("setup")
    keys = _keys(service, run_id)
    assert keys == ["eu/Zone", "eu/Disk", "eu", "us/Zone", "us/Disk", "us", "Settle"]
    kinds = {s["step_key"]: s["kind"] for s in service.export_run(run_id)["steps"]}
    assert kinds["eu"] == "scope"

    assert _finish(service, run_id) == ["eu-a", "us-a"]
    assert effects == {"eu": 1, "us": 1}  # a finished scope does not replay its code


def test_scopes_nest_and_repeat(flow: Flow, service: WorkflowService) -> None:
    async def inner(wf: WorkflowContext) -> int:
        return int(await wf.do("Step", lambda: 1))

    async def outer(wf: WorkflowContext) -> int:
        return await wf.scope("b", inner) + await wf.scope("b", inner)

    @flow.workflow
    async def nested(wf: WorkflowContext) -> int:
        return int(await wf.scope("a", outer))

    run_id = service.start("nested")
    assert service.get_run(run_id).output == 2  # type: ignore[union-attr]
    assert _keys(service, run_id) == ["a/b/Step", "a/b", "a/b#1/Step", "a/b#1", "a"]


def test_an_error_inside_a_scope_propagates_unchanged(flow: Flow, service: WorkflowService) -> None:
    class Declined(Exception):
        pass

    async def charge(wf: WorkflowContext) -> None:
        await wf.do("Try", lambda: "tried")
        raise Declined("card declined")

    @flow.workflow
    async def pay(wf: WorkflowContext) -> str:
        try:
            await wf.scope("Charge", charge)
        except Declined as exc:
            return f"caught {exc}"
        return "not raised"

    run_id = service.start("pay")
    assert service.get_run(run_id).output == "caught card declined"  # type: ignore[union-attr]
    assert _keys(service, run_id) == ["Charge/Try"]  # no result recorded for the scope


def test_non_determinism_inside_an_unfinished_scope_is_caught(
    flow: Flow, make_service: Any, clock: TimeSkippingClock
) -> None:
    version = {"v": 1}

    async def body(wf: WorkflowContext) -> None:
        await wf.do("A" if version["v"] == 1 else "B", lambda: 1)
        await wf.sleep("Wait", "1h")

    @flow.workflow
    async def changing(wf: WorkflowContext) -> None:
        await wf.scope("S", body)

    run_id = _park(make_service(), "changing")
    version["v"] = 2
    run = make_service().resume(run_id)
    assert run.status is RunStatus.FAILED
    assert run.error is not None
    assert run.error.type == "NonDeterminismError"
    assert "'S/A'" in run.error.message


def test_a_scope_replaced_by_a_step_is_caught(
    flow: Flow, make_service: Any, clock: TimeSkippingClock
) -> None:
    version = {"v": 1}

    async def body(wf: WorkflowContext) -> int:
        return int(await wf.do("A", lambda: 1))

    @flow.workflow
    async def changing(wf: WorkflowContext) -> None:
        if version["v"] == 1:
            await wf.scope("S", body)
        else:
            await wf.do("S", lambda: 1)
        await wf.sleep("Wait", "1h")

    run_id = _park(make_service(), "changing")
    version["v"] = 2
    run = make_service().resume(run_id)
    assert run.status is RunStatus.FAILED
    assert run.error is not None
    assert run.error.type == "NonDeterminismError"


# -- map / parallel -------------------------------------------------------------------------
def test_map_over_a_registered_function_keeps_at_most_the_limit_in_flight(
    flow: Flow, service: WorkflowService, clock: TimeSkippingClock
) -> None:
    in_flight = {"now": 0, "peak": 0}
    order: list[int] = []

    @flow.function
    async def charge(invoice: int) -> int:
        order.append(invoice)
        in_flight["now"] += 1
        in_flight["peak"] = max(in_flight["peak"], in_flight["now"])
        await asyncio.sleep(0.001 * (invoice % 3))
        in_flight["now"] -= 1
        return invoice * 10

    @flow.workflow
    async def billing(wf: WorkflowContext) -> list[Any]:
        batch = await wf.map("Charge", list(range(10)), charge, max_concurrency=3)
        await wf.sleep("Settle", "1h")
        return [batch.values(), batch.completion_reason, batch.names]

    run_id = service.start("billing")
    assert in_flight["peak"] == 3
    assert order[:3] == [0, 1, 2]
    keys = _keys(service, run_id)
    assert set(keys) == {f"Charge/{i}" for i in range(10)} | {"Charge", "Settle"}
    output = _finish(service, run_id)
    assert output == [[i * 10 for i in range(10)], "all_completed", [str(i) for i in range(10)]]
    assert len(order) == 10  # the replay ran nothing again


def test_map_over_scopes_with_item_names_and_failures(flow: Flow, service: WorkflowService) -> None:
    async def ship(wf: WorkflowContext, order: dict[str, Any], index: int) -> str:
        label = await wf.do("Label", lambda: f"label {order['id']}")
        if order["bad"]:
            raise ValueError(f"cannot ship {order['id']}")
        return f"{label} #{index}"

    seen: dict[str, Any] = {}

    @flow.workflow
    async def shipping(wf: WorkflowContext) -> None:
        orders = [{"id": "a", "bad": False}, {"id": "b", "bad": True}, {"id": "c", "bad": False}]
        batch = await wf.map("Ship", orders, ship, item_name=lambda o, _: str(o["id"]))
        seen["batch"] = batch
        with pytest.raises(BatchFailed) as failed:
            batch.values()
        seen["failed"] = failed.value

    run_id = service.start("shipping")
    batch: BatchResult[Any] = seen["batch"]
    assert batch.results == ["label a #0", None, "label c #2"]
    assert [e is None for e in batch.errors] == [True, False, True]
    assert batch.failed()[0][0] == 1
    assert batch.failed()[0][1].type == "ValueError"
    assert batch.succeeded() == [(0, "label a #0"), (2, "label c #2")]
    assert batch.has_failure
    assert batch.names == ["a", "b", "c"]
    assert batch.completion_reason == "all_completed"
    assert seen["failed"].failures[0][0] == 1
    assert "Ship/b/Label" in _keys(service, run_id)
    assert "Ship/a" in _keys(service, run_id)
    assert "Ship/b" not in _keys(service, run_id)  # a failed scope records no result


@pytest.mark.parametrize(("completion", "reason", "started"), [
    (Completion(min_successful=2), "min_successful_reached", 3),
    (Completion(tolerated_failures=0), "failure_tolerance_exceeded", 2),
    (Completion(tolerated_failures=1), "failure_tolerance_exceeded", 4),
    (Completion(tolerated_failure_ratio=0.5), "all_completed", 6),
    (Completion(tolerated_failure_ratio=0.3), "failure_tolerance_exceeded", 4),
    (None, "all_completed", 6),
])  # fmt: skip
def test_completion_policies_stop_scheduling(
    flow: Flow,
    service: WorkflowService,
    completion: Completion | None,
    reason: str,
    started: int,
) -> None:
    ran: list[int] = []

    @flow.function
    def check(n: int) -> int:
        ran.append(n)
        if n % 2:
            raise ValueError(f"odd {n}")
        return n

    seen: dict[str, BatchResult[Any]] = {}

    @flow.workflow
    async def checks(wf: WorkflowContext) -> None:
        seen["b"] = await wf.map(
            "Check", list(range(6)), check, max_concurrency=1, completion=completion
        )

    service.start("checks")
    batch = seen["b"]
    assert batch.completion_reason == reason
    assert ran == list(range(started))
    assert len(batch.results) == 6
    assert batch.results[started:] == [None] * (6 - started)
    assert batch.errors[started:] == [None] * (6 - started)
    assert [i for i, _ in batch.succeeded()] == [i for i in range(started) if i % 2 == 0]


def test_parallel_over_a_dict_of_branches(flow: Flow, service: WorkflowService) -> None:
    async def a(wf: WorkflowContext) -> str:
        return str(await wf.do("Step", lambda: "a"))

    async def b(wf: WorkflowContext) -> str:
        return str(await wf.do("Step", lambda: "b"))

    seen: dict[str, BatchResult[Any]] = {}

    @flow.workflow
    async def both(wf: WorkflowContext) -> None:
        seen["dict"] = await wf.parallel("P", {"first": a, "second": b}, max_concurrency=1)
        seen["list"] = await wf.parallel("L", [b, a])
        seen["empty"] = await wf.parallel("E", [])

    run_id = service.start("both")
    assert seen["dict"].results == ["a", "b"]
    assert seen["dict"].names == ["first", "second"]
    assert seen["list"].values() == ["b", "a"]
    assert seen["list"].names == ["0", "1"]
    assert seen["empty"].results == []
    assert seen["empty"].completion_reason == "all_completed"
    keys = _keys(service, run_id)
    assert {"P/first/Step", "P/second/Step", "L/0/Step", "L/1/Step", "P", "L", "E"} <= set(keys)


@pytest.mark.parametrize("limit", [0, -1])
def test_a_bad_limit_raises_at_once(flow: Flow, service: WorkflowService, limit: int) -> None:
    @flow.workflow
    async def bad(wf: WorkflowContext) -> str:
        with pytest.raises(InvalidOption, match="max_concurrency"):
            await wf.map("M", [1], "anything", max_concurrency=limit)
        with pytest.raises(InvalidOption, match="item_name"):
            await wf.map("M", [1, 1], "anything", item_name=lambda i, _: str(i))
        with pytest.raises(InvalidOption, match="tolerated_failure_ratio"):
            Completion(tolerated_failure_ratio=2)
        return "ok"

    run_id = service.start("bad")
    assert service.get_run(run_id).output == "ok"  # type: ignore[union-attr]
    assert _keys(service, run_id) == []


def test_a_finished_map_replays_from_its_record(
    flow: Flow, service: WorkflowService, clock: TimeSkippingClock
) -> None:
    effects: Counter[str] = Counter()

    async def item(wf: WorkflowContext, n: int, index: int) -> int:
        effects["item"] += 1
        return int(await wf.do("Double", lambda: n * 2))

    @flow.workflow
    async def doubled(wf: WorkflowContext) -> list[Any]:
        batch = await wf.map("M", [1, 2, 3], item, completion=Completion(min_successful=3))
        await wf.sleep("Wait", "1h")
        return batch.values()

    run_id = service.start("doubled")
    assert _finish(service, run_id) == [2, 4, 6]
    assert effects["item"] == 3

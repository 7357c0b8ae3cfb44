"""Steps in inline mode: sequencing, fan-out, branching, retries and typed values."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import psycopg
import pytest
from pydantic import BaseModel

from lambda_flow import (
    Flow,
    NonRetryableError,
    RunStatus,
    StepKind,
    StepStatus,
    WorkflowContext,
    WorkflowService,
    current_step,
)
from lambda_flow.testing import TimeSkippingClock


class Order(BaseModel):
    order_id: str
    amount: int


class Receipt(BaseModel):
    order_id: str
    charged: int


def test_sequential_steps_pass_results_along(flow: Flow, service: WorkflowService) -> None:
    @flow.function
    def double(data: dict[str, int]) -> int:
        return data["n"] * 2

    @flow.workflow
    async def chain(wf: WorkflowContext, data: dict[str, int]) -> list[int]:
        a = await wf.do("first", lambda: data["n"] + 1)
        b = await wf.do("second", "double", {"n": a})
        c = await wf.do("third", double, {"n": b})
        return [a, b, c]

    run_id = service.start("chain", {"n": 1})

    run = service.get_run(run_id)
    assert run is not None
    assert run.status is RunStatus.COMPLETED
    assert run.output == [2, 4, 8]
    history = service.get_run_history(run_id)
    assert [(h.step_name, h.kind, h.status, h.attempt) for h in history] == [
        ("first", StepKind.INLINE, StepStatus.SUCCEEDED, 1),
        ("second", StepKind.RPC, StepStatus.SUCCEEDED, 1),
        ("third", StepKind.RPC, StepStatus.SUCCEEDED, 1),
    ]
    assert [h.result for h in history] == [2, 4, 8]


def test_values_come_back_as_the_annotated_types(flow: Flow, service: WorkflowService) -> None:
    seen: list[Any] = []

    @flow.function
    async def charge(order: Order) -> Receipt:
        return Receipt(order_id=order.order_id, charged=order.amount)

    @flow.workflow
    async def checkout(wf: WorkflowContext, order: Order) -> Receipt:
        seen.append(order)
        receipt = await wf.do("Charge", charge, order)
        seen.append(receipt)
        await wf.sleep("Settle", "1h")  # forces a second pass: the receipt comes from the store
        seen.append(receipt)
        return receipt

    output = service.run_to_completion("checkout", {"order_id": "o1", "amount": 5})

    assert output == Receipt(order_id="o1", charged=5)
    assert isinstance(output, Receipt)
    assert all(isinstance(v, Order | Receipt) for v in seen)
    run = service.get_run(service.list_runs()[0].id)
    assert run is not None
    assert run.output == {"order_id": "o1", "charged": 5}


def test_inline_results_are_the_same_on_first_run_and_replay(
    flow: Flow, service: WorkflowService
) -> None:
    seen: list[Any] = []

    @flow.workflow
    async def shapes(wf: WorkflowContext) -> None:
        value = await wf.do("tuple", lambda: (1, 2))
        seen.append(value)
        await wf.sleep("nap", "1s")

    service.start("shapes")

    assert seen == [[1, 2], [1, 2]]  # JSON round trip even the first time


def test_gather_runs_siblings_concurrently_in_one_pass(
    flow: Flow, service: WorkflowService
) -> None:
    both_started = asyncio.Event()
    started: list[str] = []

    async def sibling(name: str) -> str:
        started.append(name)
        if len(started) == 2:
            both_started.set()
        # Only finishes if the other sibling started too: a one-at-a-time engine deadlocks.
        await asyncio.wait_for(both_started.wait(), timeout=5)
        return name.upper()

    @flow.workflow
    async def fan_out(wf: WorkflowContext) -> list[str]:
        return list(
            await asyncio.gather(
                wf.do("left", lambda: sibling("left")),
                wf.do("right", lambda: sibling("right")),
            )
        )

    run_id = service.start("fan_out")

    run = service.get_run(run_id)
    assert run is not None
    assert run.status is RunStatus.COMPLETED, run.error
    assert run.output == ["LEFT", "RIGHT"]


def test_gather_sibling_waiting_for_retry_does_not_fail_the_run(
    flow: Flow, service: WorkflowService, clock: TimeSkippingClock
) -> None:
    calls: Counter[str] = Counter()

    def flaky() -> str:
        calls["flaky"] += 1
        if current_step() is not None and current_step().attempt == 1:  # type: ignore[union-attr]
            raise ConnectionError("first try fails")
        return "ok"

    def steady() -> str:
        calls["steady"] += 1
        return "steady"

    @flow.workflow
    async def fan_out(wf: WorkflowContext) -> list[str]:
        return list(
            await asyncio.gather(
                wf.do("flaky", flaky, retries=2, retry_delay="1min"),
                wf.do("steady", steady),
            )
        )

    run_id = service.start("fan_out")

    run = service.get_run(run_id)
    assert run is not None
    assert run.status is RunStatus.COMPLETED, run.error
    assert run.output == ["ok", "steady"]
    assert calls == {"flaky": 2, "steady": 1}
    assert [d.total_seconds() for d in clock.slept] == [60.0]


def test_branching_follows_step_results(flow: Flow, service: WorkflowService) -> None:
    @flow.workflow
    async def route(wf: WorkflowContext, data: dict[str, int]) -> str:
        size = await wf.do("measure", lambda: data["amount"])
        if size > 100:
            await wf.do("manual review", lambda: "queued")
            return "review"
        await wf.sleep("cool off", "10s")
        await wf.do("auto approve", lambda: "approved")
        return "auto"

    big = service.start("route", {"amount": 500})
    small = service.start("route", {"amount": 5})

    assert [h.step_name for h in service.get_run_history(big)] == ["measure", "manual review"]
    assert [h.step_name for h in service.get_run_history(small)] == [
        "measure",
        "cool off",
        "auto approve",
    ]
    assert service.get_run(big).output == "review"  # type: ignore[union-attr]
    assert service.get_run(small).output == "auto"  # type: ignore[union-attr]


@pytest.mark.parametrize("kind", ["inline", "rpc"])
def test_retry_succeeds_on_attempt_two(
    kind: str, flow: Flow, service: WorkflowService, clock: TimeSkippingClock
) -> None:
    attempts: list[int] = []

    @flow.function
    def send_email() -> str:
        step = current_step()
        assert step is not None
        attempts.append(step.attempt)
        if step.attempt == 1:
            raise ConnectionError("smtp timeout")
        return f"sent on {step.attempt}"

    # Wrapped in a lambda, the same function becomes an inline step.
    target: Any = "send_email" if kind == "rpc" else (lambda: send_email())  # noqa: PLW0108

    @flow.workflow
    async def mail(wf: WorkflowContext) -> str:
        return str(await wf.do("Send", target, retries=3, retry_delay="1s"))

    run_id = service.start("mail")

    run = service.get_run(run_id)
    assert run is not None
    assert run.status is RunStatus.COMPLETED
    assert run.output == "sent on 2"
    assert attempts == [1, 2]
    history = service.get_run_history(run_id)
    assert [(h.attempt, h.status) for h in history] == [
        (1, StepStatus.FAILED),
        (2, StepStatus.SUCCEEDED),
    ]
    assert history[0].error is not None
    assert history[0].error.type == "ConnectionError"
    assert history[0].error.message == "smtp timeout"
    assert [d.total_seconds() for d in clock.slept] == [1.0]


@pytest.mark.parametrize("kind", ["inline", "rpc"])
def test_retries_exhausted_fail_the_run_and_keep_the_error(
    kind: str, flow: Flow, service: WorkflowService
) -> None:
    @flow.function
    def always_down() -> None:
        raise ConnectionError("provider is down")

    target: Any = always_down if kind == "rpc" else (lambda: always_down())  # noqa: PLW0108

    @flow.workflow
    async def doomed(wf: WorkflowContext) -> None:
        await wf.do("Call provider", target, retries=2)
        await wf.do("Never reached", lambda: None)

    run_id = service.start("doomed")

    run = service.get_run(run_id)
    assert run is not None
    assert run.status is RunStatus.FAILED
    assert run.error is not None
    assert run.error.type == "StepFailed"
    assert run.error.step_key == "Call provider"
    assert "after 3 attempts" in run.error.message
    assert "provider is down" in run.error.message
    history = service.get_run_history(run_id)
    # Same count for inline and RPC steps: retries + 1 attempts, every one in the history.
    assert [(h.step_name, h.attempt, h.status) for h in history] == [
        ("Call provider", 1, StepStatus.FAILED),
        ("Call provider", 2, StepStatus.FAILED),
        ("Call provider", 3, StepStatus.FAILED),
    ]


def test_a_workflow_can_catch_a_failed_step_and_compensate(
    flow: Flow, service: WorkflowService
) -> None:
    from lambda_flow import StepFailed

    @flow.workflow
    async def saga(wf: WorkflowContext) -> str:
        try:
            await wf.do("reserve", lambda: 1 / 0)
        except StepFailed as failure:
            await wf.do("release", lambda: "released")
            return f"compensated {failure.step_key}"
        return "no failure"

    run_id = service.start("saga")

    assert service.get_run(run_id).output == "compensated reserve"  # type: ignore[union-attr]


def test_non_retryable_error_skips_remaining_retries(flow: Flow, service: WorkflowService) -> None:
    calls: list[int] = []

    def reject() -> None:
        calls.append(1)
        raise NonRetryableError("card declined")

    @flow.workflow
    async def pay(wf: WorkflowContext) -> None:
        await wf.do("charge", reject, retries=5)

    run_id = service.start("pay")

    assert service.get_run(run_id).status is RunStatus.FAILED  # type: ignore[union-attr]
    assert calls == [1]


def test_current_step_describes_the_running_step(flow: Flow, service: WorkflowService) -> None:
    seen: list[Any] = []

    @flow.function
    def record() -> None:
        step = current_step()
        assert step is not None
        seen.append((step.run_id, step.step_id, step.attempt, step.idempotency_key))

    @flow.workflow
    async def twice(wf: WorkflowContext) -> None:
        await wf.do("Record", record)
        await wf.do("Record", record)

    assert current_step() is None
    run_id = service.start("twice")

    assert seen == [
        (run_id, "Record", 1, f"{run_id}:Record"),
        (run_id, "Record#1", 1, f"{run_id}:Record#1"),
    ]


def test_repeated_names_and_loops_get_occurrence_keys(
    flow: Flow, service: WorkflowService, db: psycopg.Connection[Any]
) -> None:
    runs: Counter[int] = Counter()

    def work(i: int) -> int:
        runs[i] += 1
        return i * 10

    @flow.workflow
    async def loop(wf: WorkflowContext) -> list[int]:
        out = []
        for i in range(3):
            out.append(await wf.do("Process item", lambda i=i: work(i)))
            await wf.sleep("Pause", "1s")  # a new pass, replaying the loop so far, each time
        return out

    run_id = service.start("loop")

    assert service.get_run(run_id).output == [0, 10, 20]  # type: ignore[union-attr]
    assert runs == {0: 1, 1: 1, 2: 1}
    keys = [r[0] for r in db.execute("SELECT step_key FROM steps ORDER BY position").fetchall()]
    assert keys == [
        "Process item",
        "Pause",
        "Process item#1",
        "Pause#1",
        "Process item#2",
        "Pause#2",
    ]


def test_step_arguments_are_checked(flow: Flow, service: WorkflowService) -> None:
    @flow.workflow
    async def misuse(wf: WorkflowContext) -> None:
        await wf.do("inline with data", lambda: 1, {"x": 1})

    run_id = service.start("misuse")

    run = service.get_run(run_id)
    assert run is not None
    assert run.status is RunStatus.FAILED
    assert run.error is not None
    assert "inline step takes no data" in run.error.message


def test_unknown_function_name_fails_the_run_naming_it(
    flow: Flow, service: WorkflowService
) -> None:
    @flow.workflow
    async def typo(wf: WorkflowContext) -> None:
        await wf.do("Call", "no_such_function", {})

    run_id = service.start("typo")

    run = service.get_run(run_id)
    assert run is not None
    assert run.error is not None
    assert run.error.type == "StepFailed"
    assert "FunctionNotFound: unknown function 'no_such_function'" in run.error.message
    # The step is in the history with its error (issue 11): tests/functional/engine/
    # test_step_errors.py covers it in both modes.
    [attempt] = service.get_run_history(run_id)
    assert attempt.error is not None
    assert attempt.error.type == "FunctionNotFound"


def test_rpc_input_failing_validation_fails_the_step_without_retries(
    flow: Flow, service: WorkflowService
) -> None:
    calls: list[Order] = []

    @flow.function
    def ship(order: Order) -> None:
        calls.append(order)

    @flow.workflow
    async def bad(wf: WorkflowContext) -> None:
        await wf.do("Ship", ship, {"order_id": "o1", "amount": "lots"}, retries=3)

    run_id = service.start("bad")

    run = service.get_run(run_id)
    assert run is not None
    assert run.status is RunStatus.FAILED
    assert run.error is not None
    assert "amount" in run.error.message
    assert calls == []
    assert len(service.get_run_history(run_id)) == 1

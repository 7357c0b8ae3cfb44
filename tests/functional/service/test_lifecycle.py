"""Runs from start to end: suspend and resume, cancel, idempotent start, bad input."""

from __future__ import annotations

from collections import Counter
from typing import Any

import psycopg
import pytest
from pydantic import BaseModel

from lambda_flow import (
    Flow,
    InvalidInput,
    InvalidRunState,
    RunCancelled,
    RunFailed,
    RunNotFound,
    RunStatus,
    RunSuspended,
    RunTimedOut,
    StepStatus,
    WorkflowContext,
    WorkflowNotFound,
    WorkflowService,
)
from lambda_flow.testing import TimeSkippingClock
from tests.conftest import count_rows


class Signup(BaseModel):
    email: str
    user_id: str


def test_suspend_then_resume_runs_nothing_twice(flow: Flow, service: WorkflowService) -> None:
    calls: Counter[str] = Counter()

    def effect(name: str) -> str:
        calls[name] += 1
        return name

    @flow.workflow
    async def approval(wf: WorkflowContext) -> str:
        await wf.do("prepare", lambda: effect("prepare"))
        await wf.suspend("Needs approval")
        await wf.do("apply", lambda: effect("apply"))
        return "done"

    run_id = service.start("approval")

    run = service.get_run(run_id)
    assert run is not None
    assert run.status is RunStatus.SUSPENDED
    assert calls == {"prepare": 1}
    # Nothing but resume moves it on: another pass is refused.
    assert service.get_run(run_id).status is RunStatus.SUSPENDED  # type: ignore[union-attr]

    resumed = service.resume(run_id)

    assert resumed.status is RunStatus.COMPLETED
    assert resumed.output == "done"
    assert calls == {"prepare": 1, "apply": 1}
    history = service.get_run_history(run_id)
    assert [(h.step_name, h.status) for h in history] == [
        ("prepare", StepStatus.SUCCEEDED),
        ("Needs approval", StepStatus.SUCCEEDED),
        ("apply", StepStatus.SUCCEEDED),
    ]


def test_each_suspension_point_needs_its_own_resume(flow: Flow, service: WorkflowService) -> None:
    @flow.workflow
    async def two_gates(wf: WorkflowContext) -> str:
        await wf.suspend("first gate")
        await wf.suspend("second gate")
        return "through"

    run_id = service.start("two_gates")
    assert service.resume(run_id).status is RunStatus.SUSPENDED
    assert service.resume(run_id).status is RunStatus.COMPLETED


def test_run_to_completion_reports_suspension(flow: Flow, service: WorkflowService) -> None:
    @flow.workflow
    async def gate(wf: WorkflowContext) -> None:
        await wf.suspend("Manager sign-off")

    with pytest.raises(RunSuspended, match="Manager sign-off"):
        service.run_to_completion("gate")


def test_workflow_cancel_ends_the_run_with_its_reason(
    flow: Flow, service: WorkflowService
) -> None:
    after: list[str] = []

    @flow.workflow
    async def order(wf: WorkflowContext, data: dict[str, int]) -> str:
        if data["amount"] <= 0:
            await wf.cancel(f"Invalid order amount: {data['amount']}")
        after.append("ran")
        return "ok"

    with pytest.raises(RunCancelled, match="Invalid order amount: 0"):
        service.run_to_completion("order", {"amount": 0})

    run = service.list_runs()[0]
    assert run.status is RunStatus.CANCELLED
    assert run.error is not None
    assert run.error.message == "Invalid order amount: 0"
    assert after == []


def test_cancel_is_not_swallowed_by_except_exception(flow: Flow, service: WorkflowService) -> None:
    @flow.workflow
    async def stubborn(wf: WorkflowContext) -> str:
        try:
            await wf.cancel("stop")
        except Exception:
            return "swallowed"
        return "unreachable"

    run_id = service.start("stubborn")

    assert service.get_run(run_id).status is RunStatus.CANCELLED  # type: ignore[union-attr]


def test_external_cancel_of_a_suspended_run(flow: Flow, service: WorkflowService) -> None:
    @flow.workflow
    async def gate(wf: WorkflowContext) -> None:
        await wf.suspend("wait")

    run_id = service.start("gate")

    cancelled = service.cancel(run_id, reason="customer left")

    assert cancelled.status is RunStatus.CANCELLED
    assert cancelled.error is not None
    assert cancelled.error.message == "customer left"
    with pytest.raises(InvalidRunState, match="cancelled"):
        service.resume(run_id)
    with pytest.raises(InvalidRunState):
        service.cancel(run_id)


def test_external_cancel_of_a_sleeping_run_stops_it(
    flow: Flow, make_service: Any, clock: TimeSkippingClock
) -> None:
    ran: list[str] = []

    @flow.workflow
    async def nap(wf: WorkflowContext) -> None:
        await wf.sleep("long nap", "7d")
        await wf.do("after nap", lambda: ran.append("after"))

    service = make_service()
    # A timeout shorter than the sleep leaves the run parked on its timer.
    with pytest.raises(RunTimedOut):
        service.run_to_completion("nap", timeout="1h")
    run_id = service.list_runs()[0].id
    service.cancel(run_id)
    clock.advance("8d")

    with pytest.raises(InvalidRunState):
        service.resume(run_id)
    assert ran == []


def test_operations_on_unknown_runs(service: WorkflowService) -> None:
    unknown = "00000000-0000-4000-8000-000000000000"
    assert service.get_run(unknown) is None
    assert service.get_run("not-a-uuid") is None
    with pytest.raises(RunNotFound):
        service.get_run_history(unknown)
    with pytest.raises(RunNotFound):
        service.resume(unknown)
    with pytest.raises(RunNotFound):
        service.cancel("not-a-uuid")


def test_idempotent_start_returns_the_first_run_and_runs_nothing_again(
    flow: Flow, service: WorkflowService, db: psycopg.Connection[Any]
) -> None:
    calls: list[int] = []

    @flow.workflow
    async def charge(wf: WorkflowContext, data: dict[str, int]) -> None:
        await wf.do("charge card", lambda: calls.append(data["amount"]))

    first = service.start("charge", {"amount": 10}, idempotency_key="order-1")
    again = service.start("charge", {"amount": 10}, idempotency_key="order-1")
    other = service.start("charge", {"amount": 10}, idempotency_key="order-2")

    assert again == first
    assert other != first
    assert calls == [10, 10]
    assert count_rows(db, "runs") == 2
    assert service.get_run(first).idempotency_key == "order-1"  # type: ignore[union-attr]


def test_unknown_workflow_writes_nothing(
    service: WorkflowService, db: psycopg.Connection[Any]
) -> None:
    with pytest.raises(WorkflowNotFound, match="'nope'"):
        service.start("nope", {})
    assert count_rows(db, "runs") == 0


def test_invalid_input_names_the_field_and_writes_nothing(
    flow: Flow, service: WorkflowService, db: psycopg.Connection[Any]
) -> None:
    @flow.workflow
    async def onboard(wf: WorkflowContext, data: Signup) -> None:
        await wf.do("noop", lambda: None)

    with pytest.raises(InvalidInput) as raised:
        service.start("onboard", {"email": "a@b.c"})

    assert "user_id" in str(raised.value)
    assert raised.value.errors[0]["loc"] == ["user_id"]
    assert count_rows(db, "runs") == 0
    assert count_rows(db, "steps") == 0


def test_a_failing_body_fails_the_run(flow: Flow, service: WorkflowService) -> None:
    @flow.workflow
    async def broken(wf: WorkflowContext) -> None:
        await wf.do("fine", lambda: 1)
        raise KeyError("missing config")

    with pytest.raises(RunFailed, match="KeyError"):
        service.run_to_completion("broken")


def test_output_not_matching_the_annotation_fails_the_run(
    flow: Flow, service: WorkflowService
) -> None:
    @flow.workflow
    async def liar(wf: WorkflowContext) -> int:
        return "not a number"  # type: ignore[return-value]

    with pytest.raises(RunFailed, match="output of workflow 'liar'"):
        service.run_to_completion("liar")


def test_list_runs_filters_and_pages(flow: Flow, service: WorkflowService, clock: Any) -> None:
    @flow.workflow
    async def ok(wf: WorkflowContext) -> None:
        return None

    @flow.workflow
    async def gate(wf: WorkflowContext) -> None:
        await wf.suspend("wait")

    ids = []
    for _ in range(3):
        ids.append(service.start("ok"))
        clock.advance("1s")
    suspended = service.start("gate")

    assert [r.id for r in service.list_runs(workflow="ok")] == ids[::-1]
    assert [r.id for r in service.list_runs(status="suspended")] == [suspended]
    page = service.list_runs(limit=2)
    rest = service.list_runs(limit=2, cursor=service.cursor_after(page[-1]))
    assert [r.id for r in page + rest] == [suspended, *ids[::-1]]
    with pytest.raises(InvalidInput, match="unknown status"):
        service.list_runs(status="sleeping")
    with pytest.raises(InvalidInput, match="cursor"):
        service.list_runs(cursor="garbage!")

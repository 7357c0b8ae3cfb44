"""Polling conditions (issue 12, item 2) and resume with a decision (item 7), inline mode.

Ported from the AWS durable-execution conformance requirements (wait-for-condition suite)
where they apply.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from lambda_flow import (
    ConditionNotMet,
    Flow,
    InvalidOption,
    RunStatus,
    StepFailed,
    StepKind,
    StepStatus,
    WorkflowContext,
    WorkflowService,
)
from lambda_flow.testing import TimeSkippingClock


def test_checks_until_the_state_is_truthy_sleeping_with_backoff(
    flow: Flow, service: WorkflowService, clock: TimeSkippingClock
) -> None:
    checks: list[Any] = []

    def job_done(state: dict[str, int]) -> dict[str, int] | None:
        checks.append(state)
        n = state["n"] + 1
        return {"n": n, "done": n >= 4}  # type: ignore[dict-item]

    @flow.workflow
    async def poll(wf: WorkflowContext) -> Any:
        return await wf.wait_for_condition(
            "job", job_done, initial_state={"n": 0}, until=lambda s: s["done"],
            interval="10s", backoff=2.0, max_interval="30s",
        )  # fmt: skip

    run_id = service.start("poll")
    run = service.get_run(run_id)
    assert run is not None
    assert run.status is RunStatus.COMPLETED
    assert run.output == {"n": 4, "done": True}
    assert [c["n"] for c in checks] == [0, 1, 2, 3]  # each check ran once
    assert clock.slept == [timedelta(seconds=s) for s in (10, 20, 30)]  # capped at 30s
    history = service.get_run_history(run_id)
    assert [(a.kind, a.attempt, a.status) for a in history] == [
        (StepKind.CONDITION, n, StepStatus.SUCCEEDED) for n in (1, 2, 3, 4)
    ]
    assert [a.result["n"] for a in history] == [1, 2, 3, 4]


def test_a_waiting_condition_is_pending_with_its_next_check(
    flow: Flow, service: WorkflowService, clock: TimeSkippingClock
) -> None:
    @flow.workflow
    async def poll(wf: WorkflowContext) -> Any:
        return await wf.wait_for_condition("never", lambda s: 0, interval="1h")

    start = clock.now()
    run_id = service.start_and_wait("poll", timeout="30min").id
    run = service.get_run(run_id)
    assert run is not None
    assert run.status is RunStatus.RUNNING
    [item] = run.pending
    assert (item.kind, item.name, item.deadline) == (
        "condition",
        "never",
        start + timedelta(hours=1),
    )


def test_too_many_checks_raise_condition_not_met(flow: Flow, service: WorkflowService) -> None:
    @flow.workflow
    async def poll(wf: WorkflowContext) -> Any:
        try:
            await wf.wait_for_condition("never", lambda s: False, interval="1s", max_attempts=3)
        except ConditionNotMet as exc:
            return [exc.attempts, exc.error_type]
        return None

    run_id = service.start("poll")
    run = service.get_run(run_id)
    assert run is not None
    assert run.output == [3, "ConditionNotMet"]
    assert len(service.get_run_history(run_id)) == 3


def test_a_check_that_raises_fails_the_step(flow: Flow, service: WorkflowService) -> None:
    def broken(state: Any) -> Any:
        raise ValueError("api down")

    @flow.workflow
    async def poll(wf: WorkflowContext) -> Any:
        try:
            await wf.wait_for_condition("c", broken)
        except StepFailed as exc:
            return [type(exc).__name__, exc.error_type, exc.error_message]
        return None

    run_id = service.start("poll")
    run = service.get_run(run_id)
    assert run is not None
    assert run.output == ["StepFailed", "ValueError", "api down"]


def test_a_registered_check_function_gets_the_state(flow: Flow, service: WorkflowService) -> None:
    @flow.function
    async def count(state: int) -> int:
        return state + 1

    @flow.workflow
    async def poll(wf: WorkflowContext) -> Any:
        return await wf.wait_for_condition(
            "count", "count", initial_state=0, until=lambda s: s >= 3, interval=0
        )

    run_id = service.start("poll")
    run = service.get_run(run_id)
    assert run is not None
    assert run.output == 3


def test_a_replayed_condition_returns_its_stored_state(
    flow: Flow, service: WorkflowService
) -> None:
    checks: list[int] = []

    def check(state: int) -> int:
        checks.append(state)
        return state + 1

    @flow.workflow
    async def poll(wf: WorkflowContext) -> Any:
        state = await wf.wait_for_condition("c", check, initial_state=0, until=lambda s: s > 1)
        await wf.suspend("look")
        return state

    run_id = service.start("poll")
    service.resume(run_id)
    run = service.get_run(run_id)
    assert run is not None
    assert run.output == 2
    assert checks == [0, 1]


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("interval", "-5s"),
        ("backoff", 0.5),
        ("max_interval", "0s"),
        ("max_attempts", 0),
        ("check", "not-registered"),
        ("until", "not callable"),
    ],
)
def test_invalid_options_name_the_parameter_and_record_nothing(
    flow: Flow, service: WorkflowService, option: str, value: Any
) -> None:
    options: dict[str, Any] = {option: value}
    check = options.pop("check", lambda s: True)

    @flow.workflow
    async def bad(wf: WorkflowContext) -> Any:
        try:
            await wf.wait_for_condition("c", check, **options)
        except InvalidOption as exc:
            return exc.parameter
        return None

    run_id = service.start("bad")
    run = service.get_run(run_id)
    assert run is not None
    assert run.output == option
    assert service.get_run_history(run_id) == []


def test_resume_with_a_payload_is_what_suspend_returns(
    flow: Flow, service: WorkflowService
) -> None:
    @flow.workflow
    async def approval(wf: WorkflowContext) -> Any:
        decision = await wf.suspend("manager approval")
        again = await wf.do("after", lambda: "done")
        return {"decision": decision, "after": again}

    run_id = service.start("approval")
    run = service.get_run(run_id)
    assert run is not None
    assert run.status is RunStatus.SUSPENDED
    assert [(p.kind, p.name) for p in run.pending] == [("suspend", "manager approval")]
    service.resume(run_id, {"approved": False, "comment": "too expensive"})
    run = service.get_run(run_id)
    assert run is not None
    assert run.output == {
        "decision": {"approved": False, "comment": "too expensive"},
        "after": "done",
    }
    [step] = [a for a in service.get_run_history(run_id) if a.kind == StepKind.SUSPEND]
    assert step.result == {"approved": False, "comment": "too expensive"}


def test_resume_without_a_payload_still_returns_none(flow: Flow, service: WorkflowService) -> None:
    @flow.workflow
    async def approval(wf: WorkflowContext) -> Any:
        return {"decision": await wf.suspend("ok?")}

    run_id = service.start("approval")
    service.resume(run_id)
    run = service.get_run(run_id)
    assert run is not None
    assert run.output == {"decision": None}

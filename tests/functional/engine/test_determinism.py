"""Invariant 3: replay that asks for a different step than recorded fails the run loudly."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from lambda_flow import Flow, RunStatus, RunTimedOut, WorkflowContext, WorkflowService


@pytest.fixture
def deployed(flow: Flow, make_service: Any) -> Any:
    """Start v1 of a workflow, park it on a timer, then "deploy" a changed version."""

    effects: Counter[str] = Counter()
    version = {"current": "v1"}

    @flow.function
    def charge() -> str:
        effects["charge"] += 1
        return "charged"

    @flow.function
    def refund() -> str:
        effects["refund"] += 1
        return "refunded"

    @flow.workflow
    async def billing(wf: WorkflowContext) -> str:
        v = version["current"]
        if v == "insert-before-sleep":
            await wf.do("Charge", charge)
            await wf.do("Audit", lambda: effects.update(["audit"]))
        elif v == "other-target":
            await wf.do("Charge", refund)
        elif v == "sleep-removed":
            await wf.do("Charge", charge)
            await wf.do("Email", lambda: effects.update(["email"]))
            return "early"
        elif v == "returns-early":
            await wf.do("Charge", charge)
            return "early"
        else:
            await wf.do("Charge", charge)
        await wf.sleep("Cool off", "1h")
        await wf.do("Email", lambda: effects.update(["email"]))
        return "done"

    service = make_service()
    with pytest.raises(RunTimedOut):
        service.run_to_completion("billing", timeout="1min")
    run_id = service.list_runs()[0].id

    def deploy(new_version: str) -> WorkflowService:
        version["current"] = new_version
        return make_service()  # type: ignore[no-any-return]

    return run_id, deploy, effects


def _failure(service: WorkflowService, run_id: str) -> Any:
    run = service.resume(run_id)
    assert run.status is RunStatus.FAILED
    assert run.error is not None
    assert run.error.type == "NonDeterminismError"
    return run.error


def test_a_step_inserted_before_recorded_ones_is_caught(deployed: Any) -> None:
    run_id, deploy, effects = deployed
    service = deploy("insert-before-sleep")

    error = _failure(service, run_id)

    assert "'Audit'" in error.message
    assert "'Cool off'" in error.message
    assert effects == {"charge": 1}  # the new step never ran


def test_a_different_function_at_the_same_step_is_caught(deployed: Any) -> None:
    run_id, deploy, effects = deployed

    error = _failure(deploy("other-target"), run_id)

    assert "'Charge'" in error.message
    assert "'charge'" in error.message
    assert "'refund'" in error.message
    assert effects == {"charge": 1}


def test_a_removed_step_is_caught(deployed: Any) -> None:
    run_id, deploy, effects = deployed

    error = _failure(deploy("sleep-removed"), run_id)

    assert "'Email'" in error.message
    assert "'Cool off'" in error.message
    assert effects == {"charge": 1}


def test_returning_before_a_recorded_step_is_caught(deployed: Any) -> None:
    run_id, deploy, _ = deployed

    error = _failure(deploy("returns-early"), run_id)

    assert "returned without reaching recorded sleep step 'Cool off'" in error.message


def test_unchanged_code_replays_cleanly(deployed: Any) -> None:
    run_id, deploy, effects = deployed

    run = deploy("v1").resume(run_id)

    assert run.status is RunStatus.COMPLETED
    assert effects == {"charge": 1, "email": 1}


def test_the_error_names_the_run_and_step(deployed: Any) -> None:
    from lambda_flow import NonDeterminismError

    run_id, deploy, _ = deployed
    error = _failure(deploy("other-target"), run_id)

    assert run_id in error.message
    assert NonDeterminismError(run_id, "Charge", "x").step_key == "Charge"


def test_the_run_error_carries_the_diverging_step_key(deployed: Any) -> None:
    run_id, deploy, _ = deployed

    error = _failure(deploy("insert-before-sleep"), run_id)

    assert error.step_key == "Cool off"

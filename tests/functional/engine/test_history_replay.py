"""Recorded histories replayed against the code: a deploy-time check for non-determinism."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from lambda_flow import (
    Flow,
    InvalidInput,
    NonDeterminismError,
    RunNotFound,
    RunStatus,
    RunTimedOut,
    WorkflowContext,
    WorkflowService,
)
from lambda_flow.testing import replay_history
from tests import ROOT

HISTORIES = ROOT / "tests" / "histories"


@pytest.fixture
def recorded(flow: Flow, make_service: Any) -> Any:
    effects: Counter[str] = Counter()
    version = {"current": "v1"}

    @flow.function
    def charge(data: dict[str, int]) -> dict[str, int]:
        effects["charge"] += 1
        return {"charged": data["amount"]}

    @flow.workflow
    async def billing(wf: WorkflowContext, data: dict[str, int]) -> str:
        receipt = await wf.do("Charge", charge, data)
        if version["current"] == "v2-inserted":
            await wf.do("Audit", lambda: effects.update(["audit"]))
        await wf.sleep("Cool off", "1h")
        await wf.do("Email", lambda: effects.update(["email"]) or f"sent {receipt['charged']}")
        return "done"

    service: WorkflowService = make_service()
    with pytest.raises(RunTimedOut):
        service.run_to_completion("billing", {"amount": 5}, timeout="1min")
    parked = service.export_run(service.list_runs()[0].id)
    finished_id = service.start("billing", {"amount": 7})
    finished = service.export_run(finished_id)
    return flow, version, effects, parked, finished


def test_unchanged_code_replays_its_histories_without_running_anything(recorded: Any) -> None:
    flow, _, effects, parked, finished = recorded
    before = dict(effects)

    assert replay_history(flow, finished) is RunStatus.COMPLETED
    assert replay_history(flow, parked) is RunStatus.RUNNING  # the history ends at the sleep
    assert effects == before


def test_a_changed_workflow_is_caught_before_it_is_deployed(recorded: Any) -> None:
    flow, version, effects, parked, finished = recorded
    version["current"] = "v2-inserted"
    before = dict(effects)

    with pytest.raises(NonDeterminismError, match="'Audit'") as raised:
        replay_history(flow, finished)
    assert raised.value.step_key == "Cool off"
    with pytest.raises(NonDeterminismError):
        replay_history(flow, parked)
    assert effects == before


def test_histories_survive_json(recorded: Any, tmp_path: Path) -> None:
    flow, _, _, _, finished = recorded
    path = tmp_path / "billing.json"
    path.write_text(json.dumps(finished))

    assert replay_history(flow, json.loads(path.read_text())) is RunStatus.COMPLETED


def test_bad_histories_and_unknown_runs(recorded: Any, service: WorkflowService) -> None:
    flow, _, _, _, finished = recorded
    with pytest.raises(InvalidInput, match="lambda-flow-history/1"):
        replay_history(flow, {"steps": []})
    with pytest.raises(InvalidInput, match="malformed step"):
        replay_history(flow, {**finished, "steps": [{"step_key": "x"}]})
    with pytest.raises(RunNotFound):
        service.export_run("00000000-0000-4000-8000-000000000000")


def test_the_onboarding_example_still_replays_its_recorded_history() -> None:
    """A history recorded from examples/onboarding.py and kept in tests/histories: a change to
    the example that would break runs already in flight fails here."""
    from examples.onboarding import flow

    history = json.loads((HISTORIES / "onboarding.json").read_text())

    assert replay_history(flow, history) is RunStatus.COMPLETED


def test_cli_export_then_replay(
    capsys: Any, database_url: str, schema: str, tmp_path: Path
) -> None:
    from lambda_flow.cli import main

    base = ["--app", "examples.onboarding:flow", "--database-url", database_url]
    base += ["--schema", schema]
    assert main([*base, "demo", "--welcome-delay", "0s"]) == 0
    run_id = next(
        line.split()[1]
        for line in capsys.readouterr().out.splitlines()
        if line.startswith("run_id")
    )
    assert main([*base, "export", run_id]) == 0
    exported = tmp_path / "run.json"
    exported.write_text(capsys.readouterr().out)

    assert main([*base, "replay", str(exported)]) == 0
    assert "ok: the code replays all 5 recorded steps (completed at the end)" in (
        capsys.readouterr().out
    )

    history = json.loads(exported.read_text())
    history["steps"][0]["target"] = "send_email"  # as if the code had changed under the run
    exported.write_text(json.dumps(history))
    assert main([*base, "replay", str(exported)]) == 1
    assert "diverged: non-determinism" in capsys.readouterr().err
    assert main([*base, "replay", str(tmp_path / "missing.json")]) == 2


@pytest.mark.parametrize(
    ("name", "status"),
    [("retried_step", RunStatus.COMPLETED), ("cancelled_cleanup", RunStatus.CANCELLED)],
)
def test_recorded_policy_histories_replay(name: str, status: RunStatus) -> None:
    """A step retried by its policy (every attempt kept, jittered waits stored) and a run
    cancelled while suspended that refunded in its cleanup (issue 12, items 3, 5 and 6)."""
    from tests.histories.policies_app import flow

    history = json.loads((HISTORIES / f"{name}.json").read_text())

    assert replay_history(flow, history) is status


def test_a_cleanup_that_changed_is_caught_on_replay() -> None:
    from tests.histories.policies_app import flow as recorded_flow

    changed = Flow()

    @changed.workflow
    async def cancelled_order(wf: WorkflowContext, data: dict[str, int]) -> str:
        await wf.do("Charge", lambda: "charged")
        try:
            await wf.suspend("Ship")
        finally:
            await wf.do("Release stock", lambda: "released")  # the history has "Refund" here
        return "shipped"

    history = json.loads((HISTORIES / "cancelled_cleanup.json").read_text())
    assert replay_history(recorded_flow, history) is RunStatus.CANCELLED
    with pytest.raises(NonDeterminismError):
        replay_history(changed, history)


def test_a_parked_history_whose_step_the_code_dropped_diverges(
    flow: Flow, service: WorkflowService
) -> None:
    @flow.workflow
    async def ship_order(wf: WorkflowContext) -> str:
        fee = await wf.do("Shipping fee", lambda: 5)
        await wf.suspend("Approve")
        return f"fee {fee}"

    history = service.export_run(service.start("ship_order"))  # parked at "Approve"
    dropped = Flow()

    @dropped.workflow(name="ship_order")
    async def ship_order_without_fee(wf: WorkflowContext) -> str:
        await wf.suspend("Approve")
        return "fee 0"

    assert replay_history(flow, history) == RunStatus.SUSPENDED
    with pytest.raises(NonDeterminismError, match="without reaching recorded") as raised:
        replay_history(dropped, history)
    assert raised.value.step_key == "Shipping fee"

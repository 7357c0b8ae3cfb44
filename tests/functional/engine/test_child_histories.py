"""Recorded histories of parents of child workflows, replayed against the code.

``tests/histories/child_order.json`` is a parent that completed after its child
(``wf.child``); ``child_failed.json`` a parent that caught its child's
:class:`~lambda_flow.ChildFailed` (``wf.start_child`` and ``handle.result()``). Their workflows
are in ``tests/histories/children_app.py``, which re-records them. A replay reads the child's
outcome from the parent's ``child`` step and starts nothing; a parent that now starts another
workflow at that step is non-deterministic (invariant 3, docs/architecture.md).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from lambda_flow import ChildFailed, Flow, NonDeterminismError, RunStatus, WorkflowContext
from lambda_flow.testing import replay_history
from tests import ROOT
from tests.histories.children_app import flow

HISTORIES = ROOT / "tests" / "histories"
APP = "tests.histories.children_app:flow"


def _history(name: str) -> dict[str, Any]:
    return json.loads((HISTORIES / name).read_text())  # type: ignore[no-any-return]


@pytest.mark.parametrize(("name", "steps"), [
    ("child_order.json", [("Reserve", "inline", None, "succeeded"),
                          ("Provision", "child", "provision", "succeeded"),
                          ("Ship", "inline", None, "succeeded")]),
    ("child_failed.json", [("Reserve", "inline", None, "succeeded"),
                           ("Charge", "child", "charge_card", "failed"),
                           ("Release", "inline", None, "succeeded")]),
])  # fmt: skip
def test_recorded_parents_of_children_replay(name: str, steps: list[tuple[Any, ...]]) -> None:
    history = _history(name)
    assert history["run"]["status"] == "completed"
    assert [(s["step_key"], s["kind"], s["target"], s["status"]) for s in history["steps"]] == (
        steps
    )

    assert replay_history(flow, history) is RunStatus.COMPLETED


def test_a_replayed_child_failure_is_the_recorded_one() -> None:
    """The caught ChildFailed is rebuilt from the step's record, with the child's derived id."""
    from lambda_flow.engine._child import child_run_id

    caught: list[ChildFailed] = []
    checking = Flow()
    checking.workflow(flow.get_workflow("charge_card").fn)

    @checking.workflow(name="child_refund")
    async def child_refund(wf: WorkflowContext, data: dict[str, Any]) -> dict[str, Any]:
        await wf.do("Reserve", lambda: f"reserved {data['sku']}")
        handle = await wf.start_child("Charge", "charge_card", {"amount": data["amount"]})
        try:
            await handle.result()
        except ChildFailed as failed:
            caught.append(failed)
            error_type = failed.error_type
            await wf.do("Release", lambda: f"released {data['sku']}: {error_type}")
            return {"charged": False, "child_error": error_type}
        return {"charged": True}

    history = _history("child_failed.json")
    assert replay_history(checking, history) is RunStatus.COMPLETED
    [failed] = caught
    assert failed.step_key == "Charge"
    assert failed.error_type == "StepFailed"
    assert "card declined for 30" in failed.error_message
    assert failed.child_run_id == child_run_id(history["run"]["id"], "Charge")


@pytest.mark.parametrize("name", ["child_order.json", "child_failed.json"])
def test_the_cli_replays_the_recorded_parents(name: str, capsys: Any) -> None:
    from lambda_flow.cli import main

    assert main(["--app", APP, "replay", str(HISTORIES / name)]) == 0
    assert "ok: the code replays all 3 recorded steps (completed at the end)" in (
        capsys.readouterr().out
    )


def _changed() -> Flow:
    """``child_order`` with another child workflow at step ``Provision``."""
    changed = Flow()
    changed.workflow(flow.get_workflow("provision").fn)

    @changed.workflow
    async def provision_v2(wf: WorkflowContext, data: dict[str, str]) -> dict[str, str]:
        return {"workspace": str(await wf.do("Create", lambda: data["customer"]))}

    @changed.workflow(name="child_order")
    async def child_order(wf: WorkflowContext, data: dict[str, Any]) -> str:
        await wf.do("Reserve", lambda: f"reserved {data['sku']}")
        workspace = await wf.child("Provision", provision_v2, {"customer": data["customer"]})
        return str(await wf.do("Ship", lambda: f"shipped to {workspace['workspace']}"))

    return changed


def test_a_different_child_workflow_at_a_recorded_step_is_caught() -> None:
    with pytest.raises(NonDeterminismError) as raised:
        replay_history(_changed(), _history("child_order.json"))
    assert raised.value.step_key == "Provision"
    message = str(raised.value)
    assert "the history has a child step running workflow 'provision' there" in message
    assert "the code now asks for a child step running workflow 'provision_v2'" in message


def test_the_cli_catches_a_different_child_workflow(
    capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys
    import types

    from lambda_flow.cli import main

    module = types.ModuleType("changed_children_app")
    module.flow = _changed()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "changed_children_app", module)

    history = str(HISTORIES / "child_order.json")
    assert main(["--app", "changed_children_app:flow", "replay", history]) == 1
    assert "diverged: non-determinism in run" in capsys.readouterr().err

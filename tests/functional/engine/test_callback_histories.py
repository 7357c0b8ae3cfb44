"""Recorded histories of a callback run and a polling-condition run, replayed against the code.

The JSON files in tests/histories were exported (``service.export_run``) from runs of the
workflows below; a change to them that would break those runs is caught here (invariant 3,
docs/architecture.md). Re-record with ``python -m tests.functional.engine.test_callback_histories``
against a scratch database only when a change is meant.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from lambda_flow import Flow, NonDeterminismError, RunStatus, WorkflowContext
from lambda_flow.testing import replay_history
from tests import ROOT

HISTORIES = ROOT / "tests" / "histories"

app = Flow()


@app.function
def ask_provider(request: dict[str, Any]) -> str:
    return str(request["callback_id"])


@app.workflow
async def checkout(wf: WorkflowContext, data: dict[str, Any]) -> Any:
    payment = await wf.wait_for_callback("Payment", ask_provider, data, timeout="1d")
    receipt = await wf.do("Receipt", lambda: f"paid {payment['amount']}")
    return {"receipt": receipt}


@app.workflow
async def export_job(wf: WorkflowContext) -> Any:
    return await wf.wait_for_condition(
        "Export", lambda n: n + 1, initial_state=0, until=lambda n: n >= 3, interval="30s"
    )


@pytest.mark.parametrize(("name", "kinds"), [
    ("callback.json", ["callback", "rpc", "inline"]),
    ("condition.json", ["condition"]),
])  # fmt: skip
def test_recorded_histories_replay(name: str, kinds: list[str]) -> None:
    history = json.loads((HISTORIES / name).read_text())
    assert [s["kind"] for s in history["steps"]] == kinds
    assert replay_history(app, history) is RunStatus.COMPLETED


def test_a_changed_callback_workflow_is_caught() -> None:
    changed = Flow()

    @changed.workflow(name="checkout")
    async def checkout_changed(wf: WorkflowContext, data: dict[str, Any]) -> Any:
        await wf.sleep("Payment", "1d")  # a sleep where the history has a callback
        return None

    history = json.loads((HISTORIES / "callback.json").read_text())
    with pytest.raises(NonDeterminismError):
        replay_history(changed, history)


def _record() -> None:  # pragma: no cover - run by hand to re-record
    from lambda_flow import PostgresStore, WorkflowService
    from lambda_flow.store.embedded import resolve_database_url
    from lambda_flow.testing import TimeSkippingClock

    service = WorkflowService(
        app, store=PostgresStore(resolve_database_url(), schema="histories_scratch"),
        clock=TimeSkippingClock(),
    )  # fmt: skip
    run_id = service.start("checkout", {"amount": 30})
    run = service.get_run(run_id)
    assert run is not None
    assert run.pending[0].callback_id is not None
    service.complete_callback(run.pending[0].callback_id, {"amount": 30})
    (HISTORIES / "callback.json").write_text(json.dumps(service.export_run(run_id), indent=2))
    run_id = service.start("export_job")
    (HISTORIES / "condition.json").write_text(json.dumps(service.export_run(run_id), indent=2))


if __name__ == "__main__":  # pragma: no cover
    _record()

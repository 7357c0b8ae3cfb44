"""Recorded histories of an order workflow before and after a ``wf.patched`` change.

``pre_patch_order.json`` was recorded (``service.export_run``) from :data:`old_app`, the code
before the patch; ``patched_order.json`` from :data:`app`, the patched code, which is what is
deployed now. Both must replay against :data:`app`: the deploy check ``lambda-flow replay``
runs before shipping a patch. Re-record with ``_record(database_url)`` against a scratch schema
only when a change is meant.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from lambda_flow import Flow, NonDeterminismError, RunStatus, WorkflowContext
from lambda_flow.testing import replay_history
from tests import ROOT

HISTORIES = ROOT / "tests" / "histories"

old_app = Flow()
app = Flow()


@old_app.workflow(name="order")
async def order_before(wf: WorkflowContext, data: dict[str, Any]) -> str:
    await wf.do("Reserve", lambda: f"reserved {data['sku']}")
    shipping = await wf.do("Shipping fee", lambda: 5)
    decision = await wf.suspend("Approve")
    return await wf.do("Ship", lambda: f"{decision}, shipping {shipping}")


@app.workflow(name="order")
async def order_patched(wf: WorkflowContext, data: dict[str, Any]) -> str:
    await wf.do("Reserve", lambda: f"reserved {data['sku']}")
    if wf.patched("free-shipping"):
        shipping = 0
    else:
        shipping = await wf.do("Shipping fee", lambda: 5)
    decision = await wf.suspend("Approve")
    return await wf.do("Ship", lambda: f"{decision}, shipping {shipping}")


@pytest.mark.parametrize(("name", "keys"), [
    ("pre_patch_order.json", ["Reserve", "Shipping fee", "Approve", "Ship"]),
    ("patched_order.json", ["Reserve", "patch:free-shipping", "Approve", "Ship"]),
])  # fmt: skip
def test_histories_before_and_after_the_patch_replay_on_the_patched_code(
    name: str, keys: list[str]
) -> None:
    history = json.loads((HISTORIES / name).read_text())
    assert [s["step_key"] for s in history["steps"]] == keys

    assert replay_history(app, history) is RunStatus.COMPLETED


def test_the_patched_history_does_not_replay_on_the_old_code() -> None:
    history = json.loads((HISTORIES / "patched_order.json").read_text())

    with pytest.raises(NonDeterminismError, match="patch:free-shipping"):
        replay_history(old_app, history)


def _record(database_url: str) -> None:  # pragma: no cover - run by hand to re-record
    from lambda_flow import PostgresStore, WorkflowService
    from lambda_flow.testing import TimeSkippingClock

    store = PostgresStore(database_url, schema="histories_scratch")
    for flow, name in ((old_app, "pre_patch_order.json"), (app, "patched_order.json")):
        service = WorkflowService(flow, store=store, clock=TimeSkippingClock())
        run_id = service.start("order", {"sku": "book"})
        service.resume(run_id, "approved")
        (HISTORIES / name).write_text(json.dumps(service.export_run(run_id), indent=2) + "\n")

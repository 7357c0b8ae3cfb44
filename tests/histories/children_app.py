"""The workflows of the recorded histories ``child_order.json`` and ``child_failed.json``.

``child_order.json`` is a parent that completed after its child (``wf.child``);
``child_failed.json`` a parent that started a child (``wf.start_child``), caught its
:class:`~lambda_flow.ChildFailed` and refunded. Only the parents' histories are kept: a child is
a run of its own, and the parent's ``child`` step holds its outcome. Both are replayed by
``tests/functional/engine/test_child_histories.py``, with ``replay_history`` and with
``lambda-flow --app tests.histories.children_app:flow replay FILE``. Regenerate them (after a
deliberate change) with ``python -m tests.histories.children_app [DATABASE_URL]`` (without
a URL, on a private embedded Postgres deleted at exit).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from lambda_flow import ChildFailed, Flow, NonRetryableError, WorkflowContext

flow = Flow()


@flow.workflow
async def provision(wf: WorkflowContext, data: dict[str, str]) -> dict[str, str]:
    """The child of ``child_order``: creates a workspace and lets it warm up."""
    workspace = await wf.do("Create", lambda: f"ws-{data['customer']}")
    await wf.sleep("Warm up", "10min")
    return {"workspace": workspace, "region": "eu"}


@flow.workflow
async def child_order(wf: WorkflowContext, data: dict[str, Any]) -> str:
    """Reserves, provisions through a child workflow, then ships."""
    await wf.do("Reserve", lambda: f"reserved {data['sku']}")
    workspace = await wf.child("Provision", provision, {"customer": data["customer"]}, timeout="1h")
    return str(await wf.do("Ship", lambda: f"shipped {data['sku']} to {workspace['workspace']}"))


@flow.workflow
async def charge_card(wf: WorkflowContext, data: dict[str, Any]) -> str:
    """The child of ``child_refund``: a card that is always declined."""

    def charge() -> str:
        raise NonRetryableError(f"card declined for {data['amount']}")

    return str(await wf.do("Charge", charge))


@flow.workflow
async def child_refund(wf: WorkflowContext, data: dict[str, Any]) -> dict[str, Any]:
    """Starts a charge as a child (a handle), waits for it, refunds when it failed."""
    await wf.do("Reserve", lambda: f"reserved {data['sku']}")
    handle = await wf.start_child("Charge", charge_card, {"amount": data["amount"]})
    try:
        receipt = await handle.result()
    except ChildFailed as failed:
        error_type = failed.error_type
        await wf.do("Release", lambda: f"released {data['sku']}: {error_type}")
        return {"charged": False, "child_error": error_type}
    return {"charged": True, "receipt": receipt}


def record(database_url: str) -> None:  # pragma: no cover - run by hand
    """Record both runs on ``database_url`` and write their histories next to this file."""
    from pathlib import Path

    from lambda_flow import PostgresStore, WorkflowService
    from lambda_flow.testing import TimeSkippingClock

    here = Path(__file__).parent
    store = PostgresStore(database_url, schema="histories_scratch")
    service = WorkflowService(flow, store=store, clock=TimeSkippingClock())
    ordered = service.start_and_wait("child_order", {"sku": "book", "customer": "acme"})
    refunded = service.start_and_wait("child_refund", {"sku": "lamp", "amount": 30})
    assert ordered.status == "completed", ordered.error
    assert refunded.output == {"charged": False, "child_error": "StepFailed"}, refunded
    for name, run_id in (("child_order", ordered.id), ("child_failed", refunded.id)):
        text = json.dumps(service.export_run(run_id), indent=2, default=str) + "\n"
        (here / f"{name}.json").write_text(text)


if __name__ == "__main__":  # pragma: no cover
    from lambda_flow.testing._services import resolve_test_database_url

    record(sys.argv[1] if len(sys.argv) > 1 else resolve_test_database_url())

"""The workflows of the recorded histories ``retried_step.json`` and ``cancelled_cleanup.json``.

Regenerate them (after a deliberate change) with ``python -m tests.histories.policies_app``.
"""

from __future__ import annotations

import json
import sys
from collections import Counter

from lambda_flow import Flow, RetryPolicy, WorkflowCancelled, WorkflowContext, current_step

flow = Flow()
calls: Counter[str] = Counter()


@flow.function(retry=RetryPolicy(max_attempts=4, initial_delay="1s", jitter="full"))
def reserve_stock(data: dict[str, int]) -> str:
    """Fails twice (a busy warehouse), then reserves."""
    step = current_step()
    if step is not None and step.attempt < 3:
        raise ConnectionError("warehouse busy")
    return f"reserved {data['quantity']}"


@flow.workflow
async def retried_order(wf: WorkflowContext, data: dict[str, int]) -> str:
    """A step retried by its function's policy, with jittered waits."""
    reserved = await wf.do("Reserve", reserve_stock, data)
    await wf.do("Confirm", lambda: f"confirmed: {reserved}", timeout="30s", at_most_once=True)
    return str(reserved)


@flow.workflow
async def cancelled_order(wf: WorkflowContext, data: dict[str, int]) -> str:
    """Charges, waits for shipping, refunds when cancelled."""
    await wf.do("Charge", lambda: f"charged {data['amount']}")
    try:
        await wf.suspend("Ship")
    except WorkflowCancelled as cancelled:
        reason = cancelled.reason
        await wf.do("Refund", lambda: f"refunded {data['amount']}: {reason}")
        raise
    return "shipped"


def record(database_url: str) -> None:  # pragma: no cover - run by hand
    """Record both runs on ``database_url`` and write their histories next to this file."""
    from pathlib import Path

    from lambda_flow import PostgresStore, WorkflowService
    from lambda_flow.testing import TimeSkippingClock

    here = Path(__file__).parent
    service = WorkflowService(flow, store=PostgresStore(database_url), clock=TimeSkippingClock())
    retried = service.start("retried_order", {"quantity": 2})
    cancelled = service.start("cancelled_order", {"amount": 30})
    service.cancel(cancelled, "out of stock")
    for name, run_id in (("retried_step", retried), ("cancelled_cleanup", cancelled)):
        text = json.dumps(service.export_run(run_id), indent=2, default=str) + "\n"
        (here / f"{name}.json").write_text(text)


if __name__ == "__main__":  # pragma: no cover
    record(sys.argv[1])

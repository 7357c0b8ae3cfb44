"""An app for ``lambda-flow dev`` tests of issue 12's primitives, on the real clock.

Every wait is tiny (hundreds of milliseconds) so the tests stay fast; the flaky and slow steps
decide by their attempt number (:func:`current_step`), never by state shared with the test.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel

from lambda_flow import (
    Flow,
    RetryPolicy,
    WorkflowCancelled,
    WorkflowContext,
    current_step,
)

flow = Flow()

CHECKS = 3
"""How many checks ``poll_job`` makes before its condition holds."""
FLAKY_FAILURES = 2
"""How many attempts of ``flaky_rate`` fail before one succeeds."""


def _attempt() -> int:
    step = current_step()
    assert step is not None, "called outside a step"
    return step.attempt


# -- (a) a condition polled every 200ms --------------------------------------------------------
def _check_job(state: dict[str, int]) -> dict[str, int]:
    return {"checks": state["checks"] + 1}


@flow.workflow
async def poll_job(wf: WorkflowContext, data: dict[str, Any]) -> dict[str, int]:
    """Poll until three checks have been made, 200ms apart."""
    state: dict[str, int] = await wf.wait_for_condition(
        "Job done", _check_job, initial_state={"checks": 0},
        until=lambda s: s["checks"] >= CHECKS, interval="200ms", max_attempts=10,
    )  # fmt: skip
    return state


# -- (b) an approval resumed with a decision ---------------------------------------------------
@flow.workflow
async def approval(wf: WorkflowContext, data: dict[str, Any]) -> str:
    """Suspend for a decision; the output says what it was."""
    decision = await wf.suspend("Manager approval")
    if not decision["approved"]:
        return f"rejected: {decision['comment']}"
    return "approved"


# -- (c) an RPC step retried with a short backoff ----------------------------------------------
@flow.function(retry=RetryPolicy(max_attempts=4, initial_delay="50ms", backoff=2.0, jitter="none"))
def flaky_rate(data: dict[str, Any]) -> float:
    """Fails its first two attempts, as a busy rate service would."""
    if _attempt() <= FLAKY_FAILURES:
        raise ConnectionError("rate service busy")
    return 1.5


@flow.workflow
async def convert(wf: WorkflowContext, data: dict[str, Any]) -> float:
    """Convert an amount at a rate fetched from a flaky service."""
    rate: float = await wf.do("Fetch rate", flaky_rate, data)
    return float(data["amount"]) * rate


# -- (d) a step timeout, then a retry that is quick enough -------------------------------------
@flow.function
async def slow_lookup(data: dict[str, Any]) -> str:
    """Hangs on its first attempt (past the 300ms timeout), answers at once on the next."""
    if _attempt() == 1:
        await asyncio.sleep(30)
    return "found"


@flow.workflow
async def lookup(wf: WorkflowContext, data: dict[str, Any]) -> str:
    """One bounded step with one retry."""
    found: str = await wf.do(
        "Lookup",
        slow_lookup,
        data,
        timeout="300ms",
        retry=RetryPolicy(max_attempts=2, initial_delay="10ms"),
    )
    return found


# -- (e) a cancelled order that refunds --------------------------------------------------------
@flow.function
def refund(data: dict[str, Any]) -> str:
    """The compensating step: an RPC step run after the cancellation was requested."""
    return f"refunded {data['amount']} ({data['reason']})"


@flow.workflow
async def order(wf: WorkflowContext, data: dict[str, Any]) -> str:
    """Charge, wait to ship; a cancellation while waiting refunds and ends the run cancelled."""
    await wf.do("Charge", lambda: f"charged {data['amount']}")
    try:
        await wf.suspend("Ship")
    except WorkflowCancelled as cancelled:
        await wf.do("Refund", refund, {"amount": data["amount"], "reason": cancelled.reason})
        raise
    return "shipped"


# -- (f) a run bounded by a deadline -----------------------------------------------------------
@flow.workflow
async def nap(wf: WorkflowContext, data: dict[str, Any]) -> str:
    """Sleeps an hour: only a run deadline ends it in a test."""
    await wf.sleep("Long nap", "1h")
    return "rested"


# -- (g) a typed callback completed from the command line --------------------------------------
class Payment(BaseModel):
    amount: int
    currency: str


@flow.workflow
async def pay(wf: WorkflowContext, data: dict[str, Any]) -> str:
    """Wait for a payment callback; its payload is validated into :class:`Payment`."""
    cb = await wf.callback("Payment", timeout="5min", type=Payment)
    payment = await cb.result()
    return f"paid {payment.amount} {payment.currency}"

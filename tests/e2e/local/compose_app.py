"""An app for ``lambda-flow dev`` tests of issue 13's composition: child workflows, map with a
concurrency limit, parallel branches and fork, on the real clock.

The dev server is another process, so what ran is not counted in memory here: every RPC function
appends a line to the log file named in its input (``log``): ``start NAME`` when it begins and
``end NAME`` when it returns. The test reads the file afterwards: how often each item ran, and how
many ran at once. Waits are tiny so the tests stay fast.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from lambda_flow import Flow, WorkflowContext

flow = Flow()

ITEM_SECONDS = 0.1
"""How long one map item's step takes: long enough for items in flight to overlap."""
MAP_LIMIT = 2
"""``bill_all``'s ``max_concurrency``."""


def _note(log: str, line: str) -> None:
    with Path(log).open("a", encoding="utf-8") as file:  # one short append: one whole line
        file.write(line + "\n")


# -- child workflows ---------------------------------------------------------------------------
@flow.function
def create_workspace(data: dict[str, str]) -> str:
    _note(data["log"], f"start create:{data['name']}")
    _note(data["log"], f"end create:{data['name']}")
    return f"ws-{data['name']}"


@flow.workflow
async def provision(wf: WorkflowContext, data: dict[str, str]) -> str:
    """The child: one RPC step on a dev step worker, and a short durable sleep."""
    workspace: str = await wf.do("Create", create_workspace, data)
    await wf.sleep("Warm up", "100ms")
    return workspace


@flow.workflow
async def order(wf: WorkflowContext, data: dict[str, Any]) -> dict[str, Any]:
    """Starts one child per name, then waits for them all (parked meanwhile)."""
    handles = [
        await wf.start_child(f"Provision {name}", provision, {"name": name, "log": data["log"]})
        for name in data["names"]
    ]
    return {
        "children": [h.run_id for h in handles],
        "workspaces": [await h.result() for h in handles],
    }


# -- map with a concurrency limit over a registered function -----------------------------------
@flow.function
def bill(item: dict[str, Any]) -> int:
    _note(item["log"], f"start bill:{item['n']}")
    time.sleep(ITEM_SECONDS)  # the work itself (a step), so that items in flight overlap
    _note(item["log"], f"end bill:{item['n']}")
    return int(item["n"]) * 10


@flow.workflow
async def bill_all(wf: WorkflowContext, data: dict[str, Any]) -> list[Any]:
    """A map over ``bill``, at most :data:`MAP_LIMIT` invoices in flight."""
    items = [{"n": n, "log": data["log"]} for n in range(data["count"])]
    batch = await wf.map("Bill", items, bill, max_concurrency=MAP_LIMIT)
    return batch.values()


# -- parallel branches --------------------------------------------------------------------------
@flow.function
def reserve(data: dict[str, str]) -> str:
    _note(data["log"], f"start reserve:{data['what']}")
    _note(data["log"], f"end reserve:{data['what']}")
    return f"{data['what']} reserved"


@flow.workflow
async def book_trip(wf: WorkflowContext, data: dict[str, str]) -> list[Any]:
    """Two branches (scopes) running the same helper: their step keys must not clash."""

    async def hold(wf: WorkflowContext, what: str) -> list[str]:
        held: str = await wf.do("Reserve", reserve, {"what": what, "log": data["log"]})
        await wf.sleep("Hold", "100ms")
        return [held, await wf.do("Confirm", lambda: f"{what} confirmed")]

    async def flight(wf: WorkflowContext) -> Any:
        return await hold(wf, "seat")

    async def hotel(wf: WorkflowContext) -> Any:
        return await hold(wf, "room")

    batch = await wf.parallel("Book", {"flight": flight, "hotel": hotel})
    return batch.values()


# -- a failed run forked from its failed step ---------------------------------------------------
@flow.function
def stage(data: dict[str, Any]) -> int:
    _note(data["log"], f"start stage:{data['stage']}")
    if data["stage"] == "Ship" and not data.get("address"):
        raise ValueError("no address to ship to")
    _note(data["log"], f"end stage:{data['stage']}")
    return int(data["amount"]) + 1


@flow.workflow
async def fulfil(wf: WorkflowContext, data: dict[str, Any]) -> int:
    """Charge, pack, ship: shipping fails without an address (no retries)."""
    log = data["log"]
    charging = {"stage": "Charge", "amount": data["amount"], "log": log}
    charged = await wf.do("Charge", stage, charging)
    packed = await wf.do("Pack", stage, {"stage": "Pack", "amount": charged, "log": log})
    shipping = {"stage": "Ship", "amount": packed, "log": log, "address": data.get("address")}
    return int(await wf.do("Ship", stage, shipping, retries=0))

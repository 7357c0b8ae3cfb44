"""Recorded histories of scopes, map and parallel, replayed against the code.

``tests/histories/batches.json`` is a finished run; ``batches_parked.json`` a run parked on a
sleep inside an item of an unfinished map (its items' steps replay from the record). Re-record
with ``python -m tests.functional.engine.test_scope_histories`` against a scratch database only
when a change is meant.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from lambda_flow import Completion, Flow, NonDeterminismError, RunStatus, WorkflowContext
from lambda_flow.testing import replay_history
from tests import ROOT

HISTORIES = ROOT / "tests" / "histories"

effects: Counter[str] = Counter()
app = Flow()


@app.function
def charge(invoice: dict[str, Any]) -> str:
    effects["charge"] += 1
    if invoice["amount"] < 0:
        raise ValueError(f"invoice {invoice['id']}: negative amount")
    return f"charged {invoice['id']}"


async def receipt(wf: WorkflowContext, invoice: dict[str, Any], index: int) -> str:
    effects["receipt"] += 1
    text = await wf.do("Render", lambda: f"receipt {invoice['id']} #{index}")
    await wf.sleep("Cool off", "1h")
    return str(await wf.do("Send", lambda: f"sent {text}"))


async def totals(wf: WorkflowContext, invoices: list[dict[str, Any]]) -> int:
    return int(await wf.do("Sum", lambda: sum(i["amount"] for i in invoices)))


@app.workflow
async def invoicing(wf: WorkflowContext, invoices: list[dict[str, Any]]) -> Any:
    charged = await wf.map(
        "Charge", invoices, charge, max_concurrency=2,
        completion=Completion(tolerated_failure_ratio=0.5), item_name=lambda i, _: str(i["id"]),
    )  # fmt: skip

    async def audit(wf: WorkflowContext) -> int:
        return int(await wf.scope("Totals", totals, invoices))

    async def notify(wf: WorkflowContext) -> str:
        return str(await wf.do("Notify", lambda: "notified"))

    both = await wf.parallel("After", {"audit": audit, "notify": notify})
    sent = await wf.map("Receipts", invoices[:2], receipt, max_concurrency=1)
    return {
        "charged": charged.results,
        "failed": [i for i, _ in charged.failed()],
        "after": both.values(),
        "sent": sent.values(),
    }


INVOICES = [{"id": "a", "amount": 5}, {"id": "b", "amount": -1}, {"id": "c", "amount": 7}]


def _history(name: str) -> dict[str, Any]:
    return json.loads((HISTORIES / name).read_text())  # type: ignore[no-any-return]


def test_a_finished_run_replays_without_running_anything() -> None:
    history = _history("batches.json")
    assert "scope" in {s["kind"] for s in history["steps"]}
    assert history["run"]["output"]["failed"] == [1]
    before = dict(effects)
    assert replay_history(app, history) is RunStatus.COMPLETED
    assert effects == before  # finished batches return their record: no item code runs


def test_a_run_parked_inside_a_map_replays_its_items() -> None:
    history = _history("batches_parked.json")
    keys = [s["step_key"] for s in history["steps"]]
    assert "Receipts/0/Render" in keys
    assert "Receipts" not in keys
    before = effects["receipt"]
    assert replay_history(app, history) is RunStatus.RUNNING  # the history ends at the sleep
    assert effects["receipt"] == before + 1  # the unfinished item's code replays


def test_a_map_turned_into_a_parallel_is_caught() -> None:
    changed = Flow()
    changed.function(charge)

    @changed.workflow(name="invoicing")
    async def invoicing_changed(wf: WorkflowContext, invoices: list[dict[str, Any]]) -> Any:
        await wf.parallel("Charge", [])
        return None

    with pytest.raises(NonDeterminismError, match="'Charge'"):
        replay_history(changed, _history("batches.json"))


def test_an_item_renamed_inside_an_unfinished_map_is_caught() -> None:
    changed = Flow()
    changed.function(charge)

    @changed.workflow(name="invoicing")
    async def invoicing_changed(wf: WorkflowContext, invoices: list[dict[str, Any]]) -> Any:
        await wf.map("Charge", invoices, charge)  # finished: its record is returned
        await wf.parallel("After", [])
        await wf.map("Receipts", invoices[:2], receipt, item_name=lambda i, _: f"r-{i['id']}")
        return None

    with pytest.raises(NonDeterminismError, match="Receipts/0/Render"):
        replay_history(changed, _history("batches_parked.json"))


def _record() -> None:  # pragma: no cover - run by hand to re-record
    from lambda_flow import PostgresStore, RunTimedOut, WorkflowService
    from lambda_flow.store.embedded import resolve_database_url
    from lambda_flow.testing import TimeSkippingClock

    service = WorkflowService(
        app, store=PostgresStore(resolve_database_url(), schema="histories_scratch"),
        clock=TimeSkippingClock(),
    )  # fmt: skip
    run_id = service.start("invoicing", INVOICES)
    (HISTORIES / "batches.json").write_text(json.dumps(service.export_run(run_id), indent=2))
    with pytest.raises(RunTimedOut):
        service.run_to_completion("invoicing", INVOICES, timeout="1min")
    parked = service.list_runs()[0].id
    (HISTORIES / "batches_parked.json").write_text(json.dumps(service.export_run(parked), indent=2))


if __name__ == "__main__":  # pragma: no cover
    _record()

"""Input, output and results keep the user's key order (issue 11): stored as ``json``, not
``jsonb``, which sorts an object's keys (migration 0004)."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from lambda_flow import Flow, PostgresStore, RunStatus, WorkflowContext, WorkflowService
from lambda_flow.testing import TimeSkippingClock
from lambda_flow.transport.local import LocalQueue
from lambda_flow.worker import Dispatcher

UNSORTED = {"b": 1, "a": 2, "nested": {"zz": [{"y": 1, "x": 2}], "a": None}}
"""Keys jsonb would reorder (it sorts shorter keys first, then bytewise), at every depth."""


def _keys(value: Any) -> Any:
    """The keys of every object in ``value``, in order, as nested lists."""
    if isinstance(value, dict):
        return [(k, _keys(v)) for k, v in value.items()]
    if isinstance(value, list):
        return [_keys(v) for v in value]
    return None


@pytest.mark.parametrize("mode", ["inline", "remote"])
def test_a_runs_json_keeps_its_key_order_everywhere(
    flow: Flow, store: PostgresStore, clock: TimeSkippingClock, mode: str
) -> None:
    seen_by_function: list[Any] = []

    @flow.function
    def echo(data: dict[str, Any]) -> dict[str, Any]:
        seen_by_function.append(data)  # remote: the step's input, as the worker loaded it
        return {"echoed": data, "at": 1}

    @flow.workflow
    async def keep_order(wf: WorkflowContext, data: dict[str, Any]) -> dict[str, Any]:
        inline = await wf.do("Inline", lambda: {"zeta": 1, "alpha": 2})
        rpc = await wf.do("Rpc", echo, data)
        return {"rpc": rpc, "inline": inline, "input": data}

    queue = LocalQueue(clock) if mode == "remote" else None
    service = WorkflowService(flow, store=store, clock=clock, queue=queue)
    run_id = service.start("keep_order", UNSORTED)
    if queue is not None:
        dispatcher = Dispatcher(service)
        while (message := queue.receive()) is not None:
            if message.queue == "orchestrator":
                dispatcher.run_message(message.body)
            else:
                dispatcher.step_message(message.body)

    run = service.get_run(run_id)
    assert run is not None
    assert run.status is RunStatus.COMPLETED
    assert _keys(run.input) == _keys(UNSORTED)
    expected = {
        "rpc": {"echoed": UNSORTED, "at": 1},
        "inline": {"zeta": 1, "alpha": 2},
        "input": UNSORTED,
    }
    assert _keys(run.output) == _keys(expected)
    assert [_keys(seen) for seen in seen_by_function] == [_keys(UNSORTED)]
    history = service.get_run_history(run_id)
    assert [_keys(h.result) for h in history] == [
        _keys({"zeta": 1, "alpha": 2}),
        _keys({"echoed": UNSORTED, "at": 1}),
    ]
    assert [_keys(s.result) for s in store.get_steps(run_id)] == [_keys(h.result) for h in history]


def test_the_user_json_columns_are_json_and_errors_stay_jsonb(
    store: PostgresStore, db: psycopg.Connection[Any], schema: str
) -> None:
    rows = db.execute(
        "SELECT table_name, column_name, data_type FROM information_schema.columns"
        " WHERE table_schema = %s AND data_type IN ('json', 'jsonb')"
        " ORDER BY table_name, column_name",
        [schema],
    ).fetchall()
    assert rows == [
        ("batch_items", "input", "json"),  # a chained map's items, as the user gave them (0011)
        ("batches", "retry_policy", "jsonb"),  # engine data (0011)
        ("runs", "error", "jsonb"),
        ("runs", "forked_from", "jsonb"),  # engine data (0008)
        ("runs", "input", "json"),
        ("runs", "output", "json"),
        ("step_attempts", "error", "jsonb"),
        ("step_attempts", "result", "json"),
        ("steps", "error", "jsonb"),
        ("steps", "input", "json"),
        ("steps", "result", "json"),
        ("steps", "retry_policy", "jsonb"),  # engine data, order means nothing (0006)
    ]

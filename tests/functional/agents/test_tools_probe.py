"""Random tool calls: every one answers a result (an error result for bad ones), none raises.

A seeded probe (reproducible) over every tool of the MCP test app with arguments built from
real run and callback ids, the tools' own argument names and hostile values, in inline mode on
real Postgres. Calls the agent could not have meant fail as tool errors naming the problem; the
server never crashes on them.
"""

from __future__ import annotations

import random
from typing import Any

from lambda_flow import Caller, PostgresStore, WorkflowService
from lambda_flow.testing import TimeSkippingClock
from tests.e2e.mcp import app

ADMIN = Caller(kind="jwt", principal="u-1", claims={"sub": "u-1", "group": "admins"})
_WEIRD: list[Any] = [
    None, "", " ", 0, -1, 10**30, 1.5, float("inf"), True, [], {}, [1, "a"], {"a": {"b": [None]}},
    "\x00", "a\x00b", "x" * 5000, "<script>", "' OR 1=1 --", "00000000-0000-0000-0000-000000000000",
    "not-a-uuid", "cb_missing", "running", "1s", "-5s", "99999d", "☃",
]  # fmt: skip


def test_no_tool_call_raises_whatever_its_arguments(
    store: PostgresStore, clock: TimeSkippingClock
) -> None:
    service = WorkflowService(app.flow, store=store, clock=clock)
    specs = app.flow.tool_specs()
    names = [s["name"] for s in specs] + ["no_such_tool", ""]
    keys = sorted(
        {key for s in specs for key in s["inputSchema"].get("properties", {})} | {"extra"}
    )
    waiting = app.flow.call_tool("approve_order", {"order": "o-1"}, service=service, caller=ADMIN)
    run_ids = [str(waiting.data.get("run_id"))]
    waits = waiting.data.get("waiting_for", [])
    callback_ids = [str(w["callback_id"]) for w in waits if w.get("callback_id")]
    values = _WEIRD + run_ids + callback_ids + ["Ada", "emea", "o-2"]
    rng = random.Random(20261129)  # noqa: S311 - a reproducible probe, not a secret
    errors = 0
    for _ in range(300):
        name = rng.choice(names)
        arguments = {rng.choice(keys): rng.choice(values) for _ in range(rng.randint(0, 3))}
        result = app.flow.call_tool(name, arguments, service=service, caller=ADMIN, wait="0s")
        assert isinstance(result.data, dict), (name, arguments)
        if result.is_error:
            errors += 1
            error = result.data.get("error") or {}
            assert error.get("type") or result.data.get("status"), (name, arguments, result.data)
            assert error.get("type") != "InternalError", (name, arguments, result.data)
        assert result.text  # what a model reads is always JSON text
    assert 0 < errors < 300

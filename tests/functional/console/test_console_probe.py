"""Random requests to the console's routes: every answer is a page with a status below 500.

A seeded probe (reproducible) over paths, query strings and forms built from the console's own
vocabulary, real run, step and callback ids, and hostile text; it stands in for the API's
schemathesis fuzzing (``python -m chaos --only http_fuzz``), which does not see the console's
routes (they are left out of the OpenAPI document).
"""

from __future__ import annotations

import random
from typing import Any

from lambda_flow import Flow, WorkflowContext, WorkflowService
from tests.functional.console.conftest import ConsoleClient

_WEIRD = [
    "", " ", "0", "-1", "99999999999999999999", "1e999", "null", "true", "[]", "{}", "{bad",
    '{"a": 1}', "%00", "\x00", "%ED%A0%80", "../../etc/passwd", "<script>alert(1)</script>",
    "' OR 1=1 --", "é" * 300, "x" * 5000, "2026-13-45T99:99", "2026-01-01T00:00",
    "00000000-0000-0000-0000-000000000000", "cb_missing", "running", "COMPLETED", "☃",
]  # fmt: skip
_WORDS = [
    "runs", "run", "workflows", "workflow", "static", "start", "resume", "cancel", "fork",
    "callbacks", "succeed", "fail", "heartbeat", "value", "history", "timeline", "console.css",
    "console.js", "input", "output", "error",
]  # fmt: skip
_KEYS = [
    "workflow", "status", "parent", "parent_id", "q", "search", "from", "to", "created_from",
    "created_to", "cursor", "limit", "per_page", "payload", "reason", "error", "type", "step",
    "input", "confirm", "csrf", "name", "field", "part", "callback_id",
]  # fmt: skip


def test_no_request_to_the_console_gets_a_5xx(
    service: WorkflowService, flow: Flow, console: ConsoleClient
) -> None:
    @flow.workflow
    async def waits(wf: WorkflowContext, data: Any) -> Any:
        cb = await wf.callback("Paid")
        return [await cb.result(), await wf.suspend("approve")]

    @flow.workflow
    async def done(wf: WorkflowContext, data: Any) -> Any:
        return await wf.do("Step one", lambda: data)

    ids = [service.start("waits", {"n": i}) for i in range(2)] + [service.start("done", [1])]
    pending = service.get_run(ids[0])
    assert pending is not None
    callback_ids = [p.callback_id for p in pending.pending if p.callback_id]
    before = [(r.id, r.status) for r in service.list_runs()]
    vocabulary = _WORDS + ids + callback_ids + ["waits", "done", "Step one", "step"] + _WEIRD
    rng = random.Random(20261129)  # noqa: S311 - a reproducible probe, not a secret
    statuses: dict[int, int] = {}
    for _ in range(600):
        depth = rng.randint(0, 3)
        path = "/console" + "".join("/" + rng.choice(vocabulary) for _ in range(depth))
        fields = {rng.choice(_KEYS): rng.choice(vocabulary) for _ in range(rng.randint(0, 4))}
        if rng.random() < 0.5:
            page = console.request("GET", path, query=fields or None)
        else:
            page = console.post(path, fields, same_origin=rng.random() < 0.9)
        statuses[page.status] = statuses.get(page.status, 0) + 1
        assert page.status < 500, (path, fields, page.body[:500])
        if page.headers.get("Content-Type", "").startswith("text/html"):
            assert page.headers.get("Content-Security-Policy"), (path, page.status)
    assert statuses.get(200, 0) > 20  # the probe reached real pages, not only refusals
    assert {400, 404} & set(statuses)
    # an action needs a confirmation with the page's token: the probe changed no run
    assert [(r.id, r.status) for r in service.list_runs()] == before

"""``lambda-flow dev``: a callback heartbeated and completed over its HTTP API (issue 12), in
the real dev process on the real clock."""

from __future__ import annotations

import signal
import time
from typing import Any

import pytest

from tests.e2e.local.test_dev_runtime import _request, _spawn_dev, _stops_cleanly, _wait_for_rest


@pytest.fixture
def dev(database_url: str, schema: str) -> Any:
    process, base = _spawn_dev(database_url, schema, app="tests.e2e.app:flow")
    yield process, base
    if process.poll() is None:
        process.kill()
        process.communicate(timeout=10)


def _pending(base: str, run_id: str, timeout: float = 30) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:  # the real process uses the real clock: poll it
        _, run = _request(f"{base}/runs/{run_id}")
        if run["pending"]:
            return list(run["pending"])
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} never waited on anything")


def test_a_callback_completed_over_http(dev: Any) -> None:
    process, base = dev
    status, started = _request(f"{base}/workflows/checkout/start", "POST", {"amount": 7})
    assert status == 202
    run_id = started["run_id"]
    [pending] = _pending(base, run_id)
    assert pending["kind"] == "callback"
    callback_id = pending["callback_id"]

    status, _ = _request(f"{base}/callbacks/{callback_id}/heartbeat", "POST")
    assert status == 200
    status, answer = _request(f"{base}/callbacks/{callback_id}/succeed", "POST", {"amount": 7})
    assert (status, answer["status"]) == (200, "succeeded")
    run = _wait_for_rest(base, run_id)
    assert (run["status"], run["output"]) == ("completed", {"amount": 7})
    status, again = _request(f"{base}/callbacks/{callback_id}/succeed", "POST", {"amount": 8})
    assert (status, again["error"]["type"]) == (409, "CallbackConflict")
    status, _ = _request(f"{base}/callbacks/nope/succeed", "POST", 1)
    assert status == 404

    _stops_cleanly(process, signal.SIGINT)

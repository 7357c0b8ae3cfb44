"""``lambda-flow dev``: issue 12's primitives through a real dev process and its HTTP API.

Conditions, resume with a payload, retry policies, step timeouts, cancellation with cleanup, run
deadlines and the ``callback`` command, each in the real process on the real clock: every wait
in the app is short, and every poll here is bounded by a deadline.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import datetime
from typing import Any

import psycopg
import pytest

from tests import ROOT
from tests.e2e.local.test_dev_runtime import _LOGS, _request, _spawn_dev, _stops_cleanly

APP = "tests.e2e.local.primitives_app:flow"


@pytest.fixture(scope="module")
def dev(database_url: str) -> Any:
    """One dev process for the module (each test starts its own runs), on a schema of its own."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    process, base = _spawn_dev(database_url, schema, app=APP)
    _PIDS[base] = process.pid
    yield process, base, schema
    try:
        if process.poll() is None:
            _stops_cleanly(process, signal.SIGTERM)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


_PIDS: dict[str, int] = {}
"""The dev process's pid by its base URL, to show its logs when a poll runs out."""


def _dev_log(base: str, lines: int = 60) -> str:
    """The last ``lines`` of the dev process's logs so far (left in place for the teardown)."""
    log = _LOGS.get(_PIDS.get(base, -1))
    if log is None:
        return "(no logs)"
    # pread: the dev process shares this file's offset; moving it would misplace its writes.
    fd = log.fileno()
    text = os.pread(fd, os.fstat(fd).st_size, 0).decode(errors="replace")
    return "\n".join(text.splitlines()[-lines:])


def _start(base: str, workflow: str, data: Any = None, query: str = "") -> str:
    status, started = _request(f"{base}/workflows/{workflow}/start{query}", "POST", data or {})
    assert status == 202, started
    return str(started["run_id"])


def _until(base: str, run_id: str, done: Any, what: str, timeout: float = 30) -> dict[str, Any]:
    """Poll the run until ``done(run)`` holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    run: dict[str, Any] = {}
    while time.monotonic() < deadline:  # the real process uses the real clock: poll it
        _, run = _request(f"{base}/runs/{run_id}")
        if done(run):
            return run
        time.sleep(0.05)
    raise AssertionError(
        f"run {run_id}: {what} not within {timeout}s: {run}\ndev logs:\n{_dev_log(base)}"
    )


def _ended(base: str, run_id: str, timeout: float = 30) -> dict[str, Any]:
    return _until(base, run_id, lambda r: r["status"] != "running", "an end", timeout)


def _waiting(base: str, run_id: str, kind: str) -> dict[str, Any]:
    run = _until(
        base, run_id, lambda r: any(p["kind"] == kind for p in r["pending"]), f"a {kind} wait"
    )
    [pending] = [p for p in run["pending"] if p["kind"] == kind]
    return dict(pending)


def _history(base: str, run_id: str) -> list[dict[str, Any]]:
    status, history = _request(f"{base}/runs/{run_id}/history")
    assert status == 200, history
    return list(history["history"])


def _rows(history: list[dict[str, Any]]) -> list[tuple[str, str, int]]:
    return [(h["step_name"], h["status"], h["attempt"]) for h in history]


def test_a_condition_is_polled_until_it_holds(dev: Any) -> None:
    _, base, _ = dev
    run_id = _start(base, "poll_job")

    run = _ended(base, run_id)

    assert (run["status"], run["output"]) == ("completed", {"checks": 3}), run
    history = _history(base, run_id)
    assert _rows(history) == [
        ("Job done", "succeeded", 1),
        ("Job done", "succeeded", 2),
        ("Job done", "succeeded", 3),
    ]
    assert [h["result"] for h in history] == [{"checks": 1}, {"checks": 2}, {"checks": 3}]
    for before, after in itertools.pairwise(history):  # a durable 200ms sleep between checks
        gap = datetime.fromisoformat(after["started_at"]) - datetime.fromisoformat(
            before["finished_at"]
        )
        assert gap.total_seconds() >= 0.15, history


def test_resume_with_a_payload_is_what_suspend_returns(dev: Any) -> None:
    _, base, _ = dev
    run_id = _start(base, "approval")
    _until(base, run_id, lambda r: r["status"] == "suspended", "suspended")

    decision = {"approved": False, "comment": "over budget"}
    status, _ = _request(f"{base}/runs/{run_id}/resume", "POST", {"payload": decision})
    assert status == 200

    run = _ended(base, run_id)
    assert (run["status"], run["output"]) == ("completed", "rejected: over budget"), run


def test_a_retry_policy_retries_a_failing_rpc_step(dev: Any) -> None:
    _, base, _ = dev
    run_id = _start(base, "convert", {"amount": 10})

    run = _ended(base, run_id)

    assert (run["status"], run["output"]) == ("completed", 15.0), run
    history = _history(base, run_id)
    assert _rows(history) == [
        ("Fetch rate", "failed", 1),
        ("Fetch rate", "failed", 2),
        ("Fetch rate", "succeeded", 3),
    ]
    assert {h["error"]["type"] for h in history[:2]} == {"ConnectionError"}


def test_a_step_timeout_fails_the_attempt_and_the_retry_succeeds(dev: Any) -> None:
    _, base, _ = dev
    run_id = _start(base, "lookup")

    run = _ended(base, run_id)

    assert (run["status"], run["output"]) == ("completed", "found"), run
    history = _history(base, run_id)
    assert _rows(history) == [("Lookup", "failed", 1), ("Lookup", "succeeded", 2)]
    assert history[0]["error"]["type"] == "StepTimedOut"


def test_a_cancelled_run_runs_its_cleanup_step_and_ends_cancelled(dev: Any) -> None:
    _, base, _ = dev
    run_id = _start(base, "order", {"amount": 30})
    _until(base, run_id, lambda r: r["status"] == "suspended", "suspended")

    status, _ = _request(f"{base}/runs/{run_id}/cancel", "POST", {"reason": "out of stock"})
    assert status == 200

    run = _until(base, run_id, lambda r: r["status"] == "cancelled", "cancelled")
    assert run["error"]["message"] == "out of stock", run
    history = {h["step_name"]: h for h in _history(base, run_id)}
    assert history["Charge"]["status"] == "succeeded"
    assert history["Ship"]["status"] == "cancelled"
    assert history["Refund"]["status"] == "succeeded", history
    assert history["Refund"]["result"] == "refunded 30 (out of stock)"


def test_a_run_deadline_fails_a_sleeping_run(dev: Any) -> None:
    _, base, _ = dev
    run_id = _start(base, "nap", query="?run_timeout=1s")

    run = _ended(base, run_id, timeout=20)  # 1s, plus the sweeper's period and some slack

    assert run["status"] == "failed", run
    assert run["error"]["type"] == "RunDeadlineExceeded", run
    assert _rows(_history(base, run_id)) == [("Long nap", "cancelled", 1)]


def test_the_callback_command_completes_a_callback_the_dev_run_waits_on(
    dev: Any, database_url: str
) -> None:
    _, base, schema = dev
    run_id = _start(base, "pay")
    callback_id = _waiting(base, run_id, "callback")["callback_id"]

    command = [
        sys.executable, "-m", "lambda_flow.cli", "--app", APP,
        "--database-url", database_url, "--schema", schema,
        "callback", "succeed", callback_id,
        "--payload", json.dumps({"amount": 30, "currency": "EUR"}),
    ]  # fmt: skip
    done = subprocess.run(  # noqa: S603 - our own CLI
        command,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ),
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert f"run_id  {run_id}" in done.stdout, done.stdout

    run = _ended(base, run_id)
    assert (run["status"], run["output"]) == ("completed", "paid 30 EUR"), run

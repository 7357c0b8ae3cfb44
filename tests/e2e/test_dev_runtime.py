"""``lambda-flow dev`` end to end: a real process, a real socket, the onboarding workflow."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _request(url: str, method: str = "GET", body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(  # noqa: S310 - a loopback URL the test built
        url, data=data, method=method, headers={"content-type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


@pytest.fixture
def dev_server(database_url: str, schema: str) -> Any:
    command = [
        sys.executable, "-m", "lambda_flow.cli", "--app", "examples.onboarding:flow",
        "--database-url", database_url, "--schema", schema,
        "dev", "--port", "0", "--sweep-every", "1s",
    ]  # fmt: skip
    process = subprocess.Popen(  # noqa: S603 - our own CLI
        command,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    first = process.stdout.readline()  # "lambda-flow dev: API on http://127.0.0.1:PORT ..."
    if "http://" not in first:
        process.kill()
        _, err = process.communicate(timeout=10)
        pytest.fail(f"dev runtime did not start: {first!r} {err}")
    url = first.split("http://", 1)[1].split()[0]
    yield process, f"http://{url}"
    if process.poll() is None:
        process.kill()
        process.communicate(timeout=10)


def test_dev_runtime_serves_the_api_and_runs_workflows_to_completion(dev_server: Any) -> None:
    process, base = dev_server

    status, started = _request(
        f"{base}/workflows/onboard_user/start",
        "POST",
        {"email": "ada@example.com", "user_id": "ada", "welcome_delay": "1s"},
    )
    assert status == 202
    run_id = started["run_id"]

    deadline = time.monotonic() + 60
    run: dict[str, Any] = {}
    while time.monotonic() < deadline:  # the real process uses the real clock: poll it
        _, run = _request(f"{base}/runs/{run_id}")
        if run["status"] != "running":
            break
        time.sleep(0.1)
    assert run["status"] == "completed", run
    assert run["output"]["workspace_id"] == "ws-ada"

    status, history = _request(f"{base}/runs/{run_id}/history")
    assert status == 200
    assert [(h["step_name"], h["status"], h["attempt"]) for h in history["history"]] == [
        ("Create profile", "succeeded", 1),
        ("Generate welcome message", "succeeded", 1),
        ("Wait before welcome email", "succeeded", 1),
        ("Send welcome email", "failed", 1),
        ("Send welcome email", "succeeded", 2),
        ("Provision workspace", "succeeded", 1),
    ]
    status, error = _request(f"{base}/workflows/nope/start", "POST", {})
    assert status == 404
    assert error["error"]["type"] == "WorkflowNotFound"

    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "Traceback" not in err
    assert "stopped" in out

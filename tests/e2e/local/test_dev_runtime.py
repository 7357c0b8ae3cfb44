"""``lambda-flow dev`` end to end: a real process, a real socket, the onboarding workflow.

The server is stopped the way a user or a supervisor would, and that must work in a test run
started in the background (``make test &``), whose processes inherit SIGINT ignored (issue 11).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from http.server import ThreadingHTTPServer
from types import FrameType
from typing import IO, Any

import pytest

from tests import ROOT


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


SigintDisposition = Callable[[int, FrameType | None], Any] | int
"""What the test process sets SIGINT to while it spawns the server (the child inherits it)."""


def _spawn_dev(
    database_url: str,
    schema: str,
    *,
    app: str = "examples.onboarding:flow",
    sigint: SigintDisposition = signal.default_int_handler,
) -> tuple[subprocess.Popen[str], str]:
    """Start ``lambda-flow dev`` on a free port; the process and its API's base URL.

    ``sigint`` is set in this process around the spawn, as a shell would before starting a job:
    a handler becomes SIG_DFL in the child (Ctrl-C works whatever this test run inherited),
    ``SIG_IGN`` stays ignored (a background job's).
    """
    command = [
        sys.executable, "-m", "lambda_flow.cli", "--app", app,
        "--database-url", database_url, "--schema", schema,
        "dev", "--port", "0", "--sweep-every", "1s",
    ]  # fmt: skip
    # The logs go to a file, not a pipe nobody reads while the server runs (a full pipe would
    # block the server mid-log).
    log = tempfile.TemporaryFile("w+")  # noqa: SIM115 - closed with the process, see _stderr
    previous = signal.signal(signal.SIGINT, sigint)
    try:
        process = subprocess.Popen(  # noqa: S603 - our own CLI
            command,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    finally:
        signal.signal(signal.SIGINT, previous)
    _LOGS[process.pid] = log
    assert process.stdout is not None
    first = process.stdout.readline()  # "lambda-flow dev: API on http://127.0.0.1:PORT ..."
    if "http://" not in first:
        process.kill()
        process.communicate(timeout=10)
        pytest.fail(f"dev runtime did not start: {first!r} {_stderr(process)}")
    url = first.split("http://", 1)[1].split()[0]
    return process, f"http://{url}"


_LOGS: dict[int, IO[str]] = {}


def _stderr(process: subprocess.Popen[str]) -> str:
    """What the (finished) server wrote on stderr: its logs."""
    log = _LOGS.pop(process.pid)
    log.seek(0)
    text = log.read()
    log.close()
    return text


def _stops_cleanly(process: subprocess.Popen[str], signum: int) -> str:
    """Send ``signum``; the server must stop within the timeout, exit 0, and not crash.

    Returns its logs. A failed step's stored traceback is logged indented under its record; an
    unindented ``Traceback`` would be the server's own crash.
    """
    process.send_signal(signum)
    out, _ = process.communicate(timeout=30)
    err = _stderr(process)
    assert process.returncode == 0, err
    assert not any(line.startswith("Traceback") for line in err.splitlines()), err
    assert "lambda-flow dev: stopped" in out
    return err


@pytest.fixture
def dev_server(database_url: str, schema: str) -> Any:
    process, base = _spawn_dev(database_url, schema)
    yield process, base
    if process.poll() is None:
        process.kill()
        process.communicate(timeout=10)


def _wait_for_rest(base: str, run_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    run: dict[str, Any] = {}
    while time.monotonic() < deadline:  # the real process uses the real clock: poll it
        _, run = _request(f"{base}/runs/{run_id}")
        if run["status"] != "running":
            break
        time.sleep(0.1)
    return run


def test_dev_runtime_serves_the_api_and_runs_workflows_to_completion(dev_server: Any) -> None:
    process, base = dev_server

    status, started = _request(
        f"{base}/workflows/onboard_user/start",
        "POST",
        {"email": "ada@example.com", "user_id": "ada", "welcome_delay": "1s"},
    )
    assert status == 202
    run_id = started["run_id"]

    run = _wait_for_rest(base, run_id)
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
    failed = history["history"][3]["error"]  # stored with its traceback, from the step's code
    assert (failed["type"], failed["message"]) == (
        "ConnectionError",
        "email provider unreachable (simulated)",
    )
    assert failed["traceback"].startswith("Traceback (most recent call last):")
    assert "in send_email" in failed["traceback"]
    assert "During handling" not in failed["traceback"]  # the step's own, no engine context
    status, error = _request(f"{base}/workflows/nope/start", "POST", {})
    assert status == 404
    assert error["error"]["type"] == "WorkflowNotFound"

    logs = _stops_cleanly(process, signal.SIGINT)  # Ctrl-C
    # Readable logs: an HTTP access line, a line per attempt with its fields, and the failed
    # attempt's traceback indented under its record.
    lines = logs.splitlines()
    assert any('"POST /workflows/onboard_user/start HTTP/1.1" 202' in line for line in lines)
    attempts = [line for line in lines if "step attempt finished" in line and run_id in line]
    assert len(attempts) == 5, logs  # the sleep is no attempt of code
    assert "step='Send welcome email'  attempt=1" in attempts[2]
    assert "error_type=ConnectionError" in attempts[2]
    below = lines[lines.index(attempts[2]) + 1]
    assert below == "    Traceback (most recent call last):"


def test_sigterm_stops_the_server_when_sigint_is_ignored(database_url: str, schema: str) -> None:
    """A background job (``make test &``) inherits SIGINT ignored: SIGTERM must still stop it."""
    process, _ = _spawn_dev(database_url, schema, sigint=signal.SIG_IGN)
    try:
        _stops_cleanly(process, signal.SIGTERM)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)


def test_gathered_rpc_steps_run_side_by_side(database_url: str, schema: str) -> None:
    """Ten gathered steps each wait on one barrier of ten: they complete only if run at once.

    One after another, the first step's wait runs out and the run fails (no timing asserted).
    """
    from tests.e2e.local import concurrent_app

    process, base = _spawn_dev(database_url, schema, app="tests.e2e.local.concurrent_app:flow")
    try:
        status, started = _request(f"{base}/workflows/all_at_once/start", "POST", {})
        assert status == 202, started

        run = _wait_for_rest(base, started["run_id"], timeout=concurrent_app.BARRIER_TIMEOUT * 3)

        assert run["status"] == "completed", run
        assert run["output"] == list(range(concurrent_app.STEPS))
        _stops_cleanly(process, signal.SIGTERM)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)


# -- a client's mistakes get a 4xx, never silence or a 5xx (issue 9, defect 8) -----------------
def _raw(base: str, request: bytes, *, end_body: bool = True) -> tuple[int, dict[str, str], Any]:
    """Send ``request`` as is over a socket; the status, headers and JSON body of the answer.

    ``end_body``: half-close the socket after sending, as a client whose body ended does.
    """
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(request)
        if end_body:
            conn.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, json.loads(body) if body else None


def _post_with(length: str, body: bytes = b"{}") -> bytes:
    return (
        b"POST /workflows/onboard_user/start HTTP/1.1\r\nHost: localhost\r\n"
        b"Content-Type: application/json\r\nContent-Length: " + length.encode() + b"\r\n\r\n" + body
    )


_BAD_LENGTHS = [
    (_post_with("ten"), 400, "InvalidContentLength"),
    (_post_with("-1"), 400, "InvalidContentLength"),
    (_post_with("+2"), 400, "InvalidContentLength"),
    (_post_with("1e3"), 400, "InvalidContentLength"),
    (_post_with("100"), 400, "InvalidContentLength"),  # the body ends first
    (_post_with("99999999999999999999"), 413, "PayloadTooLarge"),
    (_post_with(str(256 * 1024 + 1)), 413, "PayloadTooLarge"),
    (
        b"POST /runs HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
        400,
        "InvalidContentLength",
    ),
    (
        b"POST /runs HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        411,
        "LengthRequired",
    ),
]


def test_client_mistakes_are_answered_4xx_never_left_unanswered_or_5xx(dev_server: Any) -> None:
    _, base = dev_server
    for request, status, error_type in _BAD_LENGTHS:
        answer, headers, body = _raw(base, request)
        assert (answer, body["error"]["type"]) == (status, error_type), request[:80]
        assert headers["content-type"] == "application/json"

    for method in ["TRACE", "OPTIONS", "HEAD", "PUT", "DELETE", "PATCH", "BREW"]:
        line = f"{method} /runs HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n"
        answer, headers, _ = _raw(base, line.encode())
        assert (answer, headers["allow"]) == (405, "GET, POST"), method

    answer, headers, _ = _raw(
        base, b"GET /workflows/onboard_user/start HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    assert (answer, headers["allow"]) == (405, "POST")  # the resolver: a known path, another method
    answer, _, error = _raw(base, _post_with("20", b'{"welcome_delay": "9'))
    assert (answer, error["error"]["type"]) == (400, "InvalidJson")
    delay = json.dumps({"email": "a@example.com", "user_id": "a", "welcome_delay": "9" * 400})
    answer, _, error = _raw(base, _post_with(str(len(delay)), delay.encode()))
    assert answer == 422, error
    assert [d["loc"] for d in error["error"]["details"]] == [["welcome_delay"]]

    body = json.dumps({"email": "ada@example.com", "user_id": "ada"}).encode()
    answer, _, started = _raw(base, _post_with(str(len(body)), body))
    assert answer == 202, started  # and the server still serves good requests


def test_a_body_shorter_than_announced_is_400_after_the_read_timeout() -> None:
    from lambda_flow.local.dev import _http_handler

    def api(event: dict[str, Any], context: Any) -> dict[str, Any]:
        raise AssertionError("the request must not reach the API")

    server = ThreadingHTTPServer(("127.0.0.1", 0), _http_handler(api, None, read_timeout=0.2))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        # The client keeps its side open: only the server's read timeout ends the wait.
        answer, _, body = _raw(f"http://{host!s}:{port}", _post_with("100"), end_body=False)
    finally:
        server.shutdown()
        server.server_close()
    assert (answer, body["error"]["type"]) == (400, "InvalidContentLength")


@pytest.mark.parametrize("pools", [{"step_workers": 0}, {"orchestrators": 0}])
def test_worker_pools_must_have_a_thread(pools: dict[str, int]) -> None:
    from examples.onboarding import flow
    from lambda_flow import ConfigurationError
    from lambda_flow.local.dev import DevRuntime

    with pytest.raises(ConfigurationError, match="at least 1"):
        DevRuntime(flow, database_url="postgresql://unused", port=0, **pools)


def test_a_running_dev_publishes_itself_for_the_cli_and_unpublishes_when_stopped(
    database_url: str, schema: str
) -> None:
    from lambda_flow.local.dev_endpoint import find_dev

    process, base = _spawn_dev(database_url, schema)
    try:
        found = find_dev(database_url, schema)
        assert found is not None
        assert (found.url, found.pid) == (base, process.pid)
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
    assert find_dev(database_url, schema) is None

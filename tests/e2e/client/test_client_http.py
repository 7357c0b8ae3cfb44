"""The client over a scripted HTTP server: what goes on the wire, and every error answer."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from botocore.credentials import Credentials

from lambda_flow import (
    InputTooLarge,
    InvalidInput,
    InvalidOption,
    RunNotFound,
    RunStatus,
    StoreUnavailable,
    UnstorableInput,
)
from lambda_flow.client import ApiConnectionError, BearerToken, Client, HttpApiError, SigV4Auth
from tests.unit.client.test_auth import _expected_signature

RUN_ID = "6f1c1f2e-8a4b-4c55-9a57-1d2f3e4a5b6c"


def run_body(status: str, output: Any = None) -> dict[str, Any]:
    return {
        "id": RUN_ID,
        "workflow": "greet",
        "status": status,
        "input": {"name": "Ada"},
        "output": output,
        "error": None,
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:01Z",
        "wake_at": None,
    }


@dataclass
class Scripted:
    """Answers in order, and every request as the server received it."""

    answers: list[tuple[int, Any]] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
def server() -> Iterator[tuple[str, Scripted]]:
    script = Scripted()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            script.received.append(
                {
                    "method": self.command,
                    "path": self.path,
                    "headers": dict(self.headers.items()),
                    "body": self.rfile.read(length),
                }
            )
            status, body = script.answers.pop(0)
            data = (body if isinstance(body, str) else json.dumps(body)).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _answer  # noqa: N815 - BaseHTTPRequestHandler's names

        def log_message(self, *args: Any) -> None:
            return

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    host, port = httpd.server_address[:2]
    yield f"http://{host!s}:{port}", script
    httpd.shutdown()
    httpd.server_close()


def test_a_sigv4_request_verifies_as_the_server_received_it(
    server: tuple[str, Scripted],
) -> None:
    url, script = server
    credentials = Credentials("AKIDEXAMPLE", "secret/key")
    client = Client(url, auth=SigV4Auth(region="eu-west-1", credentials=credentials))
    script.answers.append((202, {"run_id": RUN_ID}))

    assert client.start("greet", {"name": "Zoë"}, idempotency_key="k-1") == RUN_ID

    [request] = script.received
    assert request["path"] == "/workflows/greet/start"
    sent = {k: v for k, v in request["headers"].items() if k.lower() != "host"}
    _, signature = _expected_signature(
        "POST", url + request["path"], sent, request["body"], "secret/key"
    )
    assert request["headers"]["Authorization"].endswith(f"Signature={signature}")
    assert "idempotency-key" in request["headers"]["Authorization"]  # signed too
    assert json.loads(request["body"]) == {"name": "Zoë"}


def test_a_bearer_token_is_sent(server: tuple[str, Scripted]) -> None:
    url, script = server
    script.answers.append((200, {"workflows": []}))

    assert Client(url, auth=BearerToken("jwt-123")).list_workflows() == []
    assert script.received[0]["headers"]["Authorization"] == "Bearer jwt-123"


def test_start_and_wait_polls_once_the_servers_wait_is_over(server: tuple[str, Scripted]) -> None:
    url, script = server
    script.answers += [
        (202, {"run_id": RUN_ID, "status": "running"}),
        (200, run_body("running")),
        (200, run_body("completed", "hi")),
        (200, run_body("completed", "hi")),
    ]

    run = Client(url, poll_interval="1ms").start_and_wait("greet", {"name": "Ada"})

    assert run.status is RunStatus.COMPLETED
    assert run.output == "hi"
    assert [r["path"] for r in script.received] == [
        "/workflows/greet/run",
        f"/runs/{RUN_ID}",
        f"/runs/{RUN_ID}",
        f"/runs/{RUN_ID}",
    ]


def test_a_timeout_is_passed_on_and_ends_the_polling(server: tuple[str, Scripted]) -> None:
    url, script = server
    script.answers += [
        (202, {"run_id": RUN_ID, "status": "running"}),
        (200, run_body("running")),
    ]

    run = Client(url).start_and_wait("greet", {"name": "Ada"}, timeout="0ms")

    assert run.status is RunStatus.RUNNING
    assert script.received[0]["path"] == "/workflows/greet/run?timeout=0ms"


def test_run_timeout_goes_as_the_query_parameter(server: tuple[str, Scripted]) -> None:
    """The query parameter is the option whatever the input declares (the body key may not be)."""
    url, script = server
    script.answers += [
        (202, {"run_id": RUN_ID}),
        (200, {"run_id": RUN_ID, "status": "completed"}),
        (200, run_body("completed", "hi")),
    ]
    client = Client(url)

    assert client.start("greet", {"name": "Ada"}, run_timeout="2h") == RUN_ID
    client.start_and_wait("greet", {"name": "Ada"}, timeout="0ms", run_timeout=timedelta(hours=1))

    assert [r["path"] for r in script.received[:2]] == [
        "/workflows/greet/start?run_timeout=2h",
        "/workflows/greet/run?timeout=0ms&run_timeout=3600000ms",
    ]
    assert json.loads(script.received[0]["body"]) == {"name": "Ada"}


def _error(status: int, type: str, message: str, details: Any = ()) -> tuple[int, Any]:
    return status, {"error": {"type": type, "message": message, "details": list(details)}}


def test_error_answers_become_the_services_exceptions(server: tuple[str, Scripted]) -> None:
    url, script = server
    client = Client(url)
    unstorable = [{"loc": ["name"], "msg": "text contains a NUL", "type": "unstorable_value"}]
    too_large = [{"loc": [], "msg": "m", "type": "input_too_large", "ctx": {"size": 9, "limit": 5}}]
    payload = [{"loc": ["body"], "msg": "m", "type": "payload_too_large", "ctx": {"limit": 7}}]
    script.answers += [
        _error(400, "UnstorableInput", "invalid input for workflow 'greet': name: ...", unstorable),
        _error(413, "InputTooLarge", "the input is 9 bytes", too_large),
        _error(413, "PayloadTooLarge", "the request body is larger than 7 bytes", payload),
        _error(422, "InvalidRequest", "invalid request parameters: query.limit"),
        _error(503, "StoreUnavailable", "the database is unavailable for now"),
        _error(403, "Forbidden", "the caller may not start runs of workflow 'greet'"),
        (403, {"message": "Forbidden"}),  # API Gateway's own answer to a bad signature
        (500, "<html>gateway error</html>"),
    ]

    with pytest.raises(UnstorableInput) as refused:
        client.start("greet", {"name": "Ada"})
    assert refused.value.errors == unstorable
    with pytest.raises(InputTooLarge) as large:
        client.start("greet", {"name": "Ada"})
    assert (large.value.size, large.value.limit) == (9, 5)
    with pytest.raises(InputTooLarge) as payload_large:
        client.start("greet", {"name": "Ada"})
    assert payload_large.value.limit == 7
    assert payload_large.value.size == len(b'{"name":"Ada"}')
    with pytest.raises(InvalidInput, match=r"query\.limit"):
        client.list_runs(limit=5000)
    with pytest.raises(StoreUnavailable):
        client.get_run(RUN_ID)
    with pytest.raises(HttpApiError) as forbidden:
        client.start("greet", {"name": "Ada"})
    assert (forbidden.value.status, forbidden.value.type) == (403, "Forbidden")
    with pytest.raises(HttpApiError, match="403 HttpError: Forbidden"):
        client.get_run(RUN_ID)
    with pytest.raises(HttpApiError, match="gateway error"):
        client.get_run(RUN_ID)


def test_an_unreachable_api_is_a_connection_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there

    with pytest.raises(ApiConnectionError, match="cannot reach"):
        Client(f"http://127.0.0.1:{port}", timeout=2).list_workflows()


def test_bad_base_urls_and_oversized_inputs_fail_before_any_request() -> None:
    from lambda_flow import ConfigurationError
    from lambda_flow.core import MAX_INPUT_BYTES

    with pytest.raises(ConfigurationError):
        Client("localhost:8000")
    client = Client("http://127.0.0.1:9")  # never contacted
    with pytest.raises(InputTooLarge) as large:
        client.start("greet", {"pad": "x" * MAX_INPUT_BYTES})
    assert large.value.limit == MAX_INPUT_BYTES
    with pytest.raises(UnstorableInput):
        client.start("greet", {"n": float("nan")})


def test_fork_posts_the_step_and_input_and_maps_its_errors(server: tuple[str, Scripted]) -> None:
    url, script = server
    detail = [{"loc": ["from_step"], "msg": "no step", "type": "invalid_option"}]
    script.answers += [
        (202, {"run_id": "new-1"}),
        (202, {"run_id": "new-2"}),
        _error(422, "InvalidOption", f"from_step: run {RUN_ID} has no step 'Nope'", detail),
        _error(404, "RunNotFound", f"unknown run {RUN_ID!r}"),
    ]
    client = Client(url)

    assert client.fork(RUN_ID, from_step="Ship") == "new-1"
    assert client.fork(RUN_ID, from_step="Ship", input={"a": 1}) == "new-2"
    with pytest.raises(InvalidOption, match="'Nope'") as bad_step:
        client.fork(RUN_ID, from_step="Nope")
    assert bad_step.value.parameter == "from_step"
    with pytest.raises(RunNotFound) as unknown:
        client.fork(RUN_ID, from_step="Ship")
    assert unknown.value.run_id == RUN_ID

    assert [r["path"] for r in script.received] == [f"/runs/{RUN_ID}/fork"] * 4
    assert json.loads(script.received[0]["body"]) == {"from_step": "Ship"}
    assert json.loads(script.received[1]["body"]) == {"from_step": "Ship", "input": {"a": 1}}

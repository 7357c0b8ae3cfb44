"""(h) HTTP fuzzing: schemathesis over ``/openapi.json``, then hand-made bad requests.

Two servers answer: ``lambda-flow dev`` (the product's local server, in front of the same
resolver as the Api function, on local queues) and the ``api`` chaos worker serving
``lambda_flow.handlers.api.handler`` in remote mode. schemathesis generates valid and invalid
requests for every operation of the dev server's OpenAPI document; the hand-made requests add
what a schema cannot describe: bad JSON, durations too large for ``timedelta``, bad
``Content-Length``, TRACE/OPTIONS, bodies that are not UTF-8 or too large. Every answer of
500-599 (a 503 with ``Retry-After`` aside), and every request left without an answer, counts as
a 5xx.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaos.cluster import REPO, UNSET_FOR_WORKERS, free_port
from chaos.figures import Figures
from chaos.scenarios import Suite
from chaos.stage import Answer, is_server_error

NINES = "9" * 400


@dataclass(slots=True)
class Tally:
    """Requests sent and the server errors among them."""

    requests: int = 0
    server_errors: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    def record(self, what: str, answer: Answer) -> None:
        """Count one answer."""
        self.requests += 1
        self.statuses[answer.status] += 1
        if is_server_error(answer):
            self.server_errors += 1
            if len(self.examples) < 8:
                self.examples.append(f"{what} -> {answer.status or 'no answer'}")


# -- lambda-flow dev -----------------------------------------------------------------------------
@contextlib.contextmanager
def dev_server(database_url: str, schema: str, log: Path, engine_root: str) -> Any:
    """``lambda-flow dev`` on a free port (local queues, anonymous callers); its URL."""
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if k not in UNSET_FOR_WORKERS}
    environment.pop("AWS_ENDPOINT_URL", None)
    environment.update(
        LAMBDA_FLOW_SCHEMA=schema, POWERTOOLS_LOG_LEVEL="WARNING", CHAOS_ENGINE_ROOT=engine_root
    )
    environment.pop("CHAOS_POISON", None)
    with log.open("ab") as output:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and CLI
            [
                sys.executable,
                "-c",
                "import os, sys; from chaos._engine import use_engine;"
                " use_engine(os.environ['CHAOS_ENGINE_ROOT']);"
                " from lambda_flow.cli import main; sys.exit(main())",
                "--app",
                "chaos.app:flow",
                "--database-url",
                database_url,
                "dev",
                "--port",
                str(port),
                "--anonymous",
                "--sweep-every",
                "2s",
            ],
            env=environment,
            cwd=REPO,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for(url, process)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


def _wait_for(url: str, process: subprocess.Popen[bytes], limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"lambda-flow dev exited with {process.returncode}")
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(f"{url}/openapi.json", timeout=5),  # noqa: S310
        ):
            return
        time.sleep(0.3)
    raise RuntimeError("lambda-flow dev did not answer")


# -- schemathesis ---------------------------------------------------------------------------------
def schemathesis_pass(base_url: str, examples: int, tally: Tally, seed: int) -> list[str]:
    """Valid and invalid requests for every operation (reproducible from ``seed``); problems
    running it, if any."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from hypothesis import seed as use_seed
    from schemathesis import GenerationMode

    problems: list[str] = []
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    for result in schema.get_all_operations():
        operation: Any = result.ok()  # type: ignore[union-attr]
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @use_seed(seed)
            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=examples,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def probe(case: Any) -> None:
                what = f"{case.method} {case.formatted_path}"
                try:
                    response = case.call(base_url=base_url, timeout=40)
                    answer = Answer(
                        response.status_code,
                        None,
                        retry_after="retry-after" in {k.lower() for k in response.headers},
                    )
                except Exception:  # noqa: BLE001 - no answer at all
                    answer = Answer(0, None)
                tally.record(what, answer)

            try:
                probe()
            except Exception as exc:  # noqa: BLE001 - generation trouble is reported, not fatal
                reason = str(exc).split(".")[0]
                problems.append(f"{operation.label} {mode.value}: {type(exc).__name__}: {reason}")
    return problems


# -- hand-made requests ---------------------------------------------------------------------------
def _request(method: str, target: str, body: bytes = b"", **headers: str) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    if "Content-Length" not in headers and (body or method in ("POST", "PUT", "PATCH")):
        headers["Content-Length"] = str(len(body))
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


BODY_CASES: list[tuple[str, bytes]] = [
    ("bad JSON", _request("POST", "/workflows/chain/start", b"{not json")),
    ("JSON array", _request("POST", "/workflows/chain/start", b"[1, 2]")),
    ("not UTF-8", _request("POST", "/workflows/chain/start", b"\xff\xfe\xfa")),
    (
        "huge nap 99999999999999d",
        _request("POST", "/workflows/chain/start", _json({"seed": 1, "nap": "99999999999999d"})),
    ),
    (
        "nap of 400 nines",
        _request("POST", "/workflows/chain/start", _json({"seed": 1, "nap": NINES})),
    ),
    (
        "run timeout 99999999999999d",
        _request("POST", "/workflows/approval/run?timeout=99999999999999d", _json({"seed": 1})),
    ),
    (
        "run timeout of 400 nines",
        _request("POST", f"/workflows/approval/run?timeout={NINES[:30]}", _json({"seed": 1})),
    ),
    ("huge seed", _request("POST", "/workflows/chain/start", _json({"seed": int(NINES)}))),
    (
        "body past the limit",
        _request("POST", "/workflows/chain/start", b'{"seed": 1, "x": "' + b"a" * 300_000 + b'"}'),
    ),
    (
        "cancel with bad JSON",
        _request("POST", f"/runs/{'0' * 8}-0000-0000-0000-{'0' * 12}/cancel", b"{"),
    ),
    (
        "cancel with a cleanup timeout of 400 nines",
        _request(
            "POST",
            f"/runs/{'0' * 8}-0000-0000-0000-{'0' * 12}/cancel",
            _json({"reason": "x", "cleanup_timeout": NINES}),
        ),
    ),
    ("unknown callback", _request("POST", "/callbacks/no-such-callback/succeed", b"{}")),
    ("callback with bad JSON", _request("POST", "/callbacks/no-such-callback/succeed", b"{")),
    (
        "callback fail without an error",
        _request("POST", "/callbacks/no-such-callback/fail", _json({"type": 5})),
    ),
    ("callback heartbeat of a long id", _request("POST", f"/callbacks/{'a' * 5000}/heartbeat")),
    ("unknown run", _request("GET", "/runs/not-a-uuid")),
    ("runs with a bad cursor", _request("GET", "/runs?cursor=%%%&limit=0")),
]
"""Requests whose problem is in what they say (the handler's to answer)."""

PROTOCOL_CASES: list[tuple[str, bytes]] = [
    (
        "Content-Length abc",
        _request("POST", "/workflows/chain/start", b"{}", **{"Content-Length": "abc"}),
    ),
    (
        "Content-Length -5",
        _request("POST", "/workflows/chain/start", b"{}", **{"Content-Length": "-5"}),
    ),
    (
        "Content-Length past the body",
        _request("POST", "/workflows/chain/start", b"{}", **{"Content-Length": "100"}),
    ),
    ("TRACE", _request("TRACE", "/runs")),
    ("OPTIONS", _request("OPTIONS", "/runs")),
    ("PROPFIND", _request("PROPFIND", "/runs")),
    ("HEAD", _request("HEAD", "/runs")),
]
"""Requests whose problem is in the HTTP itself (the dev server's to answer)."""


def send_raw(base_url: str, payload: bytes, *, timeout: float = 10.0) -> Answer:
    """Send ``payload`` over a fresh connection, close the sending side, read the status."""
    host, port = base_url.removeprefix("http://").split(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout) as connection:
            # A server may answer (a 413) and close before it read a large body: its answer
            # is still there to read.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                connection.sendall(payload)
                connection.shutdown(socket.SHUT_WR)
            received = b""
            while b"\r\n" not in received:
                chunk = connection.recv(4096)
                if not chunk:
                    break
                received += chunk
    except OSError:
        return Answer(0, None)
    parts = received.split(b"\r\n", 1)[0].split()
    if len(parts) < 2 or not parts[1].isdigit():
        return Answer(0, None)
    return Answer(int(parts[1]), None, retry_after=b"\r\nretry-after:" in received.lower())


def hand_made(base_url: str, cases: list[tuple[str, bytes]], tally: Tally, server: str) -> None:
    """Send each case and count its answer."""
    for what, payload in cases:
        tally.record(f"{server}: {what}", send_raw(base_url, payload))


# -- the scenario ---------------------------------------------------------------------------------
def http_fuzz(suite: Suite) -> Figures:
    """(h) schemathesis and hand-made bad requests against ``lambda-flow dev`` and the
    ``lambda_flow.handlers.api`` worker; every 5xx or missing answer counts."""
    with suite.stage("http_fuzz") as stage:
        stage.fleet.spawn("runtime")
        stage.fleet.spawn("sweeper")
        dev_schema = "chaos_http_dev"
        suite.cluster.database.prepare_schema(dev_schema)
        tally = Tally()
        log = stage.deployment.folder / "dev.log"
        engine = stage.deployment.environment["CHAOS_ENGINE_ROOT"]
        with dev_server(stage.deployment.database_url, dev_schema, log, engine) as dev_url:
            seed = suite.rng.randrange(1 << 32)
            problems = schemathesis_pass(dev_url, suite.sizes.fuzz_examples, tally, seed)
            hand_made(dev_url, BODY_CASES + PROTOCOL_CASES, tally, "dev")
        hand_made(stage.deployment.api_url, BODY_CASES, tally, "api handler")
        figures = stage.figures
        figures.trials = tally.requests
        figures.server_errors = tally.server_errors
        statuses = ", ".join(f"{s or 'none'}: {n}" for s, n in sorted(tally.statuses.items()))
        figures.notes.append(f"answers by status: {statuses}")
        figures.notes += [f"5xx: {e}" for e in tally.examples]
        figures.notes += [f"schemathesis: {p}" for p in problems[:5]]
    return figures

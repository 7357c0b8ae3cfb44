"""``lambda-flow mcp`` in a subprocess, spoken to with the official MCP client (issue 16).

Over stdio (``ClientSession`` on ``stdio_client``, the initialize handshake) and over streamable
HTTP (``Client`` on ``streamable_http_client``, which negotiates the newest protocol), against
the workflows of ``tests/e2e/mcp/app.py`` on real Postgres, driven by the queues and workers the
command runs. The long workflow sleeps one real second; the test waits for it through
``get_run``'s own ``wait_seconds`` (bounded), never by sleeping itself.
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import psycopg
import pytest
from mcp import Client, ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from lambda_flow import PostgresStore
from tests import ROOT
from tests.conftest import count_rows

APP = "tests.e2e.mcp.app:flow"


def _argv(database_url: str, schema: str, *extra: str) -> list[str]:
    return [
        "-m", "lambda_flow.cli", "--database-url", database_url, "--schema", schema,
        "--app", APP, "mcp", "--wait", "500ms", *extra,
    ]  # fmt: skip


def _env(home: Path) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LAMBDA_FLOW_HOME": str(home)}
    for name in ("LAMBDA_FLOW_APP", "LAMBDA_FLOW_ORCHESTRATOR_QUEUE_URL", "AWS_ENDPOINT_URL"):
        env.pop(name, None)
    return env


def _data(result: Any) -> dict[str, Any]:
    """A tool result's structured content, checked against its text content."""
    data: dict[str, Any] = result.structured_content
    assert json.loads(result.content[0].text) == data
    return data


async def _scenario(client: Any, db: psycopg.Connection[Any]) -> None:
    """What both transports must do: list, run short and long, refuse bad input and a caller."""
    tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert {"greet", "slow_report", "approve_order", "get_run", "complete_callback"} <= set(tools)
    assert "internal_cleanup" not in tools
    greet = tools["greet"]
    assert greet.description.startswith("Greet someone by name.")
    assert greet.input_schema["required"] == ["name"]
    assert set(greet.input_schema["properties"]) == {"name", "times"}

    short = await client.call_tool("greet", {"name": "Ada"})
    assert not short.is_error
    assert _data(short)["output"] == {"message": "Hello, Ada!"}

    long = await client.call_tool("slow_report", {"region": "emea", "delay": "1s"})
    answer = _data(long)
    assert not long.is_error
    assert answer["status"] == "running"
    assert answer["waiting_for"][0]["kind"] == "sleep"
    run_id = answer["run_id"]
    for _ in range(20):  # each get_run waits up to the server's bound (500 ms) itself
        polled = _data(await client.call_tool("get_run", {"run_id": run_id, "wait_seconds": 5}))
        if polled["status"] != "running":
            break
    assert polled["status"] == "completed"
    assert polled["output"] == {"region": "emea", "total": 400}

    before = count_rows(db, "runs")
    bad = await client.call_tool("greet", {"name": "", "times": 0})
    assert bad.is_error
    error = _data(bad)["error"]
    assert error["type"] == "InvalidInput"
    assert {tuple(d["loc"]) for d in error["details"]} == {("name",), ("times",)}

    refused = await client.call_tool("delete_account", {"user_id": "u-1"})
    assert refused.is_error
    assert _data(refused)["error"]["type"] == "Forbidden"
    assert count_rows(db, "runs") == before  # neither started anything


def test_stdio(
    database_url: str,
    schema: str,
    store: PostgresStore,
    db: psycopg.Connection[Any],
    tmp_path: Path,
) -> None:
    params = StdioServerParameters(
        command=sys.executable, args=_argv(database_url, schema), env=_env(tmp_path), cwd=ROOT
    )

    async def talk() -> None:
        with (tmp_path / "stderr.log").open("w") as errlog, anyio.fail_after(60):
            async with (
                stdio_client(params, errlog=errlog) as (read, write),
                ClientSession(read, write) as session,
            ):
                info = await session.initialize()
                assert info.server_info.name == "lambda-flow"
                await _scenario(session, db)

    anyio.run(talk)


@pytest.fixture
def http_server(
    database_url: str, schema: str, store: PostgresStore, tmp_path: Path
) -> Iterator[str]:
    """``lambda-flow mcp --http 0`` running; its endpoint's URL (read from what it prints)."""
    child = subprocess.Popen(  # noqa: S603 - our own CLI
        [sys.executable, *_argv(database_url, schema, "--http", "0")],
        cwd=ROOT,
        env=_env(tmp_path),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        yield _endpoint(child)
    finally:
        child.terminate()
        child.communicate(timeout=30)


def _endpoint(child: subprocess.Popen[bytes]) -> str:
    assert child.stderr is not None
    fd = child.stderr.fileno()
    seen = b""
    selector = selectors.DefaultSelector()
    selector.register(fd, selectors.EVENT_READ)
    deadline = time.monotonic() + 30
    while b"/mcp;" not in seen:
        if time.monotonic() > deadline or child.poll() is not None:
            raise AssertionError(f"the server did not say where it listens: {seen!r}")
        if selector.select(timeout=0.5):
            seen += os.read(fd, 65536)
    selector.close()
    line = next(line for line in seen.decode().splitlines() if "/mcp;" in line)
    return line.split(" on ", 1)[1].split(";", 1)[0]


def test_streamable_http(http_server: str, db: psycopg.Connection[Any]) -> None:
    async def talk() -> None:
        with anyio.fail_after(60):
            await both()

    async def both() -> None:
        async with Client(http_server) as client:
            await _scenario(client, db)
        async with (  # the handshake era
            streamable_http_client(http_server) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            result = await session.call_tool("double", {"input": 4})
            assert _data(result)["output"] == 8

    anyio.run(talk)


def test_lambda_flow_dev_serves_mcp_next_to_its_api(
    database_url: str, schema: str, db: psycopg.Connection[Any]
) -> None:
    from tests.e2e.local.test_dev_runtime import _spawn_dev

    process, base = _spawn_dev(database_url, schema, app=APP)
    try:

        async def talk() -> None:
            with anyio.fail_after(60):
                async with Client(f"{base}/mcp") as client:
                    tools = {tool.name for tool in (await client.list_tools()).tools}
                    assert {"greet", "slow_report", "get_run"} <= tools
                    short = await client.call_tool("greet", {"name": "Ada", "times": 2})
                    assert _data(short)["output"] == {"message": "Hello, Ada! Hello, Ada!"}
                    before = count_rows(db, "runs")
                    bad = await client.call_tool("greet", {"name": ""})
                    assert bad.is_error
                    details = _data(bad)["error"]["details"]
                    assert [tuple(d["loc"]) for d in details] == [("name",)]
                    assert count_rows(db, "runs") == before
                    started.append(_data(short)["run_id"])

        started: list[str] = []

        anyio.run(talk)
        # the same runs as the API's: the run the tool started is there
        with urllib.request.urlopen(f"{base}/runs/{started[0]}") as answer:  # noqa: S310
            assert json.load(answer)["status"] == "completed"
    finally:
        process.kill()
        process.communicate(timeout=10)

"""Workflows as agent tools (issue 16): ``Flow.tool_specs``, ``Flow.call_tool`` and the MCP server
in-process, on real Postgres with a time-skipping clock (inline mode, so waits are instant)."""

from __future__ import annotations

from typing import Any

import anyio
import psycopg
import pytest

from lambda_flow import Caller, Flow, PostgresStore, WorkflowContext, WorkflowService
from lambda_flow.agents import AgentTools, mcp_server
from lambda_flow.core import ConfigurationError, InvalidOption
from lambda_flow.testing import TimeSkippingClock
from lambda_flow.transport.local import LocalQueue
from tests.conftest import count_rows
from tests.e2e.mcp import app

ADMIN = Caller(kind="jwt", principal="u-1", claims={"sub": "u-1", "group": "admins"})


@pytest.fixture
def svc(store: PostgresStore, clock: TimeSkippingClock) -> WorkflowService:
    return WorkflowService(app.flow, store=store, clock=clock)


def _names(specs: list[dict[str, Any]], key: str = "name") -> list[str]:
    return [s[key] for s in specs]


# -- specs ----------------------------------------------------------------------------------------
def test_tool_specs_in_the_three_formats() -> None:
    mcp = app.flow.tool_specs("mcp")
    assert _names(mcp) == [
        "approve_order", "delete_account", "double", "greet", "review", "slow_report",
        "get_run", "get_run_history", "list_runs", "resume_run", "cancel_run",
        "complete_callback",
    ]  # fmt: skip
    greet = mcp[3]
    assert greet["description"].startswith("Greet someone by name.")
    schema = greet["inputSchema"]
    assert schema["type"] == "object"
    assert set(schema["properties"]) == {"name", "times"}
    assert schema["required"] == ["name"]
    assert schema["properties"]["times"]["maximum"] == 5
    assert mcp[6]["annotations"] == {"readOnlyHint": True}  # get_run
    double = mcp[2]["inputSchema"]  # a workflow whose input is not an object: {"input": ...}
    assert double["properties"] == {"input": {"type": "integer"}}
    assert double["required"] == ["input"]

    openai = app.flow.tool_specs("openai")
    assert openai[3] == {
        "type": "function",
        "function": {
            "name": "greet",
            "description": greet["description"],
            "parameters": schema,
        },
    }
    anthropic = app.flow.tool_specs(format="anthropic", run_tools=False)
    assert _names(anthropic)[-1] == "slow_report"
    assert anthropic[3] == {
        "name": "greet",
        "description": greet["description"],
        "input_schema": schema,
    }

    with pytest.raises(InvalidOption, match="openai, anthropic, mcp"):
        app.flow.tool_specs("gemini")  # type: ignore[arg-type]


def test_opt_out_no_callbacks_and_name_clashes() -> None:
    flow = Flow()

    @flow.workflow(name="nightly report")
    async def nightly(wf: WorkflowContext) -> int:
        return 1

    @flow.workflow(tool=False)
    async def hidden(wf: WorkflowContext) -> None:
        return None

    assert _names(flow.tool_specs()) == [
        "nightly_report", "get_run", "get_run_history", "list_runs", "resume_run", "cancel_run",
    ]  # fmt: skip

    @flow.workflow(name="get_run")
    async def clash(wf: WorkflowContext) -> None:
        return None

    with pytest.raises(ConfigurationError, match=r"'get_run'.*tool=False"):
        flow.tool_specs()
    assert _names(flow.tool_specs(run_tools=False)) == ["get_run", "nightly_report"]


# -- calls ----------------------------------------------------------------------------------------
def test_a_short_workflow_answers_its_output(svc: WorkflowService) -> None:
    result = app.flow.call_tool("greet", {"name": "Ada", "times": 2}, service=svc)
    assert not result.is_error
    assert result.data["status"] == "completed"
    assert result.data["output"] == {"message": "Hello, Ada! Hello, Ada!"}
    assert '"Hello, Ada! Hello, Ada!"' in result.text
    again = app.flow.call_tool("double", {"input": 21}, service=svc)
    assert again.data["output"] == 42


def test_bad_arguments_name_the_field_and_start_nothing(
    svc: WorkflowService, db: psycopg.Connection[Any]
) -> None:
    result = app.flow.call_tool("greet", {"name": "", "times": 9}, service=svc)
    assert result.is_error
    error = result.data["error"]
    assert error["type"] == "InvalidInput"
    assert "name" in error["message"]
    assert "times" in error["message"]
    assert {tuple(d["loc"]) for d in error["details"]} == {("name",), ("times",)}
    missing = app.flow.call_tool("greet", {}, service=svc)
    assert missing.data["error"]["details"][0]["loc"] == ["name"]
    extra = app.flow.call_tool("double", {"input": 2, "other": 1}, service=svc)
    assert extra.data["error"]["details"][0]["loc"] == ["other"]
    assert app.flow.call_tool("greet", ["Ada"], service=svc).is_error  # type: ignore[arg-type]
    assert count_rows(db, "runs") == 0


def test_a_long_workflow_answers_its_run_id_then_get_run_waits_for_it(
    svc: WorkflowService, clock: TimeSkippingClock
) -> None:
    args = {"region": "emea", "delay": "1h"}
    started = app.flow.call_tool("slow_report", args, service=svc, wait="5s")
    assert not started.is_error
    answer = started.data
    assert answer["status"] == "running"
    assert answer["waiting_for"][0]["kind"] == "sleep"
    assert answer["waiting_for"][0]["name"] == "Wait for the data"
    assert "get_run" in answer["next"]
    run_id = answer["run_id"]

    still = app.flow.call_tool("get_run", {"run_id": run_id}, service=svc)
    assert still.data["status"] == "running"
    assert still.data["input"] == args

    done = app.flow.call_tool(
        "get_run", {"run_id": run_id, "wait_seconds": 7200}, service=svc, wait="2h"
    )
    assert done.data["status"] == "completed"
    assert done.data["output"] == {"region": "emea", "total": 400}
    history = app.flow.call_tool("get_run_history", {"run_id": run_id}, service=svc)
    assert [a["step_name"] for a in history.data["history"]] == ["Wait for the data", "Sum"]


def test_callbacks_and_suspensions_tell_the_agent_how_to_go_on(svc: WorkflowService) -> None:
    waiting = app.flow.call_tool("approve_order", {"order": "o-1"}, service=svc).data
    assert waiting["status"] == "running"
    callback = waiting["waiting_for"][0]
    assert callback["kind"] == "callback"
    assert "complete_callback" in waiting["next"]
    done = app.flow.call_tool(
        "complete_callback", {"callback_id": callback["callback_id"], "payload": "yes"}, service=svc
    )
    assert done.data["run"]["status"] == "completed"
    assert done.data["run"]["output"] == {"order": "o-1", "decision": "yes"}

    parked = app.flow.call_tool("review", {}, service=svc).data
    assert parked["status"] == "suspended"
    assert parked["waiting_for"] == [
        {"kind": "suspend", "step_key": "Needs review", "name": "Needs review"}
    ]
    resumed = app.flow.call_tool(
        "resume_run", {"run_id": parked["run_id"], "payload": "ok"}, service=svc
    )
    assert resumed.data["output"] == {"verdict": "ok"}
    finished = app.flow.call_tool("resume_run", {"run_id": parked["run_id"]}, service=svc)
    assert finished.is_error
    assert finished.data["error"]["type"] == "InvalidRunState"


def test_the_permission_hook_sees_the_caller(
    svc: WorkflowService, db: psycopg.Connection[Any]
) -> None:
    refused = app.flow.call_tool("delete_account", {"user_id": "u-9"}, service=svc)
    assert refused.is_error
    assert refused.data["error"]["type"] == "Forbidden"
    assert "delete_account" in refused.data["error"]["message"]
    assert count_rows(db, "runs") == 0
    allowed = app.flow.call_tool("delete_account", {"user_id": "u-9"}, service=svc, caller=ADMIN)
    assert allowed.data["output"] == "deleted u-9"
    run_id = allowed.data["run_id"]
    hidden = app.flow.call_tool("get_run", {"run_id": run_id}, service=svc)
    assert hidden.data["error"]["type"] == "Forbidden"
    listed = app.flow.call_tool("list_runs", {}, service=svc).data["runs"]
    assert run_id not in [r["run_id"] for r in listed]
    admin_listed = app.flow.call_tool("list_runs", {}, service=svc, caller=ADMIN).data["runs"]
    assert [r["run_id"] for r in admin_listed] == [run_id]


def test_run_tools_check_their_arguments(svc: WorkflowService) -> None:
    unknown = app.flow.call_tool("nope", {}, service=svc)
    assert unknown.data["error"]["type"] == "UnknownTool"
    assert "greet" in unknown.data["error"]["message"]
    missing = app.flow.call_tool("get_run", {"wait_seconds": -1}, service=svc).data["error"]
    assert missing["type"] == "InvalidInput"
    assert {tuple(d["loc"]) for d in missing["details"]} == {("run_id",), ("wait_seconds",)}
    lost = app.flow.call_tool("get_run", {"run_id": "0" * 8}, service=svc).data["error"]
    assert lost["type"] == "RunNotFound"
    status = app.flow.call_tool("list_runs", {"status": "sleeping"}, service=svc).data["error"]
    assert status["details"][0]["loc"] == ["status"]
    gone = app.flow.call_tool("complete_callback", {"callback_id": "cb_x"}, service=svc)
    assert gone.data["error"]["type"] == "CallbackNotFound"


def test_cancel_list_and_idempotency(svc: WorkflowService) -> None:
    args = {"region": "apac", "delay": "1d"}
    first = app.flow.call_tool("slow_report", args, service=svc, idempotency_key="k1", wait="0s")
    again = app.flow.call_tool("slow_report", args, service=svc, idempotency_key="k1", wait="0s")
    assert first.data["run_id"] == again.data["run_id"]
    other = app.flow.call_tool(
        "slow_report", {**args, "region": "us"}, service=svc, idempotency_key="k1"
    )
    assert other.data["error"]["type"] == "IdempotencyConflict"
    running = app.flow.call_tool("list_runs", {"status": "running"}, service=svc).data
    assert [r["run_id"] for r in running["runs"]] == [first.data["run_id"]]
    cancelled = app.flow.call_tool(
        "cancel_run", {"run_id": first.data["run_id"], "reason": "not needed"}, service=svc
    )
    assert cancelled.data["status"] == "cancelled"
    assert cancelled.data["error"]["message"] == "not needed"


def test_remote_mode_waits_by_polling(store: PostgresStore, clock: TimeSkippingClock) -> None:
    service = WorkflowService(app.flow, store=store, queue=LocalQueue(clock), clock=clock)
    tools = AgentTools(service, wait="3s")
    started = tools.call("greet", {"name": "Bo"})
    assert started.data["status"] == "running"  # queued: no worker drives it here
    assert started.data["waiting_for"] == []
    assert clock.now().second == 3  # waited the whole bound, on the clock
    polled = tools.call("get_run", {"run_id": started.data["run_id"], "wait_seconds": 2})
    assert polled.data["status"] == "running"
    assert clock.now().second == 5


def test_call_tool_refuses_another_flows_service(svc: WorkflowService) -> None:
    with pytest.raises(ConfigurationError, match="this Flow"):
        Flow().call_tool("greet", {"name": "x"}, service=svc)


# -- the MCP server, in-process with the official client -------------------------------------------
@pytest.mark.parametrize("mode", ["auto", "legacy"])
def test_the_mcp_server_in_memory(svc: WorkflowService, mode: str) -> None:
    from mcp import Client

    server = mcp_server(AgentTools(svc), caller=ADMIN)

    async def talk() -> None:
        async with Client(server, mode=mode) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            assert "internal_cleanup" not in tools
            assert tools["greet"].input_schema["required"] == ["name"]
            result = await client.call_tool("greet", {"name": "Cy"})
            assert not result.is_error
            assert result.structured_content is not None
            assert result.structured_content["output"] == {"message": "Hello, Cy!"}
            bad = await client.call_tool("greet", {"times": 2})
            assert bad.is_error
            assert "name" in bad.content[0].text  # type: ignore[union-attr]

    anyio.run(talk)


def test_an_idempotency_key_in_the_requests_meta(svc: WorkflowService) -> None:
    from mcp import Client

    server = mcp_server(AgentTools(svc, wait="0s"))
    meta = {"lambda-flow/idempotency-key": "order-7"}

    async def twice() -> list[str]:
        async with Client(server) as client:
            args = {"region": "eu", "delay": "1d"}
            first = await client.call_tool("slow_report", args, meta=meta)  # type: ignore[arg-type]
            again = await client.call_tool("slow_report", args, meta=meta)  # type: ignore[arg-type]
            other = await client.call_tool("slow_report", args)
            return [r.structured_content["run_id"] for r in (first, again, other)]

    first, again, other = anyio.run(twice)
    assert first == again
    assert other != first


def test_the_command_refuses_bad_options(capsys: pytest.CaptureFixture[str]) -> None:
    from lambda_flow.cli import main

    assert main(["--app", "tests.e2e.mcp.app:flow", "mcp", "--wait", "soon"]) == 2
    assert "--wait" in capsys.readouterr().err
    assert main(["mcp", "--http", "http"]) == 2
    assert "port number" in capsys.readouterr().err

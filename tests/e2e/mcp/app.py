"""The app the MCP tests serve: a short workflow, long ones, a refused one, a hidden one.

``lambda-flow mcp --app tests.e2e.mcp.app:flow`` (stdio and HTTP), the Api function's /mcp route
and ``Flow.call_tool`` all serve it.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from lambda_flow import AccessRequest, Flow, WorkflowContext

flow = Flow()


class GreetIn(BaseModel):
    name: str = Field(min_length=1, description="Who to greet.")
    times: int = Field(default=1, ge=1, le=5, description="How many greetings.")


class GreetOut(BaseModel):
    message: str


@flow.workflow
async def greet(wf: WorkflowContext, data: GreetIn) -> GreetOut:
    """Greet someone by name."""
    message = await wf.do("Compose", lambda: " ".join([f"Hello, {data.name}!"] * data.times))
    return GreetOut(message=message)


class ReportIn(BaseModel):
    region: str
    delay: str = "1s"


@flow.workflow
async def slow_report(wf: WorkflowContext, data: ReportIn) -> dict[str, Any]:
    """Build a sales report for a region (takes a while)."""
    await wf.sleep("Wait for the data", data.delay)
    total = await wf.do("Sum", lambda: len(data.region) * 100)
    return {"region": data.region, "total": total}


@flow.workflow
async def approve_order(wf: WorkflowContext, data: dict[str, Any]) -> dict[str, Any]:
    """Ask a person to approve an order; finishes once the approval comes back."""
    cb = await wf.callback("Approval", timeout="1h")
    decision = await cb.result()
    return {"order": data.get("order"), "decision": decision}


@flow.workflow
async def review(wf: WorkflowContext, data: dict[str, Any]) -> dict[str, Any]:
    """Suspend until someone resumes the run with a verdict."""
    verdict = await wf.suspend("Needs review")
    return {"verdict": verdict}


def _admins_only(request: AccessRequest) -> bool:
    return request.caller.claims.get("group") == "admins"


@flow.workflow(authorize=_admins_only)
async def delete_account(wf: WorkflowContext, data: dict[str, Any]) -> str:
    """Delete an account (admins only)."""
    return await wf.do("Delete", lambda: f"deleted {data.get('user_id')}")


@flow.workflow(tool=False)
async def internal_cleanup(wf: WorkflowContext) -> None:
    """Not for agents."""


@flow.workflow
async def double(wf: WorkflowContext, data: int) -> int:
    """Double a number."""
    return data * 2

"""The app the browser tests serve with ``lambda-flow dev``: an onboarding run with a retry and
a sleep, an approval, a payment callback, a long wait to cancel, and a hostile run."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from lambda_flow import Flow, WorkflowContext, current_step

flow = Flow()

XSS = "<script>window.__xss = 1</script>"


class Signup(BaseModel):
    email: str
    plan: str = "team"


@flow.function
def create_profile(data: Signup) -> dict[str, str]:
    return {"id": data.email.split("@")[0], "email": data.email}


@flow.function
def send_email(data: dict[str, str]) -> str:
    step = current_step()
    if step is not None and step.attempt == 1:
        raise ConnectionError("mail server did not answer")  # the retry succeeds
    return f"sent to {data['to']}"


@flow.function
def provision_workspace(data: dict[str, str]) -> str:
    return f"ws-{data['id']}"


@flow.workflow(description="Create a profile, greet, wait, send a welcome email, provision")
async def onboard_user(wf: WorkflowContext, data: Signup) -> dict[str, Any]:
    profile = await wf.do("Create profile", create_profile, data)
    message = await wf.do("Greet", lambda: f"Welcome, {data.email}!")
    await wf.sleep("Wait before welcome email", "1s")
    await wf.do(
        "Send welcome email", send_email, {"to": data.email, "body": message},
        retries=3, retry_delay="200ms",
    )  # fmt: skip
    workspace = await wf.do("Provision workspace", provision_workspace, profile)
    return {"profile": profile, "workspace": workspace}


@flow.workflow(description="Wait for a person's decision")
async def approval(wf: WorkflowContext, data: dict[str, Any]) -> Any:
    decision = await wf.suspend("Needs approval")
    return {"decision": decision}


@flow.workflow(description="Wait for the payment provider's webhook")
async def checkout(wf: WorkflowContext, data: dict[str, Any]) -> Any:
    payment = await wf.callback("Payment", timeout="1d")
    return await payment.result()


@flow.workflow(description="Sleeps for a day")
async def nightly(wf: WorkflowContext, data: dict[str, Any]) -> str:
    await wf.sleep("Wait a day", "1d")
    return "done"


@flow.workflow
async def hostile(wf: WorkflowContext, data: dict[str, Any]) -> str:
    await wf.do(XSS, lambda: XSS)
    return XSS

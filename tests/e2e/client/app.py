"""The app ``lambda-flow dev`` serves to the client tests (``--app tests.e2e.client.app:flow``)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from lambda_flow import Flow, NonRetryableError, WorkflowContext

flow = Flow()


class Greeting(BaseModel):
    name: str = Field(min_length=1, max_length=40)
    times: int = Field(default=1, ge=1, le=3)


class Greeted(BaseModel):
    text: str
    length: int


@flow.workflow(description="Greets someone, up to three times.", tags=["demo"])
async def greet(wf: WorkflowContext, data: Greeting) -> Greeted:
    text = str(await wf.do("say hello", lambda: " ".join([f"hello {data.name}"] * data.times)))
    return Greeted(text=text, length=len(text))


@flow.workflow
async def approval(wf: WorkflowContext) -> str:
    """Waits for an operator."""
    await wf.suspend("needs approval")
    return "approved"


@flow.workflow
async def explode(wf: WorkflowContext) -> str:
    def fail() -> str:
        raise NonRetryableError("boom")

    return str(await wf.do("fail", fail))


@flow.workflow
async def give_up(wf: WorkflowContext) -> str:
    await wf.cancel("nothing to do")
    return "unreachable"

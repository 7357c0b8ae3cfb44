from typing import Any

import pytest
from pydantic import BaseModel

from lambda_flow import Flow, FunctionNotFound, InvalidInput, LambdaFlowError, WorkflowNotFound


class In(BaseModel):
    x: int


def test_functions_register_bare_or_named_and_stay_callable() -> None:
    flow = Flow()

    @flow.function
    def plain(data: In) -> int:
        return data.x

    @flow.function(name="renamed")
    async def other() -> str:
        return "hi"

    assert plain(In(x=2)) == 2
    assert flow.get_function("plain").fn is plain
    assert flow.get_function(plain).name == "plain"
    assert flow.get_function("renamed").takes_data is False
    assert flow.get_function(other).is_async
    with pytest.raises(FunctionNotFound, match="'nope'"):
        flow.get_function("nope")
    assert flow.find_function(lambda: 1) is None


def test_workflows_register_with_metadata() -> None:
    flow = Flow()

    @flow.workflow(name="onboarding", description="Signs users up", tags=["users"])
    async def onboard(wf: Any, data: In) -> None:
        """Docstring is the default description."""

    @flow.workflow
    async def no_input(wf: Any) -> None:
        """Takes no data."""

    definition = flow.get_workflow("onboarding")
    assert definition.fn is onboard
    assert definition.description == "Signs users up"
    assert definition.tags == ("users",)
    assert flow.get_workflow("no_input").description == "Takes no data."
    assert flow.get_workflow("no_input").takes_data is False
    assert [w.name for w in flow] == ["onboarding", "no_input"]
    with pytest.raises(WorkflowNotFound, match="'missing'"):
        flow.get_workflow("missing")


def test_workflow_input_is_validated_and_stored_as_json() -> None:
    flow = Flow()

    @flow.workflow
    async def typed(wf: Any, data: In) -> None: ...

    @flow.workflow
    async def untyped(wf: Any, data) -> None: ...  # type: ignore[no-untyped-def]

    assert flow.get_workflow("typed").validate_input({"x": "3"}) == {"x": 3}
    assert flow.get_workflow("untyped").validate_input({"any": ["thing"]}) == {"any": ["thing"]}
    with pytest.raises(InvalidInput, match="x: Input should be a valid integer") as raised:
        flow.get_workflow("typed").validate_input({"x": "three"})
    assert raised.value.errors == [
        {
            "loc": ["x"],
            "msg": "Input should be a valid integer, unable to parse string as an integer",
            "type": "int_parsing",
        }
    ]


@pytest.mark.parametrize(
    ("register", "problem"),
    [
        (lambda f: f.workflow(lambda wf: None), "must be an async def"),
        (lambda f: f.function(lambda a, b: None), "at most one parameter"),
    ],
)
def test_registration_mistakes_are_explained(register: Any, problem: str) -> None:
    with pytest.raises(LambdaFlowError, match=problem):
        register(Flow())


def test_duplicate_names_are_refused() -> None:
    flow = Flow()

    @flow.function
    def dup() -> None: ...

    with pytest.raises(LambdaFlowError, match="already registered"):
        flow.function(name="dup")(lambda: None)


def test_a_refusal_is_logged_once_with_who_asked_what_and_never_the_input(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import logging

    from lambda_flow import AccessRequest, Caller, WorkflowContext

    flow = Flow()

    @flow.workflow(authorize=lambda r: r.caller.principal == "admin")
    async def guarded(wf: WorkflowContext, data: Any) -> None:
        return None

    def ask(principal: str, workflow: str = "guarded") -> bool:
        caller = Caller(kind="jwt", principal=principal, claims={})
        request = AccessRequest(
            caller=caller, action="start", workflow=workflow, input={"card": "4111"}
        )
        return flow.admits(request, logging.getLogger("test.access"))

    with caplog.at_level(logging.WARNING, logger="test.access"):
        assert ask("admin")
        assert not ask("mallory")
        assert not ask("admin", workflow="retired")  # unregistered, and hooks in use: closed
    assert [r.getMessage() for r in caplog.records] == ["access refused", "access refused"]
    first = caplog.records[0]
    assert (first.action, first.workflow, first.principal) == ("start", "guarded", "mallory")  # type: ignore[attr-defined]
    assert all("4111" not in str(vars(record)) for record in caplog.records)

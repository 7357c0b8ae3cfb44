"""Typing test of the public API, checked by mypy in `make typecheck` (never run by pytest).

Each `assert_type` pins what a user's type checker sees; each `type: ignore[...]` pins an
error it must report (mypy's strict mode fails on an ignore that is no longer needed).
"""

from __future__ import annotations

from typing import Any, assert_type

from pydantic import BaseModel

from lambda_flow import Callback, Flow, WorkflowContext

flow = Flow()


class Signup(BaseModel):
    email: str


class Profile(BaseModel):
    user_id: str


@flow.function
async def create_profile(data: Signup) -> Profile:
    return Profile(user_id=data.email)


@flow.function
def count_users() -> int:
    return 1


@flow.function
def greet(name: str) -> str:
    return f"hi {name}"


async def body(wf: WorkflowContext, data: Signup) -> None:
    assert_type(await wf.do("Create", create_profile, data), Profile)  # async, with input
    assert_type(await wf.do("Greet", greet, "ada"), str)  # sync, with input
    assert_type(await wf.do("Count", count_users), int)  # sync, no input
    assert_type(await wf.do("Inline", lambda: 42), int)  # an inline callable
    assert_type(await wf.do("By name", "create_profile", data), Any)  # a name says nothing

    await wf.do("Wrong input", create_profile, "not a signup")  # type: ignore[arg-type]
    await wf.do("Wrong input", greet, 3)  # type: ignore[arg-type]
    await wf.do("Missing input", greet)  # type: ignore[arg-type]
    wrong: str = await wf.do("Wrong result", count_users)  # type: ignore[arg-type]
    del wrong


class Payment(BaseModel):
    amount: int


async def waits(wf: WorkflowContext) -> None:
    typed = await wf.callback("Payment", timeout="1d", type=Payment)
    assert_type(typed, Callback[Payment])
    assert_type(await typed.result(), Payment)  # validated into type=
    untyped = await wf.callback("Anything")
    assert_type(untyped, Callback[Any])
    assert_type(await untyped.result(), Any)  # plain JSON
    assert_type(untyped.id, str)
    # A condition's state and wait_for_callback's payload are whatever the check / the outside
    # party gave: untyped.
    assert_type(await wf.wait_for_condition("Done", lambda s: s, initial_state=0), Any)
    assert_type(await wf.wait_for_callback("Paid", lambda cb_id: None, type=Payment), Any)
    await wf.callback("Bad", type="Payment")  # type: ignore[call-overload]

"""Typing test of the public API, checked by mypy in `make typecheck` (never run by pytest).

Each `assert_type` pins what a user's type checker sees; each `type: ignore[...]` pins an
error it must report (mypy's strict mode fails on an ignore that is no longer needed).
"""

from __future__ import annotations

from typing import Any, assert_type

from pydantic import BaseModel

from lambda_flow import Flow, WorkflowContext

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

"""The one input path: unstorable text, the size limit and idempotency conflicts (issue 11).

Every entry point (``start``, ``start_and_wait``, ``run_to_completion``, the CLI, the HTTP API)
goes through ``WorkflowService``; each refusal writes nothing (invariant 8).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from pydantic import BaseModel

from lambda_flow import (
    Flow,
    IdempotencyConflict,
    InputTooLarge,
    InvalidInput,
    LambdaFlowError,
    UnstorableInput,
    WorkflowContext,
    WorkflowService,
)
from lambda_flow.cli import main
from lambda_flow.core import MAX_INPUT_BYTES, json_size
from lambda_flow.testing import TimeSkippingClock
from tests.conftest import count_rows


class Note(BaseModel):
    title: str
    tags: list[str] = []


APP = Flow()
"""The app the CLI tests load (``--app``)."""


@APP.workflow
async def keep(wf: WorkflowContext, data: dict[str, Any]) -> str:
    return "kept"


@APP.workflow
async def note(wf: WorkflowContext, data: Note) -> str:
    return data.title


Entry = Callable[[WorkflowService, str, Any], Any]
ENTRIES: dict[str, Entry] = {
    "start": lambda s, name, data: s.start(name, data),
    "start_and_wait": lambda s, name, data: s.start_and_wait(name, data),
    "run_to_completion": lambda s, name, data: s.run_to_completion(name, data),
}


@pytest.fixture
def app_service(store: Any, clock: TimeSkippingClock) -> WorkflowService:
    return WorkflowService(APP, store=store, clock=clock)


def _rows(db: psycopg.Connection[Any]) -> tuple[int, int]:
    return count_rows(db, "runs"), count_rows(db, "steps")


@pytest.mark.parametrize(
    ("data", "loc", "fragment"),
    [
        ({"a": "x\x00y"}, ["a"], "NUL"),
        ({"a": ["ok", {"b": "\ud800"}]}, ["a", 1, "b"], "lone surrogate"),
        ({"k\x00": 1}, ["k\\u0000"], "key contains a NUL"),
        ({"\udc00": "v"}, ["\\udc00"], "key contains a lone surrogate"),
        ({"n": float("nan")}, ["n"], "not a JSON number"),
        ({"n": [float("inf")]}, ["n", 0], "not a JSON number"),
    ],
)
@pytest.mark.parametrize("entry", list(ENTRIES))
def test_text_the_database_cannot_store_is_refused_naming_where(
    app_service: WorkflowService,
    db: psycopg.Connection[Any],
    *,
    entry: str,
    data: Any,
    loc: list[Any],
    fragment: str,
) -> None:
    with pytest.raises(UnstorableInput) as refused:
        ENTRIES[entry](app_service, "keep", data)

    assert isinstance(refused.value, InvalidInput)
    assert [e["loc"] for e in refused.value.errors] == [loc]
    assert fragment in refused.value.errors[0]["msg"]
    assert "workflow 'keep'" in str(refused.value)
    str(refused.value).encode("utf-8")  # printable as it is: the bad key is escaped
    assert _rows(db) == (0, 0)


def test_every_problem_is_named_and_text_postgres_can_store_is_kept(
    app_service: WorkflowService,
) -> None:
    with pytest.raises(UnstorableInput) as refused:
        app_service.start("note", {"title": "a\x00", "tags": ["ok", "b\ud801"]})
    assert [e["loc"] for e in refused.value.errors] == [["tags", 1], ["title"]]

    run_id = app_service.start("keep", {"text": "Zoë 😀 \u2028 \\u0000 is only text"})
    run = app_service.get_run(run_id)
    assert run is not None
    assert run.input == {"text": "Zoë 😀 \u2028 \\u0000 is only text"}


@pytest.mark.parametrize("entry", list(ENTRIES))
def test_an_input_over_the_limit_is_refused_naming_size_and_limit(
    app_service: WorkflowService, db: psycopg.Connection[Any], entry: str
) -> None:
    fits = {"pad": "x" * (MAX_INPUT_BYTES - len('{"pad":""}'))}
    over = {"pad": fits["pad"] + "é"}  # one character, two bytes
    assert json_size(fits) == MAX_INPUT_BYTES

    with pytest.raises(InputTooLarge) as refused:
        ENTRIES[entry](app_service, "keep", over)

    assert (refused.value.size, refused.value.limit) == (MAX_INPUT_BYTES + 2, MAX_INPUT_BYTES)
    assert f"over the limit of {MAX_INPUT_BYTES} bytes" in str(refused.value)
    assert _rows(db) == (0, 0)
    assert ENTRIES[entry](app_service, "keep", fits) is not None


def test_the_limit_applies_to_the_validated_stored_input(app_service: WorkflowService) -> None:
    # Extra fields the model drops do not count; what would be stored does.
    dropped = {"title": "t", "junk": "x" * MAX_INPUT_BYTES}
    assert app_service.start("note", dropped)
    with pytest.raises(InputTooLarge):
        app_service.start("note", {"title": "x" * MAX_INPUT_BYTES})


def test_an_idempotency_key_reused_with_another_input_is_a_conflict(
    app_service: WorkflowService, db: psycopg.Connection[Any]
) -> None:
    first = app_service.start("keep", {"a": 1, "b": [1, 2]}, idempotency_key="k")
    same = app_service.start("keep", {"b": [1, 2], "a": 1}, idempotency_key="k")
    waited = app_service.start_and_wait("keep", {"b": [1, 2], "a": 1}, idempotency_key="k")
    before = _rows(db)

    for entry in ENTRIES:
        with pytest.raises(IdempotencyConflict) as conflict:
            getattr(app_service, entry)("keep", {"a": 2, "b": [1, 2]}, idempotency_key="k")
        assert isinstance(conflict.value, LambdaFlowError)
        assert (conflict.value.workflow, conflict.value.idempotency_key) == ("keep", "k")
        assert conflict.value.run_id == first
        assert "'k'" in str(conflict.value)
        assert "different input" in str(conflict.value)

    assert same == waited.id == first
    assert _rows(db) == before
    other_workflow = app_service.start("note", {"title": "t"}, idempotency_key="k")
    assert other_workflow != first  # a key belongs to one workflow


def test_the_conflict_compares_the_validated_input(app_service: WorkflowService) -> None:
    first = app_service.start("note", {"title": "t"}, idempotency_key="n")

    # The model fills in the default and drops the extra key: the same stored input.
    assert app_service.start("note", {"title": "t", "tags": [], "x": 1}, idempotency_key="n") == (
        first
    )
    with pytest.raises(IdempotencyConflict):
        app_service.start("note", {"title": "t", "tags": ["new"]}, idempotency_key="n")


def test_a_cancel_reason_the_database_cannot_store_is_refused(
    flow: Flow, service: WorkflowService
) -> None:
    @flow.workflow
    async def wait(wf: WorkflowContext) -> None:
        await wf.suspend("hold")

    run_id = service.start("wait")

    with pytest.raises(UnstorableInput) as refused:
        service.cancel(run_id, "no\x00pe")

    assert refused.value.errors[0]["loc"] == ["reason"]
    run = service.get_run(run_id)
    assert run is not None
    assert run.status == "suspended"


# -- the CLI: the same exception, one line, exit 2 ---------------------------------------------
@pytest.mark.parametrize(
    ("input_text", "fragment"),
    [
        (json.dumps({"a": "x\x00"}), "a: text contains a NUL character"),
        ('{"a": "\\ud800"}', "a: text contains a lone surrogate"),
        (json.dumps({"pad": "x" * MAX_INPUT_BYTES}), f"over the limit of {MAX_INPUT_BYTES} bytes"),
    ],
)
@pytest.mark.usefixtures("store")  # the schema exists, so rows can be counted
def test_the_cli_refuses_the_same_inputs_with_exit_2(
    database_url: str,
    schema: str,
    db: psycopg.Connection[Any],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    *,
    input_text: str,
    fragment: str,
) -> None:
    for name in ("LAMBDA_FLOW_APP", "LAMBDA_FLOW_DATABASE_URL", "LAMBDA_FLOW_SCHEMA"):
        monkeypatch.delenv(name, raising=False)
    app = "tests.functional.service.test_input_checks:APP"
    argv = ["--database-url", database_url, "--schema", schema, "--app", app]

    code = main([*argv, "start", "keep", "--input", input_text])

    _, err = capsys.readouterr()
    assert code == 2
    assert err.count("\n") == 1, err
    assert fragment in err
    assert _rows(db) == (0, 0)

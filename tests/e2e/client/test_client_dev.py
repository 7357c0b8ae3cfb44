"""``lambda_flow.client.Client`` against a real ``lambda-flow dev`` process (issue 11, item 14).

The dev runtime is remote mode on local queues: runs go through the queues and the workers,
so every wait here is the client's own (the server's ``/run`` wait, then polling).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from lambda_flow import (
    IdempotencyConflict,
    InvalidInput,
    InvalidRunState,
    Run,
    RunCancelled,
    RunFailed,
    RunNotFound,
    RunStatus,
    RunSuspended,
    StepAttempt,
    UnstorableInput,
    WorkflowNotFound,
)
from lambda_flow.client import Client, RunSummary
from tests import ROOT

APP = "tests.e2e.client.app:flow"


@pytest.fixture(scope="module")
def dev_url(database_url: str) -> Iterator[str]:
    """A ``lambda-flow dev`` process on a free port and its own schema, for the module."""
    schema = f"client_{os.getpid()}"
    command = [
        sys.executable, "-m", "lambda_flow.cli", "--app", APP,
        "--database-url", database_url, "--schema", schema,
        "dev", "--port", "0", "--sweep-every", "1s",
    ]  # fmt: skip
    process = subprocess.Popen(  # noqa: S603 - our own CLI
        command,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    first = process.stdout.readline()  # "lambda-flow dev: API on http://127.0.0.1:PORT ..."
    if "http://" not in first:
        process.kill()
        process.communicate(timeout=10)
        pytest.fail(f"dev runtime did not start: {first!r}")
    yield "http://" + first.split("http://", 1)[1].split()[0]
    process.kill()  # not SIGINT: works in the background too (issue 11, item 18)
    process.communicate(timeout=10)
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.fixture
def client(dev_url: str) -> Client:
    return Client(dev_url, poll_interval="100ms")


def test_list_workflows_with_their_schemas(client: Client) -> None:
    workflows = {w.name: w for w in client.list_workflows()}

    assert set(workflows) == {"approval", "explode", "give_up", "greet"}
    greet = workflows["greet"]
    assert greet.description == "Greets someone, up to three times."
    assert greet.tags == ["demo"]
    assert greet.input_schema["properties"]["name"]["maxLength"] == 40
    assert greet.output_schema["required"] == ["text", "length"]
    assert workflows["approval"].description == "Waits for an operator."


def test_start_and_wait_returns_the_typed_run_and_its_history(client: Client) -> None:
    run = client.start_and_wait("greet", {"name": "Ada", "times": 2}, timeout="20s")

    assert isinstance(run, Run)
    assert run.status is RunStatus.COMPLETED
    assert run.input == {"name": "Ada", "times": 2}
    assert run.output == {"text": "hello Ada hello Ada", "length": 19}
    history = client.get_run_history(run.id)
    assert all(isinstance(a, StepAttempt) for a in history)
    assert [(a.step_name, a.status, a.attempt) for a in history] == [("say hello", "succeeded", 1)]
    assert client.get_run(run.id) == run


def test_start_returns_at_once_and_the_run_finishes_on_the_workers(client: Client) -> None:
    run_id = client.start("greet", {"name": "Bo"})

    assert client.run_to_completion("greet", {"name": "Cy"}, timeout="20s") == {
        "text": "hello Cy",
        "length": 8,
    }
    run = client.start_and_wait("greet", {"name": "Bo"}, idempotency_key=None, timeout="20s")
    assert run.id != run_id
    finished = client.get_run(run_id)
    assert finished is not None
    assert finished.output == {"text": "hello Bo", "length": 8}


def test_run_to_completion_raises_what_the_service_raises(client: Client) -> None:
    with pytest.raises(RunFailed, match="boom"):
        client.run_to_completion("explode", timeout="20s")
    with pytest.raises(RunCancelled) as cancelled:
        client.run_to_completion("give_up", timeout="20s")
    assert cancelled.value.reason == "nothing to do"
    with pytest.raises(RunSuspended) as suspended:
        client.run_to_completion("approval", timeout="20s")
    assert suspended.value.reason == "needs approval"


def test_resume_cancel_and_acting_on_a_finished_run(client: Client) -> None:
    waiting = client.start_and_wait("approval", timeout="20s")
    assert waiting.status is RunStatus.SUSPENDED

    resumed = client.resume(waiting.id)
    assert resumed.id == waiting.id
    assert _settled(client, waiting.id).output == "approved"  # finished on the workers
    other = client.start_and_wait("approval", timeout="20s")
    requested = client.cancel(other.id, "not today")  # remote: the cancel is delivered by a pass
    assert requested.id == other.id
    cancelled = _settled(client, other.id)

    assert cancelled.status is RunStatus.CANCELLED
    assert cancelled.error is not None
    assert cancelled.error.message == "not today"
    with pytest.raises(InvalidRunState) as refused:
        client.cancel(other.id)
    assert (refused.value.run_id, refused.value.status, refused.value.operation) == (
        other.id, "cancelled", "cancel",
    )  # fmt: skip
    with pytest.raises(InvalidRunState):
        client.resume(other.id)


def _settled(client: Client, run_id: str) -> Run:
    deadline = time.monotonic() + 20
    while True:  # a real process on the real clock: poll it
        run = client.get_run(run_id)
        assert run is not None
        if run.status is not RunStatus.RUNNING or time.monotonic() > deadline:
            return run
        time.sleep(0.05)


def test_errors_are_the_services_exceptions(client: Client) -> None:
    with pytest.raises(WorkflowNotFound) as unknown:
        client.start("nope", {})
    assert unknown.value.name == "nope"
    assert str(unknown.value) == "unknown workflow 'nope'"

    with pytest.raises(InvalidInput) as invalid:
        client.start("greet", {"name": "", "times": 9})
    assert {tuple(e["loc"]) for e in invalid.value.errors} == {("name",), ("times",)}
    assert "workflow 'greet'" in str(invalid.value)

    missing = "00000000-0000-0000-0000-000000000000"
    assert client.get_run(missing) is None
    with pytest.raises(RunNotFound) as not_found:
        client.get_run_history(missing)
    assert not_found.value.run_id == missing
    with pytest.raises(InvalidInput):
        client.list_runs(status="bogus")


def test_unstorable_input_is_refused_before_it_is_sent(client: Client) -> None:
    before = sum(1 for _ in client.iter_runs(workflow="greet"))

    with pytest.raises(UnstorableInput) as refused:
        client.start("greet", {"name": "A\x00da"})

    assert refused.value.errors[0]["loc"] == ["name"]
    assert sum(1 for _ in client.iter_runs(workflow="greet")) == before


def test_idempotency_keys(client: Client) -> None:
    first = client.start("greet", {"name": "Di", "times": 2}, idempotency_key="client-k1")
    again = client.start("greet", {"times": 2, "name": "Di"}, idempotency_key="client-k1")

    with pytest.raises(IdempotencyConflict) as conflict:
        client.start("greet", {"name": "Ed"}, idempotency_key="client-k1")

    assert again == first
    assert (conflict.value.workflow, conflict.value.idempotency_key) == ("greet", "client-k1")
    assert conflict.value.run_id is None  # the API does not name another caller's run
    assert "different input" in str(conflict.value)


def test_list_runs_pages_of_summaries(client: Client) -> None:
    started = [client.start("greet", {"name": f"p{i}"}) for i in range(5)]

    page = client.list_runs(workflow="greet", limit=2)
    assert len(page.runs) == 2
    assert all(isinstance(r, RunSummary) for r in page.runs)
    assert page.next_cursor is not None
    newest = [r.id for r in client.iter_runs(workflow="greet", page_size=2)]
    assert newest[:5] == list(reversed(started))
    assert len(newest) == len(set(newest))


def test_list_runs_by_creation_time_and_search(client: Client) -> None:
    keyed = client.start("greet", {"name": "s1"}, idempotency_key="search-me-1")
    other = client.start("greet", {"name": "s2"})
    created = client.get_run(keyed).created_at

    assert [r.id for r in client.list_runs(search="search-me").runs] == [keyed]
    assert [r.id for r in client.iter_runs(search=other[:13])] == [other]
    later = [r.id for r in client.list_runs(created_after=created).runs]
    assert later[-1] == keyed  # newest first: it and what came after it
    assert other in later
    assert keyed not in [r.id for r in client.list_runs(created_before=created).runs]
    with pytest.raises(InvalidInput):
        client.list_runs(created_after=created.replace(tzinfo=None))


def test_the_swagger_ui_is_served_at_docs(dev_url: str) -> None:
    with urllib.request.urlopen(f"{dev_url}/docs", timeout=10) as answer:  # noqa: S310
        page = answer.read().decode()
        content_type: Any = answer.headers["Content-Type"]

    assert content_type.startswith("text/html")
    assert "SwaggerUIBundle" in page
    assert "/workflows/greet/start" in page

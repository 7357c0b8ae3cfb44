"""Child workflows through the real handlers on moto (issue 13): the child's end wakes its parent
with one message, duplicates change nothing, failures and timeouts come back as ``ChildFailed``,
cancelling the parent through the API cancels the child, and ``GET /runs?parent_id=`` lists it.

The workflows are registered here, on the application the handlers load (``tests.e2e.app:flow``),
under names of their own (``kids_*``). moto never fires EventBridge schedules: the tests fire
them with :meth:`Harness.fire_schedule`, as Scheduler would at their time.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from lambda_flow import ChildFailed, RunStatus, StepStatus, WorkflowCancelled, WorkflowContext
from tests.e2e import app, aws
from tests.e2e.aws import Harness
from tests.e2e.conftest import ApiClient, FakeLambdaContext

moto_server = aws.moto_server
harness = aws.harness

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")


# -- the workflows (names of their own on the shared app) -------------------------------------
@app.flow.function(name="kids_create_workspace")
def _create_workspace(name: str) -> str:
    app.calls[f"create:{name}"] += 1
    return f"ws-{name}"


@app.flow.workflow(name="kids_provision")
async def _provision(wf: WorkflowContext, name: str) -> str:
    """The child: one RPC step, run by the step worker."""
    return str(await wf.do("Create", "kids_create_workspace", name))


@app.flow.workflow(name="kids_order")
async def _order(wf: WorkflowContext, name: str) -> str:
    """The parent: waits for its child (parked, no compute), then uses its output."""
    workspace = await wf.child("Provision", "kids_provision", name)
    return f"ordered {workspace}"


@app.flow.function(name="kids_decline")
def _decline(cents: int) -> None:
    app.calls["decline"] += 1
    raise ValueError(f"card declined for {cents}")


@app.flow.workflow(name="kids_charge")
async def _charge(wf: WorkflowContext, cents: int) -> None:
    await wf.do("Card", "kids_decline", cents)


@app.flow.workflow(name="kids_checkout")
async def _checkout(wf: WorkflowContext, cents: int) -> dict[str, Any]:
    """Catches its child's failure and says what it was."""
    try:
        await wf.child("Charge", "kids_charge", cents)
    except ChildFailed as failed:
        return {
            "caught": type(failed).__name__,
            "step_key": failed.step_key,
            "child_run_id": failed.child_run_id,
            "error_type": failed.error_type,
            "error_message": failed.error_message,
        }
    return {"caught": None}


@app.flow.function(name="kids_release")
def _release(what: str) -> str:
    app.calls[f"release:{what}"] += 1
    return f"released {what}"


@app.flow.workflow(name="kids_hold")
async def _hold(wf: WorkflowContext) -> str:
    """Holds for a month; a cancellation releases the hold (an RPC step) first."""
    try:
        await wf.sleep("Hold", "30d")
    except WorkflowCancelled:
        await wf.do("Release", "kids_release", "hold")
        raise
    return "held"


@app.flow.workflow(name="kids_hold_parent")
async def _hold_parent(wf: WorkflowContext) -> str:
    return str(await wf.child("Hold", "kids_hold"))


@app.flow.workflow(name="kids_slow")
async def _slow(wf: WorkflowContext) -> str:
    await wf.sleep("Long", "2h")
    return "late"


@app.flow.workflow(name="kids_impatient")
async def _impatient(wf: WorkflowContext) -> str:
    """Gives its child an hour; the child needs two."""
    try:
        return str(await wf.child("Slow", "kids_slow", timeout="1h"))
    except ChildFailed as failed:
        return f"{failed.error_type} {failed.child_run_id}"


# -- helpers ------------------------------------------------------------------------------------
def _orchestrator_messages(harness: Harness) -> Counter[str]:
    """Orchestrator messages that reached SQS, by the run they name."""
    url = harness.queues["orchestrator"].url
    return Counter(
        json.loads(m.body)["run_id"] for m in harness.recorder.delivered() if m.queue_url == url
    )


def _only_child(harness: Harness, parent_id: str) -> Any:
    [child] = harness.service.list_runs(parent_id=parent_id)
    assert child.parent_id == parent_id
    return child


def _assert_queues_empty(harness: Harness) -> None:
    for queue in harness.queues.values():
        for url in (queue.url, queue.dlq_url):
            counts = harness.queue_attributes(url)
            assert counts["ApproximateNumberOfMessages"] == 0, (url, counts)
            assert counts["ApproximateNumberOfMessagesNotVisible"] == 0, (url, counts)


@pytest.fixture
def api(harness: Harness) -> ApiClient:
    """The API handler (a cold start) on the harness's runtime, called with v2 events."""
    handler = harness.load("api")
    client = ApiClient(handler.handler, FakeLambdaContext())
    assert client.get("/runs").status == 200
    assert handler._built.runtime is harness.runtime  # the same store, queues and clock
    return client


@pytest.fixture
def rows(harness: Harness) -> Callable[[], tuple[int, int, int]]:
    """What is stored and sent so far: (runs, steps, messages sent)."""

    def counts() -> tuple[int, int, int]:
        runs = harness.service.list_runs(limit=1000)
        steps = sum(len(harness.runtime.store.get_steps(r.id)) for r in runs)
        return len(runs), steps, len(harness.recorder.sent)

    return counts


# -- tests --------------------------------------------------------------------------------------
def test_a_childs_end_wakes_its_parent_with_one_message(harness: Harness) -> None:
    run_id = harness.service.start("kids_order", "acme")

    harness.pump(skip_time=False)

    run = harness.run(run_id)
    assert run.status is RunStatus.COMPLETED, run.error
    assert run.output == "ordered ws-acme"
    assert run.parent_id is None
    child = _only_child(harness, run_id)
    assert (child.workflow, child.status, child.output) == (
        "kids_provision",
        RunStatus.COMPLETED,
        "ws-acme",
    )
    assert app.calls == Counter({"create:acme": 1})
    messages = _orchestrator_messages(harness)
    assert messages[run_id] == 2  # its start, then exactly one wake-up: the child's end
    assert messages[child.id] == 1  # its start; the step worker carries it on afterwards
    assert harness.count("step_worker") == 1  # the child's RPC step ran on a step worker
    [step] = harness.runtime.store.get_steps(run_id)
    assert (step.key, step.status) == ("Provision", StepStatus.SUCCEEDED)
    [child_step] = harness.runtime.store.get_steps(child.id)
    assert (child_step.key, child_step.result) == ("Create", "ws-acme")
    _assert_queues_empty(harness)


def test_every_message_delivered_twice_changes_nothing(harness: Harness) -> None:
    run_id = harness.service.start("kids_order", "dup")

    made = harness.pump(skip_time=False, times=2)

    assert made
    assert all(i.error is None and i.failures == [] for i in made)
    run = harness.run(run_id)
    assert run.status is RunStatus.COMPLETED, run.error
    assert run.output == "ordered ws-dup"
    child = _only_child(harness, run_id)
    assert child.status is RunStatus.COMPLETED
    assert app.calls == Counter({"create:dup": 1})  # the child's step ran once
    assert len(harness.service.list_runs(limit=100)) == 2  # no second child
    assert harness.count("step_worker") == 2  # one job, delivered twice
    # A duplicate pass neither starts the child again nor wakes the parent a second time.
    assert _orchestrator_messages(harness) == Counter({run_id: 2, child.id: 1})
    step_url = harness.queues["step"].url
    assert len([m for m in harness.recorder.delivered() if m.queue_url == step_url]) == 1
    _assert_queues_empty(harness)


def test_a_failed_child_raises_child_failed_in_the_parent(harness: Harness) -> None:
    run_id = harness.service.start("kids_checkout", 30)

    harness.pump(skip_time=False)

    run = harness.run(run_id)
    assert run.status is RunStatus.COMPLETED, run.error  # the parent caught it
    child = _only_child(harness, run_id)
    assert child.status is RunStatus.FAILED
    assert child.error is not None
    assert run.output["caught"] == "ChildFailed"
    assert run.output["step_key"] == "Charge"
    assert run.output["child_run_id"] == child.id
    assert run.output["error_type"] == child.error.type == "StepFailed"
    assert "card declined for 30" in run.output["error_message"]
    assert app.calls == Counter({"decline": 1})
    [step] = harness.runtime.store.get_steps(run_id)
    assert (step.key, step.status) == ("Charge", StepStatus.FAILED)
    assert _orchestrator_messages(harness)[run_id] == 2
    _assert_queues_empty(harness)


def test_cancelling_the_parent_through_the_api_cancels_its_child(
    harness: Harness, api: ApiClient
) -> None:
    run_id = harness.service.start("kids_hold_parent")
    harness.pump(skip_time=False)
    child = _only_child(harness, run_id)
    assert child.status is RunStatus.RUNNING  # asleep for a month
    assert harness.run(run_id).status is RunStatus.RUNNING

    answer = api.post(f"/runs/{run_id}/cancel", json_body={"reason": "order withdrawn"})
    assert answer.status == 200, answer.body
    assert answer.body["id"] == run_id
    harness.pump(skip_time=False)

    parent = harness.run(run_id)
    assert parent.status is RunStatus.CANCELLED
    assert parent.error is not None
    assert parent.error.message == "order withdrawn"
    child = harness.run(child.id)
    assert child.status is RunStatus.CANCELLED
    assert app.calls == Counter({"release:hold": 1})  # the child's cleanup ran, once
    steps = {s.key: s.status for s in harness.runtime.store.get_steps(child.id)}
    assert steps == {"Hold": StepStatus.CANCELLED, "Release": StepStatus.SUCCEEDED}
    assert api.get(f"/runs/{child.id}").body["status"] == "cancelled"
    _assert_queues_empty(harness)


def test_the_api_lists_a_runs_children_and_refuses_a_malformed_parent_id(
    harness: Harness, api: ApiClient, rows: Callable[[], tuple[int, int, int]]
) -> None:
    first = harness.service.start("kids_order", "one")
    other = harness.service.start("kids_order", "two")
    harness.pump(skip_time=False)
    child = _only_child(harness, first)

    listed = api.get("/runs", query={"parent_id": first})
    assert listed.status == 200, listed.body
    assert [(r["id"], r["parent_id"], r["workflow"]) for r in listed.body["runs"]] == [
        (child.id, first, "kids_provision")
    ]
    upper = api.get("/runs", query={"parent_id": first.upper()})
    assert [r["id"] for r in upper.body["runs"]] == [child.id]
    assert api.get("/runs", query={"parent_id": child.id}).body["runs"] == []
    everything = {r["id"]: r["parent_id"] for r in api.get("/runs").body["runs"]}
    assert len(everything) == 4
    assert (everything[first], everything[other]) == (None, None)
    assert api.get(f"/runs/{child.id}").body["parent_id"] == first

    # A client's mistake: 4xx naming the parameter (422, as for every bad list parameter),
    # never 5xx. The declared pattern refuses some; the service checks the ones it lets by.
    before = rows()
    for malformed, error_type in (
        ("not-a-run", "InvalidRequest"),
        (f"{first}x", "InvalidRequest"),
        ("'; DROP TABLE runs; --", "InvalidRequest"),
        ("-" * 36, "InvalidInput"),
        ("0" * 36, "InvalidInput"),
        ("0" * 33, "InvalidInput"),
        ("0000-" * 7 + "0", "InvalidInput"),
    ):
        answer = api.get("/runs", query={"parent_id": malformed})
        assert answer.status == 422, (malformed, answer.status, answer.body)
        error = answer.body["error"]
        assert error["type"] == error_type, (malformed, error)
        assert any("parent_id" in d["loc"] for d in error["details"]), (malformed, error)
    assert rows() == before  # nothing written, nothing sent


def test_a_child_past_its_timeout_is_cancelled_when_the_timer_fires(harness: Harness) -> None:
    began = harness.clock.now()
    run_id = harness.service.start("kids_impatient")
    harness.pump(skip_time=False)
    child = _only_child(harness, run_id)
    assert child.status is RunStatus.RUNNING
    # Both waits are past what SQS can delay: two one-time schedules, the parent's first.
    schedules = sorted(harness.schedules(), key=lambda s: s["ScheduleExpression"])
    assert [json.loads(s["Target"]["Input"])["run_id"] for s in schedules] == [run_id, child.id]

    harness.fire_schedule(schedules[0])  # Scheduler, one hour in
    harness.pump(skip_time=False)

    assert harness.clock.now() - began == timedelta(hours=1)
    run = harness.run(run_id)
    assert run.status is RunStatus.COMPLETED, run.error
    assert run.output == f"RunDeadlineExceeded {child.id}"
    assert harness.run(child.id).status is RunStatus.CANCELLED
    [step] = harness.runtime.store.get_steps(run_id)
    assert (step.key, step.status) == ("Slow", StepStatus.FAILED)

    # The child's own wake-up fires later: it finds the run ended and changes nothing.
    for schedule in harness.schedules():
        harness.fire_schedule(schedule)
    harness.pump(skip_time=False)
    assert harness.run(run_id).output == f"RunDeadlineExceeded {child.id}"
    assert harness.run(child.id).status is RunStatus.CANCELLED
    _assert_queues_empty(harness)

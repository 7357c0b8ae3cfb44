"""Child workflows in inline mode: outputs, failures, timeouts, cancellation, replay."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest
from pydantic import BaseModel

from lambda_flow import (
    ChildFailed,
    ChildRun,
    Flow,
    InvalidInput,
    RunStatus,
    StepFailed,
    WorkflowCancelled,
    WorkflowContext,
    WorkflowNotFound,
    WorkflowService,
)
from lambda_flow.testing import TimeSkippingClock


class Workspace(BaseModel):
    name: str
    region: str


def _steps(service: WorkflowService, run_id: str) -> dict[str, dict[str, Any]]:
    return {s["step_key"]: s for s in service.export_run(run_id)["steps"]}


def _children(service: WorkflowService, run_id: str) -> list[Any]:
    return service.list_runs(parent_id=run_id)


@pytest.fixture
def provisioned(flow: Flow) -> Counter[str]:
    """A ``provision`` workflow that creates a workspace, sleeps, and counts its effects."""
    effects: Counter[str] = Counter()

    @flow.workflow
    async def provision(wf: WorkflowContext, data: dict[str, str]) -> Workspace:
        def create() -> str:
            effects[data["name"]] += 1
            return data["name"]

        name = await wf.do("Create", create)
        await wf.sleep("Warm up", "1h")
        return Workspace(name=name, region="eu")

    return effects


def test_a_child_runs_as_a_run_of_its_own_and_its_output_comes_back_typed(
    flow: Flow, service: WorkflowService, provisioned: Counter[str]
) -> None:
    seen: list[Any] = []

    @flow.workflow
    async def order(wf: WorkflowContext, data: dict[str, str]) -> str:
        workspace = await wf.child("Provision", "provision", {"name": data["name"]})
        seen.append(workspace)
        await wf.sleep("Ship", "1d")  # a later pass replays the child step from its record
        return f"shipped to {workspace.name}"

    run = service.start_and_wait("order", {"name": "acme"})

    assert run.status is RunStatus.COMPLETED, run.error
    assert run.output == "shipped to acme"
    assert seen
    assert all(w == Workspace(name="acme", region="eu") for w in seen)
    assert provisioned == {"acme": 1}
    [child] = _children(service, run.id)
    assert child.workflow == "provision"
    assert child.parent_id == run.id
    assert child.status is RunStatus.COMPLETED
    assert child.output == {"name": "acme", "region": "eu"}
    assert [a.step_key for a in service.get_run_history(child.id)][:1] == ["Create"]
    step = _steps(service, run.id)["Provision"]
    assert (step["kind"], step["target"], step["status"]) == ("child", "provision", "succeeded")
    assert service.get_run(run.id).parent_id is None  # type: ignore[union-attr]


def test_a_child_by_reference_gives_its_type_and_its_id_is_stable(
    flow: Flow, service: WorkflowService, clock: TimeSkippingClock
) -> None:
    handles: list[str] = []

    @flow.workflow
    async def build(wf: WorkflowContext, data: int) -> int:
        return int(await wf.do("Square", lambda: data * data))

    @flow.workflow
    async def parent(wf: WorkflowContext) -> int:
        handle: ChildRun[int] = await wf.start_child("Build", build, 7)
        handles.append(handle.run_id)
        await wf.sleep("Wait", "1h")
        return await handle.result() + 1

    run = service.start_and_wait("parent")

    assert run.output == 50
    assert len(handles) >= 2
    assert set(handles) == {handles[0]}
    assert [c.id for c in _children(service, run.id)] == [handles[0]]


def test_a_failed_child_raises_child_failed_with_its_error(
    flow: Flow, service: WorkflowService
) -> None:
    caught: list[ChildFailed] = []

    @flow.workflow
    async def charge(wf: WorkflowContext) -> None:
        await wf.do("Card", lambda: 1 / 0)

    @flow.workflow
    async def checkout(wf: WorkflowContext) -> str:
        try:
            await wf.child("Charge", charge)
        except ChildFailed as failed:
            caught.append(failed)
            return "refunded"
        return "charged"

    run = service.start_and_wait("checkout")

    assert run.output == "refunded"
    failure = caught[0]
    assert isinstance(failure, StepFailed)
    [child] = _children(service, run.id)
    assert child.status is RunStatus.FAILED
    assert failure.child_run_id == child.id
    assert failure.step_key == "Charge"
    assert failure.error_type == "StepFailed"
    assert "ZeroDivisionError" in failure.error_message
    assert child.id in str(failure)


def test_an_uncaught_child_failure_fails_the_parent(flow: Flow, service: WorkflowService) -> None:
    @flow.workflow
    async def broken(wf: WorkflowContext) -> None:
        raise RuntimeError("no capacity")

    @flow.workflow
    async def parent(wf: WorkflowContext) -> None:
        await wf.child("Broken", broken)

    run = service.start_and_wait("parent")

    assert run.status is RunStatus.FAILED
    assert run.error is not None
    assert run.error.type == "ChildFailed"
    assert "no capacity" in run.error.message


def test_a_child_past_its_timeout_is_cancelled_and_raises_run_deadline_exceeded(
    flow: Flow, service: WorkflowService
) -> None:
    cleanups: Counter[str] = Counter()
    caught: list[ChildFailed] = []

    @flow.workflow
    async def slow(wf: WorkflowContext) -> str:
        try:
            await wf.sleep("Long", "2h")
        except WorkflowCancelled:
            await wf.do("Release", lambda: cleanups.update(["release"]))
            raise
        return "done"

    @flow.workflow
    async def parent(wf: WorkflowContext) -> str:
        try:
            return str(await wf.child("Slow", slow, timeout="1h"))
        except ChildFailed as failed:
            caught.append(failed)
            return failed.error_type

    run = service.start_and_wait("parent")

    assert run.status is RunStatus.COMPLETED, run.error
    assert run.output == "RunDeadlineExceeded"
    [child] = _children(service, run.id)
    assert child.status is RunStatus.CANCELLED
    assert cleanups == {"release": 1}  # the child's cleanup ran, once
    assert caught[0].child_run_id == child.id


def test_a_child_that_ends_in_time_is_not_cancelled(flow: Flow, service: WorkflowService) -> None:
    @flow.workflow
    async def quick(wf: WorkflowContext) -> str:
        await wf.sleep("Short", "10min")
        return "quick"

    @flow.workflow
    async def parent(wf: WorkflowContext) -> str:
        return str(await wf.child("Quick", quick, timeout="1h"))

    run = service.start_and_wait("parent")

    assert run.output == "quick"
    assert _children(service, run.id)[0].status is RunStatus.COMPLETED


def test_a_child_waiting_for_a_person_parks_its_parent_until_resumed(
    flow: Flow, service: WorkflowService
) -> None:
    @flow.workflow
    async def approval(wf: WorkflowContext) -> str:
        decision = await wf.suspend("Approve")
        return str(decision)

    @flow.workflow
    async def parent(wf: WorkflowContext) -> str:
        return "approved: " + str(await wf.child("Approval", approval))

    parent_id = service.start("parent")
    [child] = _children(service, parent_id)
    assert child.status is RunStatus.SUSPENDED
    assert service.get_run(parent_id).status is RunStatus.RUNNING  # type: ignore[union-attr]
    pending = service.get_run(parent_id).pending  # type: ignore[union-attr]
    assert [(p.kind, p.step_key) for p in pending] == [("child", "Approval")]

    service.resume(child.id, "yes")

    run = service.get_run(parent_id)
    assert run is not None
    assert run.status is RunStatus.COMPLETED, run
    assert run.output == "approved: yes"


def test_cancelling_the_parent_cancels_its_unfinished_children(
    flow: Flow, service: WorkflowService
) -> None:
    cleanups: list[str] = []

    @flow.workflow
    async def grandchild(wf: WorkflowContext) -> None:
        await wf.suspend("Forever")

    @flow.workflow
    async def child(wf: WorkflowContext) -> None:
        try:
            await wf.child("Grandchild", grandchild)
        finally:
            await wf.do("Child cleanup", lambda: cleanups.append("child"))

    @flow.workflow
    async def parent(wf: WorkflowContext) -> str:
        try:
            await wf.child("Child", child)
        except WorkflowCancelled:
            await wf.do("Parent cleanup", lambda: cleanups.append("parent"))
            raise
        return "done"

    parent_id = service.start("parent")
    [child_run] = _children(service, parent_id)
    [grand] = _children(service, child_run.id)
    assert grand.status is RunStatus.SUSPENDED

    run = service.cancel(parent_id, reason="customer left")

    assert run.status is RunStatus.CANCELLED
    statuses = [service.get_run(r).status for r in (child_run.id, grand.id)]  # type: ignore[union-attr]
    assert statuses == [RunStatus.CANCELLED, RunStatus.CANCELLED]
    assert sorted(cleanups) == ["child", "parent"]
    error = service.get_run(child_run.id).error  # type: ignore[union-attr]
    assert error is not None
    assert parent_id in error.message


def test_a_parent_that_ends_first_cancels_the_children_it_left(
    flow: Flow, service: WorkflowService
) -> None:
    @flow.workflow
    async def waiter(wf: WorkflowContext) -> None:
        await wf.suspend("Forever")

    @flow.workflow
    async def parent(wf: WorkflowContext) -> str:
        handle = await wf.start_child("Waiter", waiter)
        return handle.run_id  # never awaits the child

    run = service.start_and_wait("parent")

    assert run.status is RunStatus.COMPLETED
    child = service.get_run(run.output)
    assert child is not None
    assert child.status is RunStatus.CANCELLED
    assert child.error is not None
    assert "ended (completed)" in child.error.message


def test_children_started_together_run_and_a_scope_does_not_prefix_their_keys(
    flow: Flow, service: WorkflowService
) -> None:
    @flow.workflow
    async def part(wf: WorkflowContext, n: int) -> int:
        return int(await wf.do("Make", lambda: n * 10))

    async def both(wf: WorkflowContext) -> list[int]:
        first, second = await asyncio.gather(wf.child("A", part, 1), wf.child("B", part, 2))
        return [first, second]

    @flow.workflow
    async def parent(wf: WorkflowContext) -> list[int]:
        return list(await wf.scope("Parts", both))

    run = service.start_and_wait("parent")

    assert run.output == [10, 20]
    assert {"Parts/A", "Parts/B", "Parts"} <= set(_steps(service, run.id))
    for child in _children(service, run.id):
        assert list(_steps(service, child.id)) == ["Make"]  # not "Parts/A/Make"


def test_a_map_over_children(flow: Flow, service: WorkflowService) -> None:
    @flow.workflow
    async def invoice(wf: WorkflowContext, n: int) -> int:
        if n == 3:
            raise ValueError("declined")
        return int(await wf.do("Charge", lambda: n))

    async def item(wf: WorkflowContext, n: int, index: int) -> int:
        return int(await wf.child("Invoice", invoice, n))

    @flow.workflow
    async def billing(wf: WorkflowContext) -> dict[str, Any]:
        batch = await wf.map("Invoices", [1, 2, 3, 4], item, max_concurrency=2)
        return {"results": batch.results, "failed": [i for i, _ in batch.failed()]}

    run = service.start_and_wait("billing")

    assert run.output == {"results": [1, 2, None, 4], "failed": [2]}
    assert len(_children(service, run.id)) == 4


def test_bad_child_input_or_workflow_is_raised_in_the_body_and_records_nothing(
    flow: Flow, service: WorkflowService
) -> None:
    errors: list[str] = []

    @flow.workflow
    async def typed(wf: WorkflowContext, n: int) -> int:
        return n

    @flow.workflow
    async def parent(wf: WorkflowContext) -> int:
        for call in (
            lambda: wf.child("Typed", typed, "not a number"),
            lambda: wf.child("Missing", "no-such-workflow"),
            lambda: wf.child("Typed", len),  # type: ignore[arg-type]
            lambda: wf.child("Typed", typed, 1, timeout="-1s"),
        ):
            try:
                await call()
            except (InvalidInput, WorkflowNotFound, Exception) as exc:
                errors.append(type(exc).__name__)
        return int(await wf.child("Typed", typed, 5))

    run = service.start_and_wait("parent")

    assert run.output == 5
    assert errors == ["InvalidInput", "WorkflowNotFound", "LambdaFlowError", "InvalidOption"]
    assert list(_steps(service, run.id)) == ["Typed"]  # the refused calls took no key
    assert len(_children(service, run.id)) == 1


def test_replaying_a_changed_child_workflow_is_non_determinism(
    flow: Flow, service: WorkflowService
) -> None:
    @flow.workflow
    async def one(wf: WorkflowContext) -> int:
        return 1

    @flow.workflow
    async def two(wf: WorkflowContext) -> int:
        return 2

    version = {"child": "one"}

    @flow.workflow
    async def parent(wf: WorkflowContext) -> int:
        value = int(await wf.child("Child", version["child"]))
        await wf.suspend("Later")
        return value

    run_id = service.start("parent")
    version["child"] = "two"
    run = service.resume(run_id)

    assert run.status is RunStatus.FAILED
    assert run.error is not None
    assert run.error.type == "NonDeterminismError"
    assert "child" in run.error.message


def test_list_runs_by_parent_refuses_a_malformed_id(service: WorkflowService) -> None:
    with pytest.raises(InvalidInput, match="parent_id"):
        service.list_runs(parent_id="not-a-run")


def test_a_fork_past_a_child_step_reuses_that_child(flow: Flow, service: WorkflowService) -> None:
    handles: list[str] = []
    broken = {"ship": True}

    @flow.workflow
    async def build(wf: WorkflowContext) -> str:
        return "built"

    def ship() -> str:
        if broken["ship"]:
            raise RuntimeError("no truck")
        return "shipped"

    @flow.workflow
    async def parent(wf: WorkflowContext) -> str:
        handle = await wf.start_child("Build", build)
        handles.append(handle.run_id)
        return f"{await handle.result()}, {await wf.do('Ship', ship)}"

    failed = service.start_and_wait("parent")
    assert failed.status is RunStatus.FAILED
    broken["ship"] = False

    forked = service.get_run(service.fork(failed.id, from_step="Ship"))

    assert forked is not None
    assert forked.output == "built, shipped"
    assert set(handles) == {handles[0]}  # the fork's copied step names its source's child
    assert _children(service, forked.id) == []  # and started none of its own

"""Versioning with ``wf.patched`` / ``wf.deprecate_patch``: code changes while runs are in flight.

A run that reached a patch on new code records a marker (a ``patch`` step) and takes the new
path on every replay; a run recorded before the patch existed replays the old path (Temporal and
DBOS semantics).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from lambda_flow import (
    Flow,
    LambdaFlowError,
    NonDeterminismError,
    RunStatus,
    StepKind,
    WorkflowContext,
    WorkflowService,
)


@pytest.fixture
def shop(flow: Flow) -> tuple[dict[str, str], Counter[str]]:
    """An order workflow in three versions: v1 charges shipping, v2 patches it to free, v3 has
    deprecated the patch (only the new path is left)."""
    version = {"current": "v1"}
    effects: Counter[str] = Counter()

    def fee() -> int:
        effects["fee"] += 1
        return 5

    @flow.workflow
    async def order(wf: WorkflowContext) -> str:
        await wf.do("Reserve", lambda: "reserved")
        if version["current"] == "v1":
            shipping = await wf.do("Shipping fee", fee)
        elif version["current"] == "v2":
            if wf.patched("free-shipping"):
                shipping = 0
            else:
                shipping = await wf.do("Shipping fee", fee)
        else:
            wf.deprecate_patch("free-shipping")
            shipping = 0
        decision = await wf.suspend("Approve")
        return await wf.do("Ship", lambda: f"{decision} with shipping {shipping}")

    return version, effects


def _kinds(service: WorkflowService, run_id: str) -> list[tuple[str, str]]:
    return [(a.step_key, a.kind.value) for a in service.get_run_history(run_id)]


def test_a_run_recorded_before_the_patch_keeps_the_old_path(
    shop: Any, service: WorkflowService
) -> None:
    version, effects = shop
    old = service.start("order")  # v1: suspended after charging shipping
    version["current"] = "v2"

    run = service.resume(old, "approved")

    assert run.status is RunStatus.COMPLETED
    assert run.output == "approved with shipping 5"
    assert effects["fee"] == 1  # replayed, not run again
    assert "patch:free-shipping" not in [k for k, _ in _kinds(service, old)]


def test_a_run_on_new_code_records_the_marker_and_keeps_the_new_path(
    shop: Any, service: WorkflowService
) -> None:
    version, effects = shop
    version["current"] = "v2"
    new = service.start("order")
    assert _kinds(service, new) == [
        ("Reserve", "inline"), ("patch:free-shipping", "patch"), ("Approve", "suspend"),
    ]  # fmt: skip
    marker = next(s for s in service.store.get_steps(new) if s.kind is StepKind.PATCH)
    assert marker.position == 1

    run = service.resume(new, "approved")  # replays past the marker: True again

    assert run.output == "approved with shipping 0"
    assert effects["fee"] == 0
    assert [k for k, _ in _kinds(service, new)].count("patch:free-shipping") == 1


def test_a_run_that_reaches_the_patch_after_the_deploy_takes_the_new_path(
    flow: Flow, service: WorkflowService
) -> None:
    patched = {"on": False}

    @flow.workflow
    async def late(wf: WorkflowContext) -> str:
        await wf.suspend("Wait")
        if patched["on"] and wf.patched("p"):
            return "new"
        return "old"

    run_id = service.start("late")  # recorded by old code, parked before the patch point
    patched["on"] = True

    assert service.resume(run_id).output == "new"  # the history ended: live, marker recorded
    assert "patch:p" in [k for k, _ in _kinds(service, run_id)]


def test_removing_a_patch_without_deprecating_it_is_non_deterministic(
    shop: Any, service: WorkflowService
) -> None:
    version, _ = shop
    version["current"] = "v2"
    new = service.start("order")
    version["current"] = "v1"  # the patch was dropped, old branch kept: the marker is stranded

    run = service.resume(new, "approved")

    assert run.status is RunStatus.FAILED
    assert run.error is not None
    assert run.error.type == NonDeterminismError.__name__
    assert "patch:free-shipping" in run.error.message


def test_deprecate_patch_accepts_runs_with_and_without_the_marker(
    shop: Any, service: WorkflowService
) -> None:
    version, effects = shop
    version["current"] = "v2"
    marked = service.start("order")
    version["current"] = "v3"
    unmarked = service.start("order")  # v3 records nothing for the patch

    assert service.resume(marked, "ok").output == "ok with shipping 0"
    assert service.resume(unmarked, "ok").output == "ok with shipping 0"
    assert "patch:free-shipping" not in [k for k, _ in _kinds(service, unmarked)]
    assert effects["fee"] == 0


def test_deprecating_while_pre_patch_runs_remain_is_caught(
    shop: Any, service: WorkflowService
) -> None:
    version, _ = shop
    old = service.start("order")  # v1: recorded "Shipping fee"
    version["current"] = "v3"

    run = service.resume(old, "ok")

    assert run.status is RunStatus.FAILED
    assert run.error is not None
    assert run.error.type == NonDeterminismError.__name__
    assert "Shipping fee" in run.error.message


def test_patched_is_a_plain_call_answering_the_same_within_a_run(
    flow: Flow, service: WorkflowService
) -> None:
    @flow.workflow
    async def twice(wf: WorkflowContext) -> list[Any]:
        first = wf.patched("x")
        await wf.do("Step", lambda: 1)
        return [first, wf.patched("x")]

    run_id = service.start("twice")

    assert service.get_run(run_id).output == [True, True]  # type: ignore[union-attr]
    assert [k for k, _ in _kinds(service, run_id)] == ["patch:x", "Step"]


def test_a_patch_id_must_be_a_non_empty_string(flow: Flow, service: WorkflowService) -> None:
    @flow.workflow
    async def bad(wf: WorkflowContext) -> bool:
        return wf.patched("")

    run = service.get_run(service.start("bad"))

    assert run is not None
    assert run.status is RunStatus.FAILED
    assert run.error is not None
    assert run.error.type == LambdaFlowError.__name__
    assert service.get_run_history(run.id) == []


def test_patched_inside_a_scope_replays_the_old_path_of_a_pre_patch_run(
    flow: Flow, service: WorkflowService
) -> None:
    version = {"patched": False}

    async def inner(wf: WorkflowContext) -> str:
        if version["patched"] and wf.patched("p"):
            result = "new"
        else:
            result = await wf.do("Old", lambda: "old")
        await wf.suspend("Wait")
        return result

    @flow.workflow
    async def scoped(wf: WorkflowContext) -> list[str]:
        return [await wf.scope("S", inner), await wf.scope("T", inner)]

    old = service.start("scoped")  # S/Old recorded, parked at S/Wait
    version["patched"] = True

    service.resume(old)  # S replays the old path; T starts live and takes the new one
    run = service.resume(old)

    assert run.output == ["old", "new"]
    keys = [k for k, _ in _kinds(service, old)]
    assert "S/patch:p" not in keys
    assert "T/patch:p" in keys

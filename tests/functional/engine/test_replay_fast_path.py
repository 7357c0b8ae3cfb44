"""The replay fast path of ``wf.do`` (issue 14, item 6): a recorded success returns from the
synchronous half (``OrchestrationPass.replay_do``) with its key taken as ``_key`` takes it.

Each test records steps in a first pass, parks at a suspension, then resumes so a second pass
replays them through the fast path: the answers must be the ones the first pass stored, the
keys the same, and divergence still fails the run (invariants 1 and 3).
"""

from __future__ import annotations

import functools
from typing import Any

import pytest

from lambda_flow import (
    Flow,
    InvalidOption,
    RunStatus,
    StepStatus,
    WorkflowContext,
    WorkflowService,
)
from lambda_flow.store.postgres import _steps_of


def _ident(value: Any) -> Any:
    return value


def test_a_replay_returns_the_stored_results_under_the_same_keys(
    flow: Flow, service: WorkflowService
) -> None:
    calls: list[str] = []

    @flow.function
    def double(x: int) -> int:
        calls.append("double")
        return 2 * x

    def counted(value: int) -> int:
        calls.append("inline")
        return value

    @flow.workflow
    async def mixed(wf: WorkflowContext) -> list[Any]:
        out = [await wf.do("x", functools.partial(counted, 1))]
        out.append(await wf.do("x#1", lambda: "literal"))  # a literal key next to a repeat
        out.append(await wf.do("x", functools.partial(counted, 2)))  # takes x#2
        out.append(await wf.do("double", double, 21))  # an RPC step, registered function
        out.append(await wf.do("typed", _typed))  # an annotated inline step: its codec
        out.append(await wf.do("x", lambda: 3, retries=2))  # options: checked, then replayed
        await wf.suspend("hold")
        return out

    run_id = service.start("mixed")
    assert service.get_run(run_id).status is RunStatus.SUSPENDED  # type: ignore[union-attr]
    keys = [s.key for s in service.store.get_steps(run_id)]
    assert keys == ["x", "x#1", "x#2", "double", "typed", "x#3", "hold"]
    recorded_calls = list(calls)

    service.resume(run_id)

    run = service.get_run(run_id)
    assert run is not None
    assert run.status is RunStatus.COMPLETED
    assert run.output == [1, "literal", 2, 42, {"a": 1}, 3]
    assert calls == recorded_calls  # nothing ran again (invariant 1)
    assert [s.key for s in service.store.get_steps(run_id)] == keys


def _typed() -> dict[str, int]:
    return {"a": 1}


def test_a_replay_inside_a_scope_keys_steps_by_the_scope(
    flow: Flow, service: WorkflowService
) -> None:
    @flow.workflow
    async def scoped(wf: WorkflowContext) -> list[int]:
        async def inner(sw: WorkflowContext) -> list[int]:
            out = [await sw.do("s", lambda: 1), await sw.do("s", lambda: 2)]
            await sw.suspend("hold")  # the replay goes through the scope's steps again
            return out

        out = await wf.scope("group", inner)
        out.append(await wf.do("s", lambda: 3))
        return out

    run_id = service.start("scoped")
    service.resume(run_id)

    run = service.get_run(run_id)
    assert run is not None
    assert run.status is RunStatus.COMPLETED
    assert run.output == [1, 2, 3]
    assert [s.key for s in service.store.get_steps(run_id)] == [
        "group/s", "group/s#1", "group/hold", "group", "s",
    ]  # fmt: skip


def test_a_replay_asking_for_another_step_kind_fails_the_run(
    flow: Flow, service: WorkflowService
) -> None:
    first = True

    @flow.function
    def remote() -> int:
        return 1

    @flow.workflow
    async def changing(wf: WorkflowContext) -> int:
        if first:
            value = await wf.do("step", lambda: 1)
        else:
            value = await wf.do("step", "remote")  # was an inline step: non-determinism
        await wf.suspend("hold")
        return value

    run_id = service.start("changing")
    first = False
    service.resume(run_id)

    run = service.get_run(run_id)
    assert run is not None
    assert run.status is RunStatus.FAILED
    assert run.error is not None
    assert run.error.type == "NonDeterminismError"


@pytest.mark.parametrize("options", [{"timeout": 0}, {"retries": 1, "retry": object()}])
def test_bad_options_are_refused_on_a_replayed_step_too(
    flow: Flow, service: WorkflowService, options: dict[str, Any]
) -> None:
    replaying = False

    @flow.workflow
    async def opts(wf: WorkflowContext) -> int:
        if replaying:
            value = await wf.do("step", lambda: 1, **options)
        else:
            value = await wf.do("step", lambda: 1)
        await wf.suspend("hold")
        return int(value)

    run_id = service.start("opts")
    replaying = True
    service.resume(run_id)

    run = service.get_run(run_id)
    assert run is not None
    assert run.status is RunStatus.FAILED
    assert run.error is not None
    assert run.error.type == InvalidOption.__name__


def test_steps_of_builds_records_and_parses_only_what_is_there() -> None:
    rows = [
        ["a", "a", 0, "inline", None, "succeeded", 1, 5, None, None, None, None],
        [
            "b", "b", 1, "sleep", None, "scheduled", 1, None,
            {"type": "X", "message": "m"}, "2026-01-02T03:04:05+00:00", None, None,
        ],
    ]  # fmt: skip
    steps = _steps_of(rows)
    assert list(steps) == ["a", "b"]
    assert steps["a"].result == 5
    assert steps["a"].error is None
    assert steps["a"].wake_at is None
    assert steps["b"].status is StepStatus.SCHEDULED
    assert steps["b"].error is not None
    assert steps["b"].error.type == "X"
    assert steps["b"].wake_at is not None
    assert steps["b"].wake_at.year == 2026

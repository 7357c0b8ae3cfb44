"""The invariants that make runs durable: crashes, leases, wake-ups, duplicates, divergence."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import psycopg
import pytest

from lambda_flow import (
    Flow,
    InvalidRunState,
    PostgresStore,
    RunStatus,
    RunTimedOut,
    StepStatus,
    WorkflowContext,
    WorkflowService,
)
from lambda_flow.testing import CrashBeforeWrite, SimulatedCrash, TimeSkippingClock


def _effects(counter: Counter[str], name: str) -> str:
    counter[name] += 1
    return name


# -- invariant 1: a committed step never runs again ------------------------------------------
def test_committed_steps_are_replayed_not_rerun(flow: Flow, service: WorkflowService) -> None:
    effects: Counter[str] = Counter()

    @flow.workflow
    async def three_passes(wf: WorkflowContext) -> list[str]:
        a = await wf.do("a", lambda: _effects(effects, "a"))
        await wf.sleep("nap 1", "1min")
        b = await wf.do("b", lambda: _effects(effects, "b"))
        await wf.sleep("nap 2", "1min")
        return [a, b]

    run_id = service.start("three_passes")

    assert service.get_run(run_id).output == ["a", "b"]  # type: ignore[union-attr]
    assert effects == {"a": 1, "b": 1}  # three passes, yet each step ran once


def test_crash_between_side_effect_and_commit_reruns_only_that_step(
    flow: Flow, store: PostgresStore, clock: TimeSkippingClock
) -> None:
    effects: Counter[str] = Counter()

    @flow.workflow
    async def payment(wf: WorkflowContext) -> str:
        await wf.do("reserve", lambda: _effects(effects, "reserve"))
        await wf.do("charge", lambda: _effects(effects, "charge"))
        await wf.do("receipt", lambda: _effects(effects, "receipt"))
        return "paid"

    crashing = CrashBeforeWrite(
        store, when=lambda w: w.key == "charge" and w.status is StepStatus.SUCCEEDED
    )
    doomed = WorkflowService(flow, store=crashing, clock=clock)  # type: ignore[arg-type]
    with pytest.raises(SimulatedCrash):
        doomed.start("payment")
    run_id = store.list_runs()[0].id
    assert effects == {"reserve": 1, "charge": 1}
    assert [h.step_name for h in store.get_history(run_id)] == ["reserve"]

    # A new process: the dead one's lease must run out before anyone may take the run over.
    restarted = WorkflowService(flow, store=store, clock=clock)
    assert asyncio.run(restarted.run_pass(run_id)) is None
    clock.advance("31s")
    run = restarted.resume(run_id)

    assert run.status is RunStatus.COMPLETED
    assert effects == {"reserve": 1, "charge": 2, "receipt": 1}
    assert [h.step_name for h in restarted.get_run_history(run_id)] == [
        "reserve",
        "charge",
        "receipt",
    ]


# -- invariant 2: a result is durable before the next step starts ----------------------------
def test_step_result_is_committed_before_the_next_step_starts(
    flow: Flow, service: WorkflowService, database_url: str, schema: str
) -> None:
    seen_by_second_step: list[Any] = []

    def look_from_another_connection() -> None:
        with psycopg.connect(database_url, autocommit=True) as conn:
            seen_by_second_step.extend(
                conn.execute(
                    f'SELECT step_key, status, result FROM "{schema}".steps ORDER BY position'
                ).fetchall()
            )

    @flow.workflow
    async def two(wf: WorkflowContext) -> None:
        await wf.do("first", lambda: {"id": 7})
        await wf.do("second", look_from_another_connection)

    service.start("two")

    assert seen_by_second_step == [("first", "succeeded", {"id": 7})]


# -- invariant 4: one pass at a time, and a pass that lost its lease cannot write -------------
def test_a_second_pass_is_refused_while_one_holds_the_lease(flow: Flow, make_service: Any) -> None:
    service = make_service()
    rival = make_service()
    rival_outcomes: list[Any] = []

    async def try_rival_pass() -> None:
        rival_outcomes.append(await rival.run_pass(service.list_runs()[0].id))

    @flow.workflow
    async def busy(wf: WorkflowContext) -> str:
        await wf.do("while leased", try_rival_pass)
        return "done"

    run_id = service.start("busy")

    assert rival_outcomes == [None]
    assert service.get_run(run_id).status is RunStatus.COMPLETED  # type: ignore[union-attr]


def test_a_pass_whose_lease_expired_and_was_taken_cannot_write(
    flow: Flow, service: WorkflowService, store: PostgresStore, clock: TimeSkippingClock
) -> None:
    effects: Counter[str] = Counter()

    def slow_step() -> str:
        # The pass stalls past its lease; another process takes the run over meanwhile.
        clock.advance("31s")
        run_id = store.list_runs()[0].id
        now = clock.now()
        taken = store.acquire(run_id, "someone-else", now, clock.advance("30s"))
        assert taken is not None
        effects["slow"] += 1
        return "late"

    @flow.workflow
    async def stalls(wf: WorkflowContext) -> None:
        await wf.do("slow", slow_step)
        await wf.do("next", lambda: _effects(effects, "next"))

    run_id = service.start("stalls")

    assert effects == {"slow": 1}  # the stale pass stopped at its refused write
    assert store.get_history(run_id) == []
    run = store.get_run(run_id)
    assert run is not None
    assert run.status is RunStatus.RUNNING


def test_cancel_during_a_step_reaches_the_body_at_its_next_call(
    flow: Flow, service: WorkflowService
) -> None:
    """A cancellation asked for while a pass runs a step is not lost: the pass learns of it when
    it commits the step, and the body's next call raises WorkflowCancelled (nothing after it
    runs)."""
    effects: Counter[str] = Counter()

    def cancelled_meanwhile() -> None:
        service.cancel(service.list_runs()[0].id, reason="operator")

    @flow.workflow
    async def doomed(wf: WorkflowContext) -> None:
        await wf.do("cancel me", cancelled_meanwhile)
        await wf.do("after", lambda: _effects(effects, "after"))

    run_id = service.start("doomed")

    run = service.get_run(run_id)
    assert run is not None
    assert run.status is RunStatus.CANCELLED
    assert run.error is not None
    assert run.error.message == "operator"
    assert effects == {}
    assert [(a.step_key, a.status) for a in service.get_run_history(run_id)] == [
        ("cancel me", StepStatus.SUCCEEDED)
    ]


# -- invariant 5: no lost wake-ups -------------------------------------------------------------
def test_a_timer_due_while_a_sibling_runs_wakes_its_branch_in_the_same_pass(
    flow: Flow, service: WorkflowService
) -> None:
    woke = asyncio.Event()

    async def wait_for_other_branch() -> str:
        # Completes only if the sleeping branch is woken while this step is still running.
        await asyncio.wait_for(woke.wait(), timeout=5)
        return "saw the wake-up"

    async def sleeper(wf: WorkflowContext) -> str:
        await wf.sleep("short nap", "1s")
        return str(await wf.do("after nap", lambda: woke.set() or "woke"))

    @flow.workflow
    async def race(wf: WorkflowContext) -> list[str]:
        return list(await asyncio.gather(sleeper(wf), wf.do("waiter", wait_for_other_branch)))

    run_id = service.start("race")

    run = service.get_run(run_id)
    assert run is not None
    assert run.status is RunStatus.COMPLETED, run.error
    assert run.output == ["woke", "saw the wake-up"]


# -- invariant 7: duplicates change nothing ----------------------------------------------------
def test_duplicate_passes_and_resumes_after_the_end_change_nothing(
    flow: Flow, service: WorkflowService
) -> None:
    effects: Counter[str] = Counter()

    @flow.workflow
    async def once(wf: WorkflowContext) -> str:
        return str(await wf.do("effect", lambda: _effects(effects, "effect")))

    run_id = service.start("once")
    before = service.get_run(run_id)
    history = service.get_run_history(run_id)

    assert asyncio.run(service.run_pass(run_id)) is None
    with pytest.raises(InvalidRunState):
        service.resume(run_id)

    assert service.get_run(run_id) == before
    assert service.get_run_history(run_id) == history
    assert effects == {"effect": 1}


def test_resume_drives_a_running_run_left_by_a_stopped_process(
    flow: Flow, make_service: Any
) -> None:
    effects: Counter[str] = Counter()

    @flow.workflow
    async def long_nap(wf: WorkflowContext) -> str:
        await wf.do("before", lambda: _effects(effects, "before"))
        await wf.sleep("nap", "2d")
        await wf.do("after", lambda: _effects(effects, "after"))
        return "rested"

    first = make_service()
    with pytest.raises(RunTimedOut):
        first.run_to_completion("long_nap", timeout="1d")
    run_id = first.list_runs()[0].id

    second = make_service()  # the first process is gone; its timer must not be lost
    assert second.resume(run_id).status is RunStatus.COMPLETED
    assert effects == {"before": 1, "after": 1}


# -- invariant 9: all siblings in one pass, a retrying sibling doesn't fail the run -----------
def test_gather_replays_in_any_completion_order_without_false_divergence(
    flow: Flow, service: WorkflowService
) -> None:
    effects: Counter[str] = Counter()

    async def branch(wf: WorkflowContext, name: str, nap: str) -> str:
        await wf.do(f"{name} 1", lambda: _effects(effects, f"{name} 1"))
        await wf.sleep(f"{name} nap", nap)
        return str(await wf.do(f"{name} 2", lambda: _effects(effects, f"{name} 2")))

    @flow.workflow
    async def fan(wf: WorkflowContext) -> list[str]:
        return list(
            await asyncio.gather(
                branch(wf, "a", "3s"), branch(wf, "b", "1s"), branch(wf, "c", "2s")
            )
        )

    run_id = service.start("fan")

    run = service.get_run(run_id)
    assert run is not None
    assert run.status is RunStatus.COMPLETED, run.error
    assert run.output == ["a 2", "b 2", "c 2"]
    assert all(count == 1 for count in effects.values())
    assert len(effects) == 6

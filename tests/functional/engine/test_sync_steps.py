"""Sync step code never blocks the event loop (issue 11): it runs in a worker thread, so the
other gathered branches of a pass go on while it blocks."""

from __future__ import annotations

import asyncio
import functools
import threading

import pytest

from lambda_flow import Flow, RunStatus, StepInfo, WorkflowContext, WorkflowService, current_step

WAIT = 10.0
"""How long a blocked step waits for its sibling before giving up (only reached on failure)."""


@pytest.mark.parametrize("blocked", ["registered", "inline"])
def test_a_blocking_sync_step_lets_a_gathered_sibling_run(
    flow: Flow, service: WorkflowService, blocked: str
) -> None:
    """One branch's sync step waits for an event only the other branch's step sets.

    Run on the event loop, the first step would hold it: the second could never start, and the
    wait would run out (a deadlock but for the timeout).
    """
    released = threading.Event()
    seen: list[StepInfo | None] = []

    def wait_for_sibling() -> bool:
        seen.append(current_step())  # the step's context follows it into the thread
        return released.wait(WAIT)

    def release() -> str:
        released.set()
        return "released"

    flow.function(wait_for_sibling)
    flow.function(release)

    @flow.workflow
    async def pair(wf: WorkflowContext) -> list[object]:
        # By name: an RPC step (FunctionDef.invoke); wrapped in a partial: an inline step.
        if blocked == "registered":
            first = wf.do("Wait", "wait_for_sibling")
            second = wf.do("Release", functools.partial(release))
        else:
            first = wf.do("Wait", functools.partial(wait_for_sibling))
            second = wf.do("Release", "release")
        return list(await asyncio.gather(first, second))

    run_id = service.start("pair")

    run = service.get_run(run_id)
    assert run is not None
    assert (run.status, run.output) == (RunStatus.COMPLETED, [True, "released"])
    [info] = seen
    assert info is not None
    assert (info.run_id, info.step_id) == (run_id, "Wait")


def test_async_steps_still_run_on_the_loop(flow: Flow, service: WorkflowService) -> None:
    loop_threads: list[int] = []

    async def on_loop() -> bool:
        loop_threads.append(threading.get_ident())
        return current_step() is not None

    @flow.workflow
    async def simple(wf: WorkflowContext) -> bool:
        loop_threads.append(threading.get_ident())
        return await wf.do("Async", on_loop)

    run_id = service.start("simple")

    run = service.get_run(run_id)
    assert run is not None
    assert run.output is True
    assert len(set(loop_threads)) == 1  # the body and the async step: the same thread

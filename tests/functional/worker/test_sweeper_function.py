"""The sweeper function's tick takes the sweep's age options (the chaos suite scales them down)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from lambda_flow import Flow, RunStatus, WorkflowContext
from lambda_flow.aws.workers import sweeper
from lambda_flow.testing import TimeSkippingClock
from lambda_flow.transport.local import LocalQueue


def test_a_tick_with_shorter_ages_redrives_sooner(
    flow: Flow, remote: Any, queue: LocalQueue, clock: TimeSkippingClock
) -> None:
    service, _ = remote

    @flow.workflow
    async def idle(wf: WorkflowContext) -> str:
        return "done"

    run_id = service.start("idle")
    queue.messages.clear()  # the start's message is lost
    tick = sweeper(service)
    clock.advance("10s")

    assert tick().runs == []  # by default a run is presumed lost after 2 minutes
    assert tick(unsent_after=timedelta(seconds=5)).runs == [run_id]
    assert service.get_run(run_id).status is RunStatus.RUNNING  # type: ignore[union-attr]

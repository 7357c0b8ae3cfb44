"""An app for ``lambda-flow dev`` tests: ten gathered RPC steps that only finish together.

Each step waits on one barrier of ten, so the run completes only if the dev runtime runs the
ten step jobs at once; run one after another, the first wait runs out and the run fails.
"""

from __future__ import annotations

import asyncio
import threading

from lambda_flow import Flow, WorkflowContext

STEPS = 10
BARRIER_TIMEOUT = 20.0
"""Seconds a step waits for the other nine (reached only when they never come)."""

flow = Flow()
_barrier = threading.Barrier(STEPS)


@flow.function
def meet(index: int) -> int:
    """Wait until all ten steps are running, then return ``index``."""
    _barrier.wait(BARRIER_TIMEOUT)
    return index


@flow.workflow
async def all_at_once(wf: WorkflowContext) -> list[int]:
    """Gather ten ``meet`` steps."""
    return list(await asyncio.gather(*(wf.do(f"meet {i}", meet, i) for i in range(STEPS))))

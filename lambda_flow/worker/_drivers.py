"""The two ways runs are driven: inline (in the calling process) and remote (through a queue).

Every difference between the modes lives here, behind :class:`~lambda_flow.engine.Driver`;
:func:`driver_for` is the one place that looks at whether a queue was given.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ..core import RunStatus, run_sync
from ..engine import Driver

if TYPE_CHECKING:
    from ..core import Run
    from ..engine import Engine, OrchestrationPass, StepSpec
    from ..store.base import RunOutcome, StepRecord
    from ..transport.base import JobQueue, StepJob


class InlineDriver(Driver):
    """Everything in the calling process.

    ``start()`` drives the run until it completes, fails, is cancelled or suspends; RPC steps run
    inside the pass; sleeps wait on the engine's clock.
    """

    async def rpc_step(
        self, orchestration: OrchestrationPass, spec: StepSpec, record: StepRecord
    ) -> Any:
        return await orchestration.run_attempts(spec, record)

    def send_steps(self, jobs: Sequence[StepJob]) -> None:
        raise RuntimeError("inline mode sends no step jobs")  # pragma: no cover - never queued

    def after_pass(self, engine: Engine, run_id: str, outcome: RunOutcome) -> None:
        """Nothing to arrange: :meth:`drive` waits on the clock itself."""

    def hand_on(self, run_id: str) -> None:
        """Nothing to do: whoever holds the lease carries the run on."""

    def dispatch(self, engine: Engine, run_id: str) -> None:
        run_sync(self.drive(engine, run_id, None, stop_outside=True))

    async def start_child(
        self,
        orchestration: OrchestrationPass,
        child_id: str,
        until: datetime | None,
        *,
        new: bool,
    ) -> Run | None:
        engine = orchestration.engine
        await self.drive(engine, child_id, until, stop_outside=True)
        return engine.store.get_run(child_id)

    def wait(self, engine: Engine, run_id: str, *, deadline: datetime, poll: timedelta) -> None:
        """Drive the run here until it rests or its next timer is past ``deadline``.

        As :meth:`start_and_wait` does: nobody else drives a run in inline mode.
        """
        run_sync(self.drive(engine, run_id, deadline))

    async def wake(self, engine: Engine, run_ids: Sequence[str]) -> None:
        # A parent whose pass is under way (it drove this child) is not taken again here:
        # its lease is held, and that pass reads the child's end itself.
        for run_id in run_ids:
            await self.drive(engine, run_id, None, stop_outside=True)

    def start_and_wait(
        self,
        engine: Engine,
        run_id: str,
        *,
        created: bool,
        deadline: datetime | None,
        poll: timedelta,
    ) -> None:
        if created:
            run_sync(self.drive(engine, run_id, deadline))

    @staticmethod
    async def drive(
        engine: Engine, run_id: str, deadline: datetime | None, *, stop_outside: bool = False
    ) -> None:
        """Run passes until the run finishes, parks, or its next timer is past ``deadline``.

        With ``stop_outside`` (``start``, ``resume``, a callback's completion) it also stops
        where the run waits for a callback: its completion drives the run on, and waiting on
        the clock for the callback's deadline would hold the caller (``start_and_wait`` does
        wait: it drives through timeouts up to its own deadline).
        """
        while True:
            outcome = await engine.run_pass(run_id)
            if outcome is None or outcome.status is not RunStatus.RUNNING:
                return
            if outcome.changed_meanwhile:
                continue  # a callback was completed while the pass ran: no lost wake-up
            if stop_outside and outcome.waits_outside:
                return
            if outcome.wake_at is None or (deadline is not None and outcome.wake_at > deadline):
                return
            await engine.clock.sleep_until(outcome.wake_at)


class RemoteDriver(Driver):
    """Work moves through ``queue``: passes and RPC step attempts are messages.

    Stateless consumers (:class:`~lambda_flow.worker.Dispatcher`) handle them; timers are delayed
    messages or schedules.

    Args:
        queue: the job queue (SQS on AWS, local queues in ``lambda-flow dev`` and tests).
    """

    chains_batches = True

    def __init__(self, queue: JobQueue) -> None:
        self.queue: JobQueue = queue

    async def rpc_step(
        self, orchestration: OrchestrationPass, spec: StepSpec, record: StepRecord
    ) -> Any:
        return await orchestration.schedule_job(spec, record)

    def send_steps(self, jobs: Sequence[StepJob]) -> None:
        self.queue.enqueue_steps(jobs)

    def after_pass(self, engine: Engine, run_id: str, outcome: RunOutcome) -> None:
        if outcome.wake_at is not None:
            self.queue.wake_at(run_id, outcome.wake_at, engine.clock.now())

    def hand_on(self, run_id: str) -> None:
        self.queue.enqueue_run(run_id)

    async def start_child(
        self,
        orchestration: OrchestrationPass,
        child_id: str,
        until: datetime | None,
        *,
        new: bool,
    ) -> Run | None:
        if new:  # a child lost before its message went out is re-driven by the sweeper
            self.queue.enqueue_run(child_id)
        return None

    async def wake(self, engine: Engine, run_ids: Sequence[str]) -> None:
        for run_id in run_ids:
            self.queue.enqueue_run(run_id)

    def dispatch(self, engine: Engine, run_id: str) -> None:
        self.queue.enqueue_run(run_id)

    def start_and_wait(
        self,
        engine: Engine,
        run_id: str,
        *,
        created: bool,
        deadline: datetime | None,
        poll: timedelta,
    ) -> None:
        if created:
            self.queue.enqueue_run(run_id)
        run_sync(self.settled(engine, run_id, deadline, poll))


def driver_for(queue: JobQueue | None) -> Driver:
    """Remote mode with a queue, inline mode without one."""
    return InlineDriver() if queue is None else RemoteDriver(queue)

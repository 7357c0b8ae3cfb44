"""Where the work of runs happens: the one interface behind inline and remote mode.

Inline mode runs everything in the calling process: ``start()`` drives the run until it rests,
RPC steps run inside the pass, sleeps wait on the clock. Remote mode moves work through a queue:
``start()`` queues a pass, RPC steps become jobs for step workers, timers become delayed
messages or schedules. The engine and the service ask their :class:`Driver`, never a queue,
which of the two they are in; :mod:`lambda_flow.worker` implements both.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ..core import RunStatus, run_sync

if TYPE_CHECKING:
    from ..core import Run
    from ..store.base import RunOutcome, StepRecord
    from ..transport.base import JobQueue, StepJob
    from ._engine import Engine
    from ._replay import OrchestrationPass, StepSpec


class Driver(abc.ABC):
    """Drives runs in one mode; see :mod:`lambda_flow.worker` for the two implementations."""

    queue: JobQueue | None = None
    """The queue work moves through (remote mode), else None."""
    chains_batches: bool = False
    """Workers start a map's items themselves (remote mode): see ``engine/_batch.py``."""

    @abc.abstractmethod
    async def rpc_step(
        self, orchestration: OrchestrationPass, spec: StepSpec, record: StepRecord
    ) -> Any:
        """Carry out a pass's RPC step: run its attempts here, or schedule the next one as a job.

        A job's result comes from a worker; the run waits for it across passes.
        """

    @abc.abstractmethod
    def send_steps(self, jobs: Sequence[StepJob]) -> None:
        """Send step jobs whose rows the pass has just committed (the commit is the outbox)."""

    @abc.abstractmethod
    def after_pass(self, engine: Engine, run_id: str, outcome: RunOutcome) -> None:
        """A pass left the run running and waiting for ``outcome.wake_at``.

        Remote mode arranges the wake-up; inline mode does nothing (it waits on the clock itself).
        """

    @abc.abstractmethod
    def hand_on(self, run_id: str) -> None:
        """A pass of ``run_id`` must follow, and this process could not take the run's lease."""

    @abc.abstractmethod
    async def start_child(
        self,
        orchestration: OrchestrationPass,
        child_id: str,
        until: datetime | None,
        *,
        new: bool,
    ) -> Run | None:
        """A pass has committed a child run (``new``), or found one still running on replay.

        Inline mode drives the child here until it rests (stopping at a timer past ``until``,
        the parent's timeout) and returns it as it then is; remote mode queues the new child's
        first pass and returns None.
        """

    @abc.abstractmethod
    async def wake(self, engine: Engine, run_ids: Sequence[str]) -> None:
        """Runs that another run's end gave work to (its parent, its cancelled children).

        Inline mode drives each here until it rests; remote mode queues one pass each.
        """

    @abc.abstractmethod
    def dispatch(self, engine: Engine, run_id: str) -> None:
        """A run was started, resumed or otherwise given work: drive it or queue a pass.

        Inline mode drives it here until it rests; remote mode queues a pass.
        """

    @abc.abstractmethod
    def start_and_wait(
        self,
        engine: Engine,
        run_id: str,
        *,
        created: bool,
        deadline: datetime | None,
        poll: timedelta,
    ) -> None:
        """Drive or queue a just-created run, then return once it rests or ``deadline`` passes.

        Inline mode drives it, stopping at the first timer past the deadline; remote mode queues
        it and polls.
        """

    def wait(self, engine: Engine, run_id: str, *, deadline: datetime, poll: timedelta) -> None:
        """Return once the run has left ``running`` or ``deadline`` has passed.

        Someone else drives the run (remote mode: the workers): look at it every ``poll`` on the
        engine's clock. Inline mode drives it here instead (``InlineDriver.wait``).
        """
        run_sync(self.settled(engine, run_id, deadline, poll))

    @staticmethod
    async def settled(
        engine: Engine, run_id: str, deadline: datetime | None, poll: timedelta
    ) -> None:
        """Return once the run has left ``running`` or ``deadline`` (None: none) has passed.

        It is looked at every ``poll`` on the engine's clock.
        """
        clock = engine.clock
        while True:
            run = engine.store.get_run(run_id)
            if run is None or run.status is not RunStatus.RUNNING:
                return
            now = clock.now()
            if deadline is not None and now >= deadline:
                return
            await clock.sleep_until(min(now + poll, deadline) if deadline else now + poll)

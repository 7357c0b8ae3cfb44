"""The engine: what passes share (application, store, clock, driver), and running them.

A pass takes the run's lease, loads its steps in one query and replays the body
(:class:`~lambda_flow.engine.OrchestrationPass`); :meth:`Engine.continue_run` runs passes until
the run rests, which is all a queue consumer or a step worker needs to carry a run on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

from ..core import ErrorInfo, RunStatus, WorkflowNotFound
from ..store.base import LeasedRun, RunOutcome, StepClaim
from ._observe import LoggingObserver, Observer
from ._replay import OrchestrationPass

if TYPE_CHECKING:
    from ..core import Clock
    from ..store.base import Store
    from ._driver import Driver
    from ._flow import Flow


@dataclass(slots=True)
class Chain:
    """A step worker's offer to run the run's next RPC step itself, in the same invocation.

    When a pass ends having scheduled exactly one RPC step (a sequential workflow), it claims
    that step for this worker in its last statement instead of sending a job
    (:attr:`claimed`); the worker runs it and completes it, which takes the run's lease for the
    next pass. Fan-out (two or more jobs) still goes through the queue so siblings run in
    parallel. A worker that dies mid-chain leaves a claim that expires: the sweeper sends the
    step's job again and its new worker records the attempt as interrupted (invariant 10).
    """

    step_lease: timedelta
    """How long the worker's claim on the chained step lasts (its step timeout)."""
    claimed: StepClaim | None = None
    """The step the pass claimed for this worker, if it did."""


@dataclass(frozen=True, slots=True)
class Engine:
    """What passes share: the application, its store, its clock and its driver."""

    flow: Flow
    store: Store
    clock: Clock
    owner: str
    """Who holds leases taken by this engine (host and process), for operators."""
    driver: Driver
    """Where work runs: in this process (inline mode) or on workers fed by a queue (remote)."""
    lease_ttl: timedelta = timedelta(seconds=30)
    """How long a pass's lease lasts without a write or heartbeat."""
    observer: Observer = field(default_factory=LoggingObserver)
    """Told about every attempt and every finished run (logs, traces, metrics)."""
    replay_only: bool = False
    """Check a recorded history against the code: run nothing, stop where the history ends."""

    async def run_pass(
        self, run_id: str, *, leased: LeasedRun | None = None, chain: Chain | None = None
    ) -> RunOutcome | None:
        """One orchestration pass of ``run_id``, if its lease can be taken.

        ``leased``: the run, already leased by this engine (a worker's completion took it).
        ``chain``: a step worker offers to run the next step itself (see :class:`Chain`).

        Returns the outcome, or None when the run is not running or another pass holds it.
        """
        with self.store.pinned():  # one connection for the pass's many small statements
            if leased is None:
                now = self.clock.now()
                leased = self.store.acquire(run_id, self.owner, now, now + self.lease_ttl)
            if leased is None:
                return None
            try:
                definition = self.flow.get_workflow(leased.workflow)
            except WorkflowNotFound as exc:
                failed = RunOutcome(RunStatus.FAILED, error=ErrorInfo.from_exception(exc))
                self.store.finish_pass(leased.lease, failed, (), self.clock.now())
                return failed
            outcome = await OrchestrationPass(self, definition, leased, chain=chain).run()
        if outcome is not None and outcome.wake_runs:
            await self.driver.wake(self, outcome.wake_runs)  # its parent, its children
        return outcome

    async def continue_run(
        self, run_id: str, *, leased: LeasedRun | None = None, chain: Chain | None = None
    ) -> RunOutcome | None:
        """Run passes of ``run_id`` here until it finishes or waits; arrange its next wake-up.

        ``leased`` and ``chain`` are for the first pass, as in :meth:`run_pass`.

        None when the run is not running or another pass holds it.
        """
        while True:
            outcome = await self.run_pass(run_id, leased=leased, chain=chain)
            leased = None
            if chain is not None and chain.claimed is not None:
                chain = None  # one chained step per completion
            if outcome is None or outcome.status is not RunStatus.RUNNING:
                return outcome
            if outcome.changed_meanwhile:
                continue  # a worker stored a result while the pass ran: no lost wake-up
            if outcome.wake_at is not None:
                self.driver.after_pass(self, run_id, outcome)
            return outcome

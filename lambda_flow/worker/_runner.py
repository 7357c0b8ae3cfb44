"""Step workers: run one attempt of one RPC step, then carry the run on.

A worker claims the attempt (a lease on the step row with its own fencing token), runs the
registered function, stores the outcome and bumps the run's version in one statement, then
continues the orchestration in the same process when it can take the run's lease; otherwise it
queues a pass. Duplicate and late jobs find nothing to claim; they only make sure a result
stored by a worker that died before handing the run on still leads to a pass.

A claim that takes over an expired one (its worker died mid-attempt) does not run the attempt
again: it records it as interrupted, a failed attempt, and the retry policy decides. So RPC steps
are always at most once per attempt. A step's ``timeout`` is enforced here (the attempt fails with
``StepTimedOut``), and the claim lasts at least the timeout plus 30 seconds (the store's claim).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from ..core import ErrorInfo, StepInterrupted, StepKind, StepStatus
from ..engine import (
    Chain,
    StepInfo,
    fixed_policy_json,
    next_delay_by_json,
    running_step,
    within,
)
from ..store.base import StepClaim, StepOutcome
from ..transport.base import StepJob

if TYPE_CHECKING:
    from ._serviced import Serviced

logger = logging.getLogger("lambda_flow")

CHAIN_SHARE = 0.8
"""A step worker chains the run's next step while this share of its step timeout is left."""
_CHAIN_MARGIN = timedelta(seconds=30)
"""And never with less than this left."""


class JobResult(StrEnum):
    """What handling one step job came to."""

    SKIPPED = "skipped"
    """Nothing to claim: a duplicate, late or stale job, or the run has stopped."""
    SUCCEEDED = "succeeded"
    RETRYING = "retrying"
    """The attempt failed and another is due after the step's retry delay."""
    FAILED = "failed"
    """The attempt failed and was the last one."""
    LOST = "lost"
    """The claim expired and another worker took the step over; this result was dropped."""


class StepRunner:
    """Runs step jobs for one service (its engine: flow, store, clock and driver).

    Args:
        service: the service (anything with an ``engine``) whose workflows the steps belong to.
        step_timeout: how long a claim lasts; after it another worker may take the step.
    """

    def __init__(
        self, service: Serviced, *, step_timeout: timedelta = timedelta(minutes=5)
    ) -> None:
        self.service = service
        self.step_timeout = step_timeout

    async def run(
        self,
        run_id: str,
        step_key: str,
        attempt: int,
        *,
        remaining: Callable[[], timedelta] | None = None,
    ) -> JobResult:
        """Handle one ``{"run_id", "step_key", "attempt"}`` job, and the steps chained to it.

        ``remaining``: how long the invocation may still run (Lambda's remaining time); the
        worker chains the run's next step only while more than a claim's length is left.
        """
        engine = self.service.engine
        clock = engine.clock
        now = clock.now()
        claim = engine.store.claim_step(
            run_id,
            step_key,
            attempt,
            owner=engine.owner,
            now=now,
            lease_until=now + self.step_timeout,
        )
        if claim is None:
            logger.info(
                "step job skipped",
                extra={"run_id": run_id, "step": step_key, "attempt": attempt},
            )
            # A duplicate of a job whose worker stored the result and died before handing
            # the run on: the run must not wait for some later timer (invariant 5,
            # docs/architecture.md).
            if engine.store.needs_pass(run_id, now):
                await self._hand_on(run_id)
            return JobResult.SKIPPED
        verdict, chained = await self._step(claim, self._chain(remaining))
        while chained is not None:  # the run's next step, claimed for this worker by its pass
            _, chained = await self._step(chained, self._chain(remaining))
        return verdict

    def _chain(self, remaining: Callable[[], timedelta] | None) -> Chain | None:
        """A chain offer while the invocation has most of a step's time left.

        A step worker's Lambda timeout is a step's timeout (``step_timeout``), so a chained
        step gets less time than a fresh invocation would give it: the worker chains while at
        least :data:`CHAIN_SHARE` of it is left (a minute of quick steps, with the template's
        300 s), then hands the next step to the queue and a fresh invocation.
        """
        if remaining is not None and remaining() < max(
            self.step_timeout * CHAIN_SHARE, _CHAIN_MARGIN
        ):
            return None
        return Chain(step_lease=self.step_timeout)

    async def _step(
        self, claim: StepClaim, chain: Chain | None
    ) -> tuple[JobResult, StepClaim | None]:
        """Run one claimed attempt, store it, and carry the run on; the step chained next."""
        engine = self.service.engine
        run_id, step_key = claim.run_id, claim.step_key
        info = StepInfo(run_id, step_key, claim.attempt, claim.name, claim.workflow)
        if claim.interrupted_by is not None:
            outcome, verdict = self._interrupted(claim)
        else:
            outcome, verdict = await self._attempt(claim, info)
        with engine.store.pinned():  # one connection for storing it and the pass after
            return await self._store(claim, outcome, verdict, chain)

    async def _store(
        self, claim: StepClaim, outcome: StepOutcome, verdict: JobResult, chain: Chain | None
    ) -> tuple[JobResult, StepClaim | None]:
        engine = self.service.engine
        run_id, step_key = claim.run_id, claim.step_key
        now = engine.clock.now()
        # One statement stores the outcome and, when the run's lease is free, takes it for the
        # pass that follows and returns the run's steps (invariant 5 without a second read).
        completion = engine.store.complete_step(
            claim, outcome, now, owner=engine.owner, lease_until=now + engine.lease_ttl
        )
        del outcome  # the result lives on in the pass's steps only
        if completion is None:
            logger.warning(
                "step result dropped: claim lost",
                extra={"run_id": run_id, "workflow": claim.workflow, "step": step_key},
            )
            return JobResult.LOST, None
        logger.debug(  # the observer reports the attempt; this is the job's own record
            "step job done",
            extra={
                "run_id": run_id,
                "workflow": claim.workflow,
                "step": step_key,
                "attempt": claim.attempt,
                "outcome": verdict.value,
            },
        )
        if completion.next_steps:  # a chained batch's next items: their rows are committed
            engine.driver.send_steps([StepJob(run_id, key, 1) for key in completion.next_steps])
        if not completion.run_changed:
            return verdict, None
        if completion.leased is None:  # another pass holds the run: it will see the result
            engine.driver.hand_on(run_id)
            return verdict, None
        await engine.continue_run(run_id, leased=completion.leased, chain=chain)
        return verdict, None if chain is None else chain.claimed

    async def _hand_on(self, run_id: str) -> None:
        """Carry the run on here when its lease is free; otherwise make sure a pass follows."""
        engine = self.service.engine
        if await engine.continue_run(run_id) is None:
            engine.driver.hand_on(run_id)

    async def _attempt(self, claim: StepClaim, info: StepInfo) -> tuple[StepOutcome, JobResult]:
        """Run the claimed attempt's function and say what it came to."""
        engine = self.service.engine
        try:
            function = engine.flow.get_function(claim.target)
            timeout = None if claim.timeout_ms is None else timedelta(milliseconds=claim.timeout_ms)
            with running_step(info), engine.observer.step(info, StepKind.RPC):
                result = await within(
                    engine.clock,
                    function.invoke_json(claim.input),  # serialized once, straight to bytes
                    timeout,
                    step_key=claim.step_key,
                    attempt=claim.attempt,
                )
        except Exception as exc:  # noqa: BLE001 - any failure of user code is data: store it
            return self._failed(claim, exc, engine.flow.step_error(exc, claim.step_key))
        engine.observer.step_finished(info, StepKind.RPC, StepStatus.SUCCEEDED, retrying=False)
        outcome = StepOutcome(
            status=StepStatus.SUCCEEDED, attempt_status=StepStatus.SUCCEEDED, result=result
        )
        return outcome, JobResult.SUCCEEDED

    def _interrupted(self, claim: StepClaim) -> tuple[StepOutcome, JobResult]:
        """The claim took over one whose worker died mid-attempt: count that attempt as failed.

        It is not run again; the retry policy decides what follows.
        """
        error = ErrorInfo(
            type=StepInterrupted.__name__,
            message=f"attempt {claim.attempt} was started by {claim.interrupted_by} and never "
            "finished: the worker stopped (killed, out of memory or timed out)",
            step_key=claim.step_key,
        )
        logger.warning(
            "step attempt interrupted",
            extra={"run_id": claim.run_id, "step": claim.step_key, "attempt": claim.attempt},
        )
        return self._failed(claim, None, error)

    def _failed(
        self, claim: StepClaim, exc: BaseException | None, error: ErrorInfo
    ) -> tuple[StepOutcome, JobResult]:
        engine = self.service.engine
        policy = claim.retry_policy or fixed_policy_json(claim.max_attempts, claim.retry_delay_ms)
        delay = next_delay_by_json(policy, exc, claim.attempt)
        final = delay is None
        info = StepInfo(claim.run_id, claim.step_key, claim.attempt, claim.name, claim.workflow)
        engine.observer.step_finished(
            info, StepKind.RPC, StepStatus.FAILED, retrying=not final, error=error
        )
        finished = engine.clock.now()
        outcome = StepOutcome(
            status=StepStatus.FAILED if final else StepStatus.PENDING,
            attempt_status=StepStatus.FAILED,
            error=error,
            wake_at=None if delay is None else finished + delay,
        )
        return outcome, JobResult.FAILED if final else JobResult.RETRYING

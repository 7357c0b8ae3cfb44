"""What queue consumers do with a message, in the Lambda handlers and the local runtime alike.

Orchestrate a run, run a step job, or sweep for work that lost its way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from ..core import run_on_thread_loop
from ..transport.base import StepJob, parse_run_message, parse_step_message
from ._drivers import RemoteDriver
from ._runner import JobResult, StepRunner

if TYPE_CHECKING:
    from ..store.base import RunOutcome
    from ._serviced import Serviced

logger = logging.getLogger("lambda_flow")

Body = str | bytes | Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class SweepReport:
    """What one sweep re-drove."""

    runs: list[str]
    step_jobs: list[StepJob]
    failed_runs: list[str] = field(default_factory=list)
    """Suspended runs past their deadline, failed with ``RunDeadlineExceeded``."""
    deleted_runs: int = 0
    """Finished runs deleted by retention (``retention``), with their steps."""


class Dispatcher:
    """Turns queue messages into engine work for one service (in remote mode).

    Args:
        service: a service (anything with an ``engine``) with a queue configured.
        step_timeout: how long a worker's claim on a step lasts.
    """

    def __init__(
        self, service: Serviced, *, step_timeout: timedelta = timedelta(minutes=5)
    ) -> None:
        self.service = service
        self.runner = StepRunner(service, step_timeout=step_timeout)

    def run_message(self, body: Body) -> RunOutcome | None:
        """Handle an orchestrator message ``{"run_id"}``.

        Raises:
            InvalidMessage: the body is not such a message.
        """
        return run_on_thread_loop(self.service.engine.continue_run(parse_run_message(body)))

    def step_message(
        self, body: Body, *, remaining: Callable[[], timedelta] | None = None
    ) -> JobResult:
        """Handle a step message ``{"run_id", "step_key", "attempt"}``.

        ``remaining``: how long the invocation may still run (Lambda's remaining time), which
        bounds the steps the worker chains after this one (see ``StepRunner.run``).

        Raises:
            InvalidMessage: the body is not such a message.
        """
        job = parse_step_message(body)
        return run_on_thread_loop(
            self.runner.run(job.run_id, job.step_key, job.attempt, remaining=remaining)
        )

    def sweep(
        self,
        *,
        unsent_after: timedelta = timedelta(minutes=2),
        result_after: timedelta = timedelta(seconds=5),
        redrive_after: timedelta | None = None,
        backlog_after: timedelta = timedelta(minutes=15),
        limit: int = 100,
        retention: timedelta | None = None,
        retention_batches: int = 5,
        retention_batch_size: int = 500,
    ) -> SweepReport:
        """Re-drive runs and step jobs that lost their way (invariant 6, docs/architecture.md).

        Passes that died holding a lease, timers due longer than ``unsent_after`` ago, results
        stored more than ``result_after`` ago that no pass has seen (a worker died before
        handing the run on), runs with nothing outstanding, step jobs never sent (scheduled
        longer than ``unsent_after`` ago) and steps whose worker died (claim expired). A run is
        re-driven at most once per ``redrive_after`` (default: ``unsent_after``), doubling while
        no pass follows, so messages merely waiting in a backlog are not multiplied. While the
        orchestrator queue has a backlog, ``unsent_after`` stretches to ``backlog_after``: the
        message of a run that looks stuck most likely waits in it. Duplicates this may still
        create are harmless: claims and leases dedupe. Suspended runs past their deadline (no
        timer wakes them) are failed with ``RunDeadlineExceeded``, at most ``limit`` a sweep.
        With ``retention``, finished runs that ended longer ago than that are deleted, at most
        ``retention_batches`` short batches of ``retention_batch_size`` a sweep (running and
        suspended runs never).
        """
        engine = self.service.engine
        if not isinstance(engine.driver, RemoteDriver):  # a mode, not an argument type
            raise RuntimeError("sweeping needs a queue (remote mode)")  # noqa: TRY004
        queue = engine.driver.queue
        now = engine.clock.now()
        if queue.backlog():
            unsent_after = max(unsent_after, backlog_after)
        stuck = engine.store.find_stuck(
            now,
            unsent_after=now - unsent_after,
            result_after=now - result_after,
            redrive_after=unsent_after if redrive_after is None else redrive_after,
            limit=limit,
        )
        failed = engine.store.fail_overdue(now, limit=limit)
        for run_id in stuck.run_ids:
            queue.enqueue_run(run_id)
        jobs = [StepJob(run_id, key, attempt) for run_id, key, attempt in stuck.step_jobs]
        if jobs:
            queue.enqueue_steps(jobs)
        if stuck.run_ids or jobs or failed:
            logger.info(
                "sweeper re-drove work",
                extra={"runs": len(stuck.run_ids), "step_jobs": len(jobs), "overdue": len(failed)},
            )
        deleted = 0
        if retention is not None:
            deleted = engine.store.delete_finished_batches(
                now - retention, batch_size=retention_batch_size, max_batches=retention_batches
            )
            if deleted:
                logger.info(
                    "sweeper deleted finished runs",
                    extra={"deleted_runs": deleted, "retention": str(retention)},
                )
        return SweepReport(
            runs=stuck.run_ids, step_jobs=jobs, failed_runs=failed, deleted_runs=deleted
        )

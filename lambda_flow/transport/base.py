"""The queue interface: what remote mode needs to move work between stateless processes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol


@dataclass(frozen=True, slots=True)
class StepJob:
    """A message asking a worker to run one attempt of one RPC step (ids only)."""

    run_id: str
    step_key: str
    attempt: int


class JobQueue(Protocol):
    """Moves ids between processes; payloads stay in the store.

    With a queue configured, ``WorkflowService`` runs in remote mode: ``start()`` stores the run
    and queues its first orchestration job, then returns.
    """

    def enqueue_run(self, run_id: str, *, delay: timedelta | None = None) -> None:
        """Ask for an orchestration pass of ``run_id`` (after ``delay``, if given)."""
        ...

    def enqueue_steps(self, jobs: Sequence[StepJob]) -> None:
        """Ask workers to run these step attempts."""
        ...

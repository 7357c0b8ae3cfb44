"""The store interface the engine talks to, and the records that cross it.

A backend implements a handful of primitives; each write is fenced by the run's lease token so
that a pass whose lease was lost cannot change anything (invariant 4).
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .._models import ErrorInfo, Run, RunStatus, StepAttempt, StepKind, StepStatus


@dataclass(slots=True)
class StepRecord:
    """A step as stored: what replay compares against and returns from."""

    key: str
    name: str
    position: int
    kind: StepKind
    target: str | None
    status: StepStatus
    attempt: int
    """Attempts made so far (0 before the first one finished)."""
    result: Any = None
    error: ErrorInfo | None = None
    wake_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class RunLease:
    """Proof that one pass owns a run for now: the fencing token every write must match."""

    run_id: str
    owner: str
    token: int


@dataclass(slots=True)
class LeasedRun:
    """A run taken for one orchestration pass, with all its steps (loaded in one query)."""

    lease: RunLease
    workflow: str
    input: Any
    created_at: datetime
    steps: dict[str, StepRecord] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StepWrite:
    """A change to one step and to the history row of its current attempt."""

    key: str
    name: str
    position: int
    kind: StepKind
    target: str | None
    status: StepStatus
    """The step's status after this write."""
    attempt: int
    """The attempt this write is about (1-based); also the step's attempts-so-far."""
    attempt_status: StepStatus
    """The status of that attempt's history row."""
    started_at: datetime | None = None
    finished_at: datetime | None = None
    input: Any = None
    result: Any = None
    error: ErrorInfo | None = None
    wake_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """How a pass leaves its run: the status and, when final, its output or error."""

    status: RunStatus
    output: Any = None
    error: ErrorInfo | None = None
    wake_at: datetime | None = None
    """The earliest timer the run waits for (None: nothing timed)."""


@dataclass(slots=True)
class StoreStats:
    """Client-side counters: every statement is one round trip to the database."""

    round_trips: int = 0
    commits: int = 0


class Store(abc.ABC):
    """Durable state of runs and steps."""

    stats: StoreStats

    @abc.abstractmethod
    def migrate(self) -> None:
        """Create or upgrade the schema; safe to call from many processes at once."""

    @abc.abstractmethod
    def create_run(
        self, workflow: str, input: Any, idempotency_key: str | None, now: datetime
    ) -> tuple[str, bool]:
        """Store a new running run; return ``(run_id, created)``.

        With an ``idempotency_key`` already used for this workflow, nothing is written and the
        first run's id comes back with ``created=False``.
        """

    @abc.abstractmethod
    def get_run(self, run_id: str) -> Run | None:
        """The run, or None for an unknown (or malformed) id."""

    @abc.abstractmethod
    def list_runs(
        self,
        *,
        workflow: str | None = None,
        status: RunStatus | None = None,
        limit: int = 50,
        before: tuple[datetime, str] | None = None,
    ) -> list[Run]:
        """Runs newest first, optionally filtered; ``before`` continues after a previous page."""

    @abc.abstractmethod
    def get_history(self, run_id: str) -> list[StepAttempt]:
        """Every attempt of every step of the run, oldest first."""

    @abc.abstractmethod
    def acquire(
        self, run_id: str, owner: str, now: datetime, lease_until: datetime
    ) -> LeasedRun | None:
        """Take the run's lease for one pass if it is running and nobody holds a live lease.

        Returns the run with all its steps, or None when the lease is not available.
        """

    @abc.abstractmethod
    def write_steps(
        self, lease: RunLease, writes: Sequence[StepWrite], now: datetime, lease_until: datetime
    ) -> None:
        """Commit step changes atomically, extending the lease.

        Raises:
            LeaseLost: the lease token moved on or the run stopped running; nothing was written.
        """

    @abc.abstractmethod
    def finish_pass(
        self,
        lease: RunLease,
        outcome: RunOutcome,
        writes: Sequence[StepWrite],
        now: datetime,
    ) -> None:
        """Commit the pass's last step changes and the run's outcome, releasing the lease.

        Raises:
            LeaseLost: as for :meth:`write_steps`.
        """

    @abc.abstractmethod
    def renew(self, lease: RunLease, now: datetime, lease_until: datetime) -> None:
        """Extend a live lease (a heartbeat during a long step).

        Raises:
            LeaseLost: as for :meth:`write_steps`.
        """

    @abc.abstractmethod
    def resume(self, run_id: str, now: datetime) -> Run:
        """Mark a suspended run running again and its pending suspend steps succeeded.

        A run that is already running is returned unchanged (resume then just drives it).

        Raises:
            RunNotFound: unknown run.
            InvalidRunState: the run has finished.
        """

    @abc.abstractmethod
    def cancel(self, run_id: str, reason: str | None, now: datetime) -> Run:
        """Cancel a running or suspended run; any pass still going loses its lease.

        Raises:
            RunNotFound: unknown run.
            InvalidRunState: the run has finished.
        """

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections."""

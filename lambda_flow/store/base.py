"""The store interface the engine talks to, and the records that cross it.

A backend implements a handful of primitives; each write is fenced by the run's lease token so
that a pass whose lease was lost cannot change anything (invariant 4, docs/architecture.md).
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ..core import ErrorInfo, InvalidOption, Run, RunStatus, StepAttempt, StepKind, StepStatus


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
    callback_id: str | None = None
    """A callback step's id (the token ``complete_callback`` takes); None for other kinds."""
    child_run_id: str | None = None
    """A child step's child run (kept as started: a forked run's copied step names the child
    its source run started); None for other kinds."""

    def to_json(self) -> dict[str, Any]:
        """The record as JSON-safe data (the steps of an exported history)."""
        return {
            "step_key": self.key,
            "name": self.name,
            "position": self.position,
            "kind": self.kind.value,
            "target": self.target,
            "status": self.status.value,
            "attempt": self.attempt,
            "result": self.result,
            "error": None if self.error is None else self.error.model_dump(),
            "wake_at": None if self.wake_at is None else self.wake_at.isoformat(),
            **({} if self.callback_id is None else {"callback_id": self.callback_id}),
            **({} if self.child_run_id is None else {"child_run_id": self.child_run_id}),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StepRecord:
        """The record :meth:`to_json` wrote.

        Raises:
            KeyError, TypeError, ValueError: ``data`` is not such a record.
        """
        error, wake_at = data.get("error"), data.get("wake_at")
        return cls(
            key=data["step_key"],
            name=data["name"],
            position=int(data["position"]),
            kind=StepKind(data["kind"]),
            target=data.get("target"),
            status=StepStatus(data["status"]),
            attempt=int(data["attempt"]),
            result=data.get("result"),
            error=None if error is None else ErrorInfo.model_validate(error),
            wake_at=None if wake_at is None else datetime.fromisoformat(wake_at),
            callback_id=data.get("callback_id"),
            child_run_id=data.get("child_run_id"),
        )


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
    version: int = 0
    """The run's version when the lease was taken; every step result bumps it."""
    steps: dict[str, StepRecord] = field(default_factory=dict)
    recovering: bool = False
    """The previous pass took the lease and never finished (its process died or stalled).

    A recovering pass commits each in-process attempt's start before running it, so a step
    that kills its process is found and counted as interrupted by the pass after.
    """
    deadline: datetime | None = None
    """When the run fails with ``RunDeadlineExceeded`` (None: never)."""
    cancel_requested: bool = False
    """Someone asked to cancel the run: the pass raises ``WorkflowCancelled`` into the body."""
    cancel_reason: str | None = None
    cleanup_deadline: datetime | None = None
    """When a cancelled run's cleanup is cut short (None: it runs until the body ends)."""
    parent_id: str | None = None
    """The run that started this one as a child (None: a top-level run)."""


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
    max_attempts: int = 1
    """The step's retry policy (attempts in all), for workers deciding on a retry."""
    retry_delay_ms: int = 0
    retry_policy: dict[str, Any] | None = None
    """The step's whole retry policy (``RetryPolicy.to_json``), for workers."""
    timeout_ms: int | None = None
    """How long one attempt may run (None: no limit), for workers."""
    batch_key: str | None = None
    """The chained batch this step is an item of (kept once inserted)."""
    lease_owner: str | None = None
    """Set on a chained step's write: the worker that claims it in the same statement."""
    lease_expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class BatchPlan:
    """A chained batch (``wf.map`` over a registered function, remote mode).

    Workers start its items, each in the statement that stores an earlier item's result.
    """

    batch_key: str
    target: str
    names: list[str]
    """Each item's name (its step key is ``<batch_key>/<name>``)."""
    items: list[Any]
    """Each item's input, as stored."""
    concurrency: int
    started: int
    """How many items the pass starts itself (its writes hold their steps)."""
    position_base: int
    """Item ``i``'s step position is ``position_base + i``."""
    max_attempts: int
    retry_delay_ms: int
    retry_policy: dict[str, Any] | None
    timeout_ms: int | None
    min_successful: int | None = None
    tolerated_failures: int | None = None
    tolerated_ratio: float | None = None


@dataclass(frozen=True, slots=True)
class BatchProgress:
    """Where a chained batch stands."""

    next_index: int
    """Items ``0 .. next_index - 1`` have started."""
    running: int
    """Items started and not settled for good (a retry wait counts)."""
    succeeded: int
    failed: int

    @property
    def done(self) -> bool:
        """No item runs and none will start."""
        return self.running == 0


@dataclass(frozen=True, slots=True)
class StepCompletion:
    """What storing a claimed attempt's outcome did."""

    next_steps: tuple[str, ...] = ()
    """Keys of the batch items it started (attempt 1): their jobs must be sent."""
    run_changed: bool = True
    """The run's version moved: a pass must follow (False while a batch goes on by itself)."""
    leased: LeasedRun | None = None
    """The run, leased for that pass in the same statement (its lease was free), with its
    steps as the pass needs them (the stored outcome included)."""


@dataclass(frozen=True, slots=True)
class StepClaim:
    """A worker's claim on one attempt of one RPC step (a lease with its own fencing token)."""

    run_id: str
    workflow: str
    step_key: str
    name: str
    attempt: int
    target: str
    input: Any
    token: int
    max_attempts: int
    retry_delay_ms: int
    started_at: datetime
    retry_policy: dict[str, Any] | None = None
    """The step's retry policy as JSON; None for a step stored before policies were."""
    timeout_ms: int | None = None
    """How long the attempt may run (None: no limit)."""
    interrupted_by: str | None = None
    """Set when this claim took over an expired one: the owner whose attempt never finished.

    That attempt is not run again; the worker records it as interrupted (a failed attempt).
    """


@dataclass(frozen=True, slots=True)
class StepOutcome:
    """What one claimed attempt came to."""

    status: StepStatus
    """The step's status after it: succeeded, failed (final) or pending (a retry is due)."""
    attempt_status: StepStatus
    """The attempt's own status: succeeded or failed."""
    result: Any = None
    error: ErrorInfo | None = None
    wake_at: datetime | None = None
    """When the retry is due (pending only)."""


@dataclass(frozen=True, slots=True)
class StuckWork:
    """What the sweeper found without a way forward."""

    run_ids: list[str]
    """Runs to orchestrate again: a due timer, an expired pass lease, or nothing outstanding."""
    step_jobs: list[tuple[str, str, int]]
    """``(run_id, step_key, attempt)`` of step jobs never sent, or whose worker died."""


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """How a pass leaves its run: the status and, when final, its output or error."""

    status: RunStatus
    output: Any = None
    error: ErrorInfo | None = None
    wake_at: datetime | None = None
    """The earliest timer the run waits for (None: nothing timed)."""
    changed_meanwhile: bool = False
    """Someone else (a step worker) wrote to the run during the pass: run another one."""
    settled: bool = True
    """The pass saw every result stored before it finished (no other writer meanwhile)."""
    waits_outside: bool = False
    """The run waits for a completion from outside (a callback): inline mode stops driving it
    there, as it does at a suspension, instead of waiting on the clock for the deadline."""
    wake_runs: tuple[str, ...] = ()
    """Other runs this run's end gives work to: its parent (which waits for it) and its
    unfinished children (asked to cancel). The engine hands each one on."""


@dataclass(frozen=True, slots=True)
class ChildStart:
    """A child run to create with the parent's step that waits for it (``wf.start_child``)."""

    run_id: str
    """Derived from the parent's id and the step's key: the same on every replay."""
    workflow: str
    input: Any
    parent_step: str
    deadline: datetime | None = None
    """The child workflow's own deadline (its ``timeout``), if it has one."""


@dataclass(frozen=True, slots=True)
class CallbackOutcome:
    """What an outside caller completes a callback with: a payload or an error."""

    status: StepStatus
    """``succeeded`` (with ``result``) or ``failed`` (with ``error``)."""
    result: Any = None
    error: ErrorInfo | None = None


@dataclass(frozen=True, slots=True)
class CallbackState:
    """A callback step as a completion call found or left it."""

    run_id: str
    step_key: str
    status: StepStatus
    """The step's status; ``scheduled`` while it waits."""
    run_status: RunStatus
    changed: bool
    """This call wrote it (False: it was not waiting, nothing changed)."""
    result: Any = None
    error: ErrorInfo | None = None
    deadline: datetime | None = None


@dataclass(slots=True)
class StoreStats:
    """Client-side counters: every statement is one round trip to the database."""

    round_trips: int = 0
    commits: int = 0


FINISHED_STATUSES = (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED)
"""The statuses retention may delete (:meth:`Store.delete_finished`): a run in one never changes."""


def finished_statuses(statuses: Sequence[RunStatus | str] | None) -> tuple[RunStatus, ...]:
    """The finished statuses to delete: all of them (None), or the ones given.

    Raises:
        InvalidOption: an unknown status, a run status that is not finished (``running``,
            ``suspended``: named), or an empty list.
    """
    if statuses is None:
        return FINISHED_STATUSES
    if isinstance(statuses, str):  # one status, not its letters
        statuses = [statuses]
    known = {status.value: status for status in RunStatus}
    unknown = [repr(s) for s in statuses if str(s) not in known]
    if unknown:
        raise InvalidOption(
            "statuses",
            f"unknown run status {', '.join(unknown)}: give completed, failed or cancelled",
        )
    chosen = [known[str(s)] for s in statuses]
    unfinished = [s.value for s in chosen if not s.is_terminal]
    if unfinished:
        raise InvalidOption(
            "statuses",
            f"only finished runs are deleted, and {', '.join(unfinished)} runs are not finished:"
            " give completed, failed or cancelled",
        )
    if not chosen:
        raise InvalidOption("statuses", "no status given: give completed, failed or cancelled")
    return tuple(dict.fromkeys(chosen))


def positive_limit(value: int, parameter: str) -> int:
    """``value`` when it is a positive whole number.

    Raises:
        InvalidOption: naming ``parameter``.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidOption(parameter, f"must be a positive whole number, got {value!r}")
    return value


class Store(abc.ABC):
    """Durable state of runs and steps."""

    stats: StoreStats

    @abc.abstractmethod
    def migrate(self) -> None:
        """Create or upgrade the schema; safe to call from many processes at once."""

    @abc.abstractmethod
    def create_run(
        self,
        workflow: str,
        input: Any,
        idempotency_key: str | None,
        now: datetime,
        *,
        deadline: datetime | None = None,
    ) -> tuple[str, bool]:
        """Store a new running run; return ``(run_id, created)``.

        ``deadline``: when the run fails with ``RunDeadlineExceeded`` (None: never).

        With an ``idempotency_key`` already used for this workflow, nothing is written and the
        first run's id comes back with ``created=False``.
        """

    @abc.abstractmethod
    def fork_run(
        self,
        run_id: str,
        step_key: str,
        input: Any,
        now: datetime,
        *,
        deadline: datetime | None = None,
    ) -> str | None:
        """Store a new running run of ``run_id``'s workflow, forked at step ``step_key``.

        It holds copies of the source's finished steps recorded before that step (with their
        attempts, positions kept) and ``forked_from`` naming the run and the step; its input
        is ``input``, or the source's when None. One statement.

        Returns:
            The new run's id; None (nothing written) when the run or its step is unknown.
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
        summary: bool = False,
        parent_id: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        search: str | None = None,
    ) -> list[Run]:
        """Runs newest first, optionally filtered; ``before`` continues after a previous page.

        ``parent_id`` lists the children of that run; ``created_after`` (inclusive) and
        ``created_before`` (exclusive) bound the creation time; ``search`` matches a run id
        (whole, or its beginning) or an idempotency key (whole, or its beginning).

        With ``summary`` the input and output are not read (they come back as None), so a page
        of listings costs little whatever the runs hold.
        """

    @abc.abstractmethod
    def count_runs(
        self,
        *,
        workflow: str | None = None,
        parent_id: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        search: str | None = None,
        cap: int = 10_000,
    ) -> dict[RunStatus, int]:
        """How many runs match (the filters of :meth:`list_runs`) in each status.

        Counting stops past ``cap``: a status with more matching runs counts ``cap + 1`` (show
        it as "more than cap"), so the answer costs the same however many runs are stored.
        """

    @abc.abstractmethod
    def get_steps(self, run_id: str) -> list[StepRecord]:
        """The run's steps as replay sees them, in the order they were first recorded."""

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
    ) -> int:
        """Commit step changes atomically, extending the lease; return the run's new version.

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
        *,
        seen_version: int | None = None,
        cancel_seen: bool = False,
    ) -> int:
        """Commit the pass's last step changes and the run's outcome, releasing the lease.

        Returns the run's new version.

        ``seen_version``: the run's version after the pass's own last write, when the pass saw
        no other writer; the run counts as settled if it is still that (else the sweeper
        drives it again should the process die before the next pass).

        ``cancel_seen``: the pass knew of the run's cancel request. A request it did not see
        (made after its last write) keeps a run the pass would suspend ``running``, so the
        pass that follows (the version moved) delivers the cancellation.

        Raises:
            LeaseLost: as for :meth:`write_steps`.
        """

    @abc.abstractmethod
    def finish_pass_claiming(
        self,
        lease: RunLease,
        outcome: RunOutcome,
        writes: Sequence[StepWrite],
        now: datetime,
        *,
        claim_key: str,
        seen_version: int | None = None,
        cancel_seen: bool = False,
    ) -> tuple[int, int]:
        """:meth:`finish_pass` whose writes include a claimed step, ``claim_key``.

        The pass hands that step (a chained step) to the worker that runs next: returns the
        run's version and the step's claim token.

        Raises:
            LeaseLost: as for :meth:`write_steps`.
        """

    @abc.abstractmethod
    def start_child(
        self,
        lease: RunLease,
        write: StepWrite,
        child: ChildStart,
        now: datetime,
        lease_until: datetime,
    ) -> int:
        """Record the parent's child step (``write``) and create the child run, together.

        One statement, fenced like :meth:`write_steps`; a child run that already exists (a
        replay after a crash) is left as it is.

        Returns:
            The parent run's new version.

        Raises:
            LeaseLost: as for :meth:`write_steps`.
        """

    @abc.abstractmethod
    def time_out_step(
        self, lease: RunLease, write: StepWrite, now: datetime, lease_until: datetime
    ) -> int | None:
        """Record a callback's or a child's timeout (``write``), if it still waits past it.

        Fenced on the lease, the step still ``scheduled`` and its deadline (which a heartbeat
        may have moved) not after ``now``: a completion committed first is never overwritten.
        A child that timed out is asked to cancel in the same statement.

        Returns the run's new version, or None when the callback no longer waits past its
        deadline (nothing written: the pass must let another pass read the step again).

        Raises:
            LeaseLost: as for :meth:`write_steps`.
        """

    @abc.abstractmethod
    def fail_overdue(
        self, now: datetime, *, run_id: str | None = None, limit: int = 100
    ) -> list[str]:
        """Fail suspended runs past their deadline with ``RunDeadlineExceeded``.

        No timer wakes a suspended run, so the sweeper (and ``resume``, for ``run_id`` only)
        ends them here; their waiting steps read ``cancelled``. At most ``limit`` runs.

        Returns the ids of the runs it failed.
        """

    @abc.abstractmethod
    def renew(self, lease: RunLease, now: datetime, lease_until: datetime) -> None:
        """Extend a live lease (a heartbeat during a long step).

        Raises:
            LeaseLost: as for :meth:`write_steps`.
        """

    @abc.abstractmethod
    def resume(self, run_id: str, now: datetime, payload: Any = None) -> Run:
        """Mark a suspended run running again and its pending suspend steps succeeded.

        ``payload`` becomes those steps' result: what the awaited ``wf.suspend`` returns.

        A run that is already running is returned unchanged (resume then just drives it).

        Raises:
            RunNotFound: unknown run.
            InvalidRunState: the run has finished.
        """

    @abc.abstractmethod
    def cancel(
        self,
        run_id: str,
        reason: str | None,
        now: datetime,
        *,
        cleanup_deadline: datetime | None = None,
    ) -> Run:
        """Ask a running or suspended run to cancel: the next pass delivers it to the body.

        The run is marked running (a pass must follow) with the request and its reason; steps
        still waiting (pending, scheduled, running) become ``cancelled``, so a worker's job for
        one is refused and its result not recorded. A pass still going keeps its lease; the
        version moves on, so another pass follows it. Asking again keeps the first request.

        Raises:
            RunNotFound: unknown run.
            InvalidRunState: the run has finished.
        """

    @abc.abstractmethod
    def cancelling_children(self, run_id: str) -> list[str]:
        """The unfinished runs below ``run_id`` (children, their children...) asked to cancel."""

    @abc.abstractmethod
    def cancel_request(self, run_id: str) -> tuple[str | None, datetime | None] | None:
        """The run's cancellation request as ``(reason, cleanup_deadline)``; None: none."""

    @abc.abstractmethod
    def claim_step(
        self,
        run_id: str,
        step_key: str,
        attempt: int,
        *,
        owner: str,
        now: datetime,
        lease_until: datetime,
    ) -> StepClaim | None:
        """Claim one attempt of an RPC step for a worker; None for a duplicate or late job.

        The step must be scheduled (or its previous claim expired) and its run running.
        """

    @abc.abstractmethod
    def complete_step(
        self,
        claim: StepClaim,
        outcome: StepOutcome,
        now: datetime,
        *,
        owner: str | None = None,
        lease_until: datetime | None = None,
    ) -> StepCompletion | None:
        """Record the claimed attempt's outcome and bump the run's version.

        With an ``owner`` the same statement takes the run's lease (until ``lease_until``)
        when it is free and returns the run with its steps (:attr:`StepCompletion.leased`).

        An item of a chained batch that settled for good starts the next items instead (in the
        same statement), and the run's version moves only once the batch has ended.

        Returns None (writing nothing) when the claim was lost or the run stopped.
        """

    @abc.abstractmethod
    def start_batch(
        self,
        lease: RunLease,
        plan: BatchPlan,
        writes: Sequence[StepWrite],
        now: datetime,
        lease_until: datetime,
    ) -> int:
        """Store a chained batch's plan and items with ``writes`` (its first items), fenced.

        Returns:
            The run's new version.

        Raises:
            LeaseLost: as for :meth:`write_steps`.
        """

    @abc.abstractmethod
    def get_batch(self, run_id: str, batch_key: str) -> BatchProgress | None:
        """Where the chained batch stands; None when the run has no such batch."""

    @abc.abstractmethod
    def fail_run(self, run_id: str, error: ErrorInfo, now: datetime) -> bool:
        """Fail a running or suspended run; steps still waiting become ``cancelled``.

        For a run whose message went to a dead-letter queue, for example.
        """

    @abc.abstractmethod
    def needs_pass(self, run_id: str, now: datetime) -> bool:
        """True when a pass must follow: a result was stored after the last pass finished.

        Only for a running run that no live pass holds.
        """

    @abc.abstractmethod
    def find_stuck(
        self,
        now: datetime,
        *,
        unsent_after: datetime,
        result_after: datetime,
        redrive_after: timedelta,
        limit: int,
    ) -> StuckWork:
        """Claim runs and step jobs that lost their way, for re-driving (invariant 6).

        Invariants are numbered in docs/architecture.md.

        ``unsent_after``: a run or scheduled step untouched since before then is presumed to
        have lost its message, and a timer due before then its wake-up. ``result_after``: a
        result stored before then that no pass has seen lost its worker's hand-over. A run
        is re-driven at most once per ``redrive_after``, doubled after each re-drive that no
        pass followed, so a backlog of queued messages is not multiplied; concurrent sweepers
        never return the same run or step.
        """

    @abc.abstractmethod
    def complete_callback(
        self, callback_id: str, outcome: CallbackOutcome, now: datetime
    ) -> CallbackState:
        """Complete (or fail) a waiting callback step, its attempt and the run's version at once.

        Returns the callback as it now is; when it was not waiting (already completed, timed
        out, its run ended) nothing is written and it comes back as it was, for the caller to
        tell an idempotent repeat from a conflict.

        Raises:
            CallbackNotFound: no callback has this id.
        """

    @abc.abstractmethod
    def find_callback(self, callback_id: str) -> CallbackState:
        """The callback as it is (``changed`` False).

        Raises:
            CallbackNotFound: no callback has this id.
        """

    @abc.abstractmethod
    def heartbeat_callback(self, callback_id: str, now: datetime) -> CallbackState:
        """Move a waiting callback's deadline to ``now`` plus its heartbeat timeout.

        Never past its own timeout; a callback without a heartbeat timeout keeps its deadline.
        Returns the callback as it now is (nothing written when it was not waiting).

        Raises:
            CallbackNotFound: no callback has this id.
        """

    @abc.abstractmethod
    def delete_finished(
        self,
        before: datetime,
        *,
        statuses: Sequence[RunStatus] | None = None,
        limit: int = 500,
    ) -> int:
        """Delete up to ``limit`` finished runs last changed before ``before``, oldest first.

        With their steps, attempts, batches and batch items, in one short statement: rows are
        claimed with ``SKIP LOCKED`` (concurrent callers split the work; a run someone holds is
        left for a later call). A run that is ``running`` or ``suspended`` (asked to cancel or
        not) is never deleted, nor anything of it. A child whose parent is deleted goes on.

        Args:
            before: runs whose last change (``updated_at``: their end) is before this go.
            statuses: some of ``completed``, ``failed``, ``cancelled`` (default: all three).
            limit: the most runs deleted by this call.

        Returns:
            How many runs were deleted (fewer than ``limit``: none left, or the rest locked).

        Raises:
            InvalidOption: a status that is not finished (named), or ``limit`` not positive.
        """

    @abc.abstractmethod
    def count_finished(
        self, before: datetime, *, statuses: Sequence[RunStatus] | None = None
    ) -> int:
        """How many runs :meth:`delete_finished` would delete, in all batches (a dry run).

        Raises:
            InvalidOption: as for :meth:`delete_finished`.
        """

    def delete_finished_batches(
        self,
        before: datetime,
        *,
        statuses: Sequence[RunStatus] | None = None,
        batch_size: int = 500,
        max_batches: int | None = None,
    ) -> int:
        """:meth:`delete_finished` in batches of ``batch_size``, each its own short transaction.

        Until a batch comes back short (none left, or the rest held by a concurrent caller) or
        ``max_batches`` batches ran. Returns how many runs were deleted.

        Raises:
            InvalidOption: as for :meth:`delete_finished`; ``max_batches`` not positive.
        """
        chosen = finished_statuses(statuses)
        positive_limit(batch_size, "batch_size")
        if max_batches is not None:
            positive_limit(max_batches, "max_batches")
        deleted = batches = 0
        while max_batches is None or batches < max_batches:
            count = self.delete_finished(before, statuses=chosen, limit=batch_size)
            deleted += count
            batches += 1
            if count < batch_size:
                break
        return deleted

    def pinned(self) -> contextlib.AbstractContextManager[None]:
        """Within this context, this thread's calls share one connection.

        So a pass's many small statements skip the pool. Backends without connections need not
        override it.
        """
        return contextlib.nullcontext()

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections."""

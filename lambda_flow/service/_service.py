"""``WorkflowService``: start runs, drive them, read them back, resume and cancel them."""

from __future__ import annotations

import base64
import os
import socket
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from ..core import (
    ANY_CODEC,
    DEFAULT_SCHEMA,
    ENV_SCHEMA,
    CallbackConflict,
    CallbackFailed,
    CallbackTimedOut,
    Clock,
    Duration,
    ErrorInfo,
    IdempotencyConflict,
    InvalidInput,
    InvalidOption,
    Run,
    RunCancelled,
    RunFailed,
    RunNotFound,
    RunStatus,
    RunSuspended,
    RunTimedOut,
    StepAttempt,
    StepStatus,
    SystemClock,
    check_input,
    check_storable,
    parse_duration,
    run_sync,
    setting,
)
from ..engine import Driver, Engine, Flow, LoggingObserver, Observer, parse_timeout
from ..store.base import CallbackOutcome, CallbackState, RunOutcome, Store, finished_statuses
from ..transport.base import JobQueue
from ..worker import driver_for

_MAX_SEARCH = 200
"""The longest ``search`` text a run listing takes (a run id is 36, a key rarely more)."""


class WorkflowService:
    """The entry point for starting and managing runs of one application's workflows.

    Without a queue (inline mode) ``start`` and ``resume`` run the workflow in the calling
    process until it completes, fails, is cancelled or suspends; sleeps wait on ``clock``.
    With a queue (remote mode) they store the run and queue its next job, then return.

    Args:
        flow: the application's registry of functions and workflows.
        store: where state lives; by default a :class:`PostgresStore` on
            ``LAMBDA_FLOW_DATABASE_URL`` or, without it, on an embedded Postgres.
        queue: a job queue for remote mode; None runs inline.
        clock: the source of time; ``lambda_flow.testing.TimeSkippingClock`` in tests.
        lease_ttl: how long an orchestration pass holds a run without writing.
        observer: told about every step attempt and finished run (logs, traces, metrics).
    """

    def __init__(
        self,
        flow: Flow,
        store: Store | None = None,
        queue: JobQueue | None = None,
        *,
        clock: Clock | None = None,
        lease_ttl: Duration = "30s",
        observer: Observer | None = None,
        driver: Driver | None = None,
    ) -> None:
        if store is None:
            from ..store.embedded import resolve_database_url
            from ..store.postgres import PostgresStore

            store = PostgresStore(
                resolve_database_url(), schema=setting(None, ENV_SCHEMA, DEFAULT_SCHEMA) or ""
            )
        if driver is not None and queue is not None and driver.queue is not queue:
            raise ValueError("give a queue or a driver, not both")
        self.driver: Driver = driver or driver_for(queue)
        self.flow = flow
        self.store = store
        self.queue: JobQueue | None = self.driver.queue
        self.clock: Clock = clock or SystemClock()
        self.engine = Engine(
            flow=flow,
            store=store,
            clock=self.clock,
            owner=f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}",
            driver=self.driver,
            lease_ttl=parse_duration(lease_ttl),
            observer=observer or LoggingObserver(),
        )

    # -- starting runs ---------------------------------------------------------------------
    def start(
        self,
        name: str,
        input: Any = None,
        *,
        idempotency_key: str | None = None,
        run_timeout: Duration | None = None,
    ) -> str:
        """Start a run of workflow ``name`` and return its id.

        Inline mode runs it here until it completes, fails, is cancelled or suspends. With an
        ``idempotency_key`` used before for this workflow, the first run's id comes back and
        nothing runs again. ``run_timeout`` bounds the run (overriding the workflow's
        ``timeout``): past it the run fails with ``RunDeadlineExceeded``.

        Raises:
            WorkflowNotFound: no workflow has that name (nothing is written).
            InvalidInput: ``input`` fails the workflow's annotation (nothing is written);
                :class:`UnstorableInput` when it holds text the database cannot store (NUL,
                a lone surrogate), :class:`InputTooLarge` when its JSON is over
                ``MAX_INPUT_BYTES``.
            IdempotencyConflict: ``idempotency_key`` already started a run of this workflow
                with a different input (nothing is written).
            InvalidOption: ``run_timeout`` is not a positive duration (nothing is written).
        """
        run_id, created = self._create(name, input, idempotency_key, run_timeout)
        if created:
            self.driver.dispatch(self.engine, run_id)
        return run_id

    def fork(self, run_id: str, *, from_step: str, input: Any = None) -> str:
        """Start a new run of ``run_id``'s workflow that reuses its steps before ``from_step``.

        Every finished step the run recorded before step ``from_step`` (a step key, as the
        history shows it) is copied, with its attempts, into the new run, which replays them
        and runs from ``from_step`` on. The new run records where it came from
        (``Run.forked_from``). Inline mode runs it here like :meth:`start`; remote mode queues
        one pass.

        Args:
            run_id: the run to fork (in any status).
            from_step: the key of the first step to run again.
            input: the new run's input (validated like :meth:`start`'s); None keeps the
                source run's.

        Returns:
            The new run's id.

        Raises:
            RunNotFound: unknown run (nothing is written).
            InvalidOption: the run has no step ``from_step`` (nothing is written).
            InvalidInput: ``input`` fails the workflow's annotation (nothing is written).
        """
        source = self._require(run_id)
        definition = self.flow.get_workflow(source.workflow)
        stored = None
        if input is not None:
            stored = definition.validate_input(input)
            target = f"workflow {definition.name!r}"
            check_storable(input, target)
            check_input(stored, target)
        now = self.clock.now()
        limit = definition.timeout
        new_id = self.store.fork_run(
            source.id, from_step, stored, now, deadline=None if limit is None else now + limit
        )
        if new_id is None:
            if self.store.get_run(source.id) is None:  # pragma: no cover - deleted meanwhile
                raise RunNotFound(run_id)
            raise InvalidOption("from_step", f"run {source.id} has no step {from_step!r}")
        self.driver.dispatch(self.engine, new_id)
        return new_id

    def run_to_completion(
        self,
        name: str,
        input: Any = None,
        *,
        timeout: Duration | None = None,
        idempotency_key: str | None = None,
        run_timeout: Duration | None = None,
    ) -> Any:
        """Start a run and wait for its output (typed by the workflow's return annotation).

        ``timeout`` is how long the caller waits; ``run_timeout`` bounds the run itself (as in
        :meth:`start`).

        Raises:
            WorkflowNotFound, InvalidInput, IdempotencyConflict: as :meth:`start`.
            RunFailed, RunCancelled, RunSuspended: the run ended (or parked) without output.
            RunTimedOut: ``timeout`` passed first; the run itself goes on.
        """
        run = self.start_and_wait(
            name, input, timeout=timeout, idempotency_key=idempotency_key, run_timeout=run_timeout
        )
        return self._output(run.id)

    def start_and_wait(
        self,
        name: str,
        input: Any = None,
        *,
        timeout: Duration | None = None,
        idempotency_key: str | None = None,
        poll: Duration = "250ms",
        run_timeout: Duration | None = None,
    ) -> Run:
        """Start a run, wait up to ``timeout`` for it to leave ``running`` and return it.

        The run comes back as it then is: completed, failed, cancelled, suspended, or still
        running.

        Inline mode drives it here, stopping at the first timer past the deadline; remote mode
        polls the store every ``poll`` on the service's clock. ``timeout`` is how long the
        caller waits; ``run_timeout`` bounds the run itself (as in :meth:`start`).

        Raises:
            WorkflowNotFound, InvalidInput, IdempotencyConflict: as :meth:`start` (nothing is
                written).
        """
        deadline = None if timeout is None else self.clock.now() + parse_duration(timeout)
        run_id, created = self._create(name, input, idempotency_key, run_timeout)
        self.driver.start_and_wait(
            self.engine, run_id, created=created, deadline=deadline, poll=parse_duration(poll)
        )
        return self._require(run_id)

    def wait(self, run_id: str, *, timeout: Duration, poll: Duration = "250ms") -> Run:
        """Wait up to ``timeout`` for a run to leave ``running``; the run as it then is.

        Inline mode drives the run here (as :meth:`start_and_wait` does, stopping at the first
        timer past the deadline); remote mode looks at it every ``poll`` on the service's clock
        while the workers drive it. A run that is not running comes back at once.

        Raises:
            RunNotFound: unknown run.
            InvalidOption: ``timeout`` or ``poll`` is negative.
        """
        wait, every = parse_duration(timeout), parse_duration(poll)
        if wait < timedelta(0) or every <= timedelta(0):
            raise InvalidOption("timeout", "must not be negative (and poll must be positive)")
        run = self._require(run_id)
        if run.status is RunStatus.RUNNING and wait > timedelta(0):
            self.driver.wait(self.engine, run.id, deadline=self.clock.now() + wait, poll=every)
            run = self._require(run.id)
        return run

    def _create(
        self,
        name: str,
        input: Any,
        idempotency_key: str | None,
        run_timeout: Duration | None = None,
    ) -> tuple[str, bool]:
        """Validate and store a new run (the one input path of every entry point).

        The input is checked here, once for every entry point, for what the database cannot
        hold (as given and as stored) and for its size; a reused idempotency key must come
        with the same stored input.
        """
        definition = self.flow.get_workflow(name)
        limit = parse_timeout(run_timeout, "run_timeout") or definition.timeout
        stored = definition.validate_input(input)
        target = f"workflow {definition.name!r}"
        check_storable(input, target)  # as given too: JSON dumping nulls NaN, mangles bad keys
        check_input(stored, target)
        now = self.clock.now()
        run_id, created = self.store.create_run(
            definition.name,
            stored,
            idempotency_key,
            now,
            deadline=None if limit is None else now + limit,
        )
        if not created and idempotency_key is not None:
            first = self.store.get_run(run_id)
            if first is not None and first.input != stored:  # dicts: key order does not matter
                raise IdempotencyConflict(definition.name, idempotency_key, run_id)
        return run_id, created

    def _output(self, run_id: str) -> Any:
        run = self._require(run_id)
        if run.status is RunStatus.COMPLETED:
            return self.flow.get_workflow(run.workflow).output.load(run.output)
        message = str(run.error) if run.error else ""
        if run.status is RunStatus.FAILED:
            raise RunFailed(run_id, message)
        if run.status is RunStatus.CANCELLED:
            raise RunCancelled(run_id, run.error.message if run.error else None)
        if run.status is RunStatus.SUSPENDED:
            raise RunSuspended(run_id, self._suspend_reason(run_id))
        raise RunTimedOut(run_id, run.status.value)

    def _suspend_reason(self, run_id: str) -> str | None:
        pending = [a for a in self.store.get_history(run_id) if a.kind == "suspend"]
        return pending[-1].step_name if pending else None

    # -- driving runs in this process ------------------------------------------------------
    async def run_pass(self, run_id: str) -> RunOutcome | None:
        """One orchestration pass of ``run_id``, if its lease can be taken.

        Returns the outcome, or None when the run is not running or another pass holds it.
        """
        return await self.engine.run_pass(run_id)

    def orchestrate(self, run_id: str) -> RunOutcome | None:
        """Remote mode: run passes of ``run_id`` here until it finishes or parks.

        Its next timer is queued. None when the run is not running or another pass holds it.
        """
        return run_sync(self.continue_run(run_id))

    async def continue_run(self, run_id: str) -> RunOutcome | None:
        """Async form of :meth:`orchestrate`."""
        return await self.engine.continue_run(run_id)

    # -- reading ---------------------------------------------------------------------------
    def get_run(self, run_id: str) -> Run | None:
        """The run, or None for an unknown id."""
        return self.store.get_run(run_id)

    def _require(self, run_id: str) -> Run:
        run = self.store.get_run(run_id)
        if run is None:
            raise RunNotFound(run_id)
        return run

    def get_run_history(self, run_id: str) -> list[StepAttempt]:
        """Every attempt of every step, oldest first.

        Raises:
            RunNotFound: unknown run.
        """
        history = self.store.get_history(run_id)
        if not history:
            self._require(run_id)
        return history

    def export_run(self, run_id: str) -> dict[str, Any]:
        """The run and all its steps as JSON-safe data, for ``lambda_flow.testing.replay_history``.

        Raises:
            RunNotFound: unknown run.
        """
        from ..engine import export_run

        return export_run(self.store, run_id)

    def list_runs(
        self,
        *,
        workflow: str | None = None,
        status: RunStatus | str | None = None,
        limit: int = 50,
        cursor: str | None = None,
        summary: bool = False,
        parent_id: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        search: str | None = None,
    ) -> list[Run]:
        """Runs newest first. Pass ``cursor=service.cursor_after(runs[-1])`` for the next page.

        With ``summary`` the store does not read inputs and outputs: they come back as None.
        ``parent_id`` lists the child runs that run started (``wf.child``, ``wf.start_child``).
        ``created_after`` (inclusive) and ``created_before`` (exclusive) bound the creation
        time (timezone-aware); ``search`` matches a run id or an idempotency key, whole or
        their beginning.

        Raises:
            InvalidInput: an unknown status, a limit outside 1..1000, a malformed cursor, parent
                id or time bound, or a search over 200 characters.
        """
        self._check_run_filters(parent_id, created_after, created_before, search, workflow)
        if status is not None and status not in RunStatus._value2member_map_:
            raise InvalidInput(
                "runs filter",
                [{"loc": ["status"], "msg": f"unknown status {status!r}; expected one of "
                  + ", ".join(s.value for s in RunStatus)}],
            )  # fmt: skip
        if not 1 <= limit <= 1000:
            raise InvalidInput("runs filter", [{"loc": ["limit"], "msg": "must be 1..1000"}])
        return self.store.list_runs(
            workflow=workflow,
            status=None if status is None else RunStatus(status),
            limit=limit,
            before=None if cursor is None else _decode_cursor(cursor),
            summary=summary,
            parent_id=None if parent_id is None else str(uuid.UUID(str(parent_id))),
            created_after=created_after,
            created_before=created_before,
            search=search or None,
        )

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
        """How many runs match the filters of :meth:`list_runs` in each status.

        Each count stops past ``cap`` (a status with more counts ``cap + 1``), so the answer
        costs the same at a million stored runs.

        Raises:
            InvalidInput: a malformed parent id or time bound, or a search over 200 characters.
        """
        self._check_run_filters(parent_id, created_after, created_before, search, workflow)
        return self.store.count_runs(
            workflow=workflow,
            parent_id=None if parent_id is None else str(uuid.UUID(str(parent_id))),
            created_after=created_after,
            created_before=created_before,
            search=search or None,
            cap=cap,
        )

    @staticmethod
    def _check_run_filters(
        parent_id: object,
        created_after: object,
        created_before: object,
        search: object,
        workflow: object = None,
    ) -> None:
        problems: list[dict[str, Any]] = []
        if workflow is not None and (not isinstance(workflow, str) or "\x00" in workflow):
            problems.append({"loc": ["workflow"], "msg": "must be a workflow name (text)"})
        if parent_id is not None:
            try:
                uuid.UUID(str(parent_id))
            except ValueError:
                problems.append({"loc": ["parent_id"], "msg": "must be a run id (a UUID)"})
        for name, bound in (("created_after", created_after), ("created_before", created_before)):
            if bound is not None and (not isinstance(bound, datetime) or bound.tzinfo is None):
                problems.append({"loc": [name], "msg": "must be a timezone-aware datetime"})
        if search is not None and (
            not isinstance(search, str) or len(search) > _MAX_SEARCH or "\x00" in search
        ):
            problems.append(
                {"loc": ["search"], "msg": f"must be text of at most {_MAX_SEARCH} characters"}
            )
        if problems:
            raise InvalidInput("runs filter", problems)

    @staticmethod
    def cursor_after(run: Run) -> str:
        """An opaque cursor continuing a listing after ``run``."""
        raw = f"{run.created_at.isoformat()}|{run.id}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    # -- operator actions ------------------------------------------------------------------
    def resume(self, run_id: str, payload: Any = None) -> Run:
        """Resume a suspended run (or drive a running one whose process stopped).

        ``payload`` is what the awaited ``wf.suspend`` returns (an approval's decision, say).
        Inline mode runs the run here until it finishes or parks again. A suspended run past
        its deadline is failed with ``RunDeadlineExceeded`` instead of resumed (and returned).

        Raises:
            RunNotFound: unknown run.
            InvalidRunState: the run has already finished.
            InvalidInput: ``payload`` cannot be stored (nothing is written).
        """
        if payload is not None:
            _check_payload(payload, "resume payload")
        now = self.clock.now()
        if self.store.fail_overdue(now, run_id=run_id, limit=1):
            return self._require(run_id)  # past its deadline: failed, not resumed
        self.store.resume(run_id, now, payload)
        self.driver.dispatch(self.engine, run_id)
        return self._require(run_id)

    # -- callbacks ---------------------------------------------------------------------------
    def complete_callback(self, callback_id: str, payload: Any = None) -> None:
        """Complete a callback with ``payload``: the awaiting ``cb.result()`` returns it.

        Idempotent: the same payload again is accepted again, whenever it comes. Inline mode
        drives the run here until it rests; remote mode queues one pass. In remote mode a
        first completion is one SQL statement (a repeat reads the callback once more).

        Raises:
            CallbackNotFound: no callback has this id.
            CallbackConflict: it was completed with another payload (or failed), timed out, or
                its run ended without it; nothing changed.
            InvalidInput: ``payload`` cannot be stored (nothing is written).
        """
        _check_payload(payload, f"payload of callback {callback_id!r}")
        outcome = CallbackOutcome(StepStatus.SUCCEEDED, result=ANY_CODEC.dump(payload))
        self._settle_callback(callback_id, outcome)

    def fail_callback(self, callback_id: str, error: str, *, error_type: str | None = None) -> None:
        """Fail a callback: the awaiting ``cb.result()`` raises ``CallbackFailed``.

        ``error`` and ``error_type`` (default ``"CallbackFailed"``) become its ``error_message``
        and ``error_type``. Idempotent like :meth:`complete_callback`.

        Raises:
            CallbackNotFound, CallbackConflict: as :meth:`complete_callback`.
            InvalidInput: ``error`` is not a non-empty string (nothing is written).
        """
        problems = []
        if not isinstance(error, str) or not error:
            problems.append({"loc": ["error"], "msg": "must be a non-empty string"})
        if error_type is not None and (not isinstance(error_type, str) or not error_type):
            problems.append({"loc": ["type"], "msg": "must be a non-empty string"})
        if problems:
            raise InvalidInput(f"failure of callback {callback_id!r}", problems)
        check_storable({"error": error, "type": error_type}, f"failure of callback {callback_id!r}")
        info = ErrorInfo(type=error_type or CallbackFailed.__name__, message=error)
        self._settle_callback(callback_id, CallbackOutcome(StepStatus.FAILED, error=info))

    def find_callback(self, callback_id: str) -> CallbackState:
        """The callback's step as it is: its run, status, result or error and deadline.

        Raises:
            CallbackNotFound: no callback has this id.
        """
        _check_callback_id(callback_id)
        return self.store.find_callback(callback_id)

    def heartbeat_callback(self, callback_id: str) -> None:
        """Tell a waiting callback its outside party is alive: its heartbeat deadline moves.

        Never drives the run.

        Raises:
            CallbackNotFound: no callback has this id.
            CallbackConflict: it is no longer waiting (completed, timed out, run ended).
        """
        _check_callback_id(callback_id)
        state = self.store.heartbeat_callback(callback_id, self.clock.now())
        if not state.changed:
            raise CallbackConflict(callback_id, _not_waiting(state, self.clock.now()))

    def _settle_callback(self, callback_id: str, outcome: CallbackOutcome) -> None:
        _check_callback_id(callback_id)
        state = self.store.complete_callback(callback_id, outcome, self.clock.now())
        if state.changed:
            if state.run_status is RunStatus.RUNNING:
                self.driver.dispatch(self.engine, state.run_id)
            return
        if state.status is outcome.status and (
            state.result == outcome.result
            if outcome.status is StepStatus.SUCCEEDED
            else _same_error(state.error, outcome.error)
        ):
            return  # the same completion again: answered as the first time
        raise CallbackConflict(callback_id, _not_waiting(state, self.clock.now()))

    def cancel(
        self, run_id: str, reason: str | None = None, *, cleanup_timeout: Duration | None = None
    ) -> Run:
        """Cancel a running or suspended run, letting its body clean up.

        The request is recorded and the steps the run waits on become ``cancelled`` (a worker's
        job for one is refused); the next pass raises :class:`WorkflowCancelled` into the body
        at the ``wf.*`` call it waits on. The body may catch it (or use ``finally``) and run
        more steps; the run ends ``cancelled`` (with ``reason``) when the body ends, however it
        ends, or when ``cleanup_timeout`` has passed. A pass still going finishes first; the
        cancellation reaches the body in the pass after it.

        The run's unfinished child runs (and theirs) are cancelled the same way, in the same
        statement. Inline mode drives the cleanups here (the children's first), like
        :meth:`start`, and returns the run as it then is (``cancelled`` unless the cleanup
        waits on something). Remote mode queues one orchestration message per run and returns
        the run with the cancellation requested (still ``running``).

        Raises:
            RunNotFound: unknown run.
            InvalidRunState: the run has already finished.
            UnstorableInput: ``reason`` holds text the database cannot store.
            InvalidOption: ``cleanup_timeout`` is not a positive duration.
        """
        if reason is not None:
            check_storable({"reason": reason}, "cancel")
        cleanup = parse_timeout(cleanup_timeout, "cleanup_timeout")
        now = self.clock.now()
        self.store.cancel(
            run_id, reason, now, cleanup_deadline=None if cleanup is None else now + cleanup
        )
        for child_id in self.store.cancelling_children(run_id):
            self.driver.dispatch(self.engine, child_id)
        self.driver.dispatch(self.engine, run_id)
        return self._require(run_id)

    # -- retention -------------------------------------------------------------------------
    def gc(
        self,
        older_than: Duration,
        *,
        statuses: Sequence[RunStatus | str] | None = None,
        batch_size: int = 500,
        max_batches: int | None = None,
        dry_run: bool = False,
    ) -> int:
        """Delete finished runs that ended more than ``older_than`` ago, with their steps.

        Runs that are ``running`` or ``suspended`` (asked to cancel or not) are never touched,
        however old. Deletes in batches of ``batch_size`` runs, each one short statement of its
        own (rows another process holds are skipped, never waited on), until none is left or
        ``max_batches`` batches ran. A deleted run's idempotency key is free again.

        Args:
            older_than: how long ago a run must have ended, e.g. ``"30d"``.
            statuses: some of ``completed``, ``failed``, ``cancelled`` (default: all three).
            batch_size: runs per batch.
            max_batches: the most batches (default: until none is left).
            dry_run: delete nothing; return how many runs would be deleted.

        Returns:
            How many runs were deleted (or would be).

        Raises:
            InvalidOption: ``older_than`` is not a positive duration, a status is unknown or not
                finished (named), ``batch_size`` or ``max_batches`` is not positive.
        """
        age = parse_timeout(older_than, "older_than")
        if age is None:
            raise InvalidOption("older_than", "give how long ago runs must have ended, e.g. 30d")
        before = self.clock.now() - age
        chosen = finished_statuses(statuses)
        if dry_run:
            return self.store.count_finished(before, statuses=chosen)
        return self.store.delete_finished_batches(
            before, statuses=chosen, batch_size=batch_size, max_batches=max_batches
        )

    def close(self) -> None:
        """Release the store's connections."""
        self.store.close()


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, run_id = raw.split("|", 1)
        return datetime.fromisoformat(created), str(uuid.UUID(run_id))
    except ValueError:
        raise InvalidInput(
            "runs filter", [{"loc": ["cursor"], "msg": "malformed cursor"}]
        ) from None


def _check_payload(payload: Any, target: str) -> None:
    check_storable(payload, target)
    check_input(ANY_CODEC.dump(payload), target)


def _check_callback_id(callback_id: str) -> None:
    if not isinstance(callback_id, str) or not callback_id:
        raise InvalidInput("callback id", [{"loc": ["callback_id"], "msg": "must be a string"}])


def _same_error(stored: ErrorInfo | None, given: ErrorInfo | None) -> bool:
    return (
        stored is not None
        and given is not None
        and (stored.type, stored.message) == (given.type, given.message)
    )


def _not_waiting(state: CallbackState, now: datetime) -> str:
    """Why a callback takes no completion (or heartbeat) now: for CallbackConflict."""
    if state.status is StepStatus.SUCCEEDED:
        return "it was already completed with a different payload"
    if state.status is StepStatus.FAILED:
        if state.error is not None and state.error.type == CallbackTimedOut.__name__:
            return "it timed out"
        return "it was already failed"
    if state.run_status.is_terminal or state.status is StepStatus.CANCELLED:
        return f"its run ended ({state.run_status.value}) without it"
    if state.deadline is not None and state.deadline <= now:
        return "it timed out"
    return f"it is {state.status.value}"  # pragma: no cover - a waiting callback is changed

"""One orchestration pass: replay a workflow body against its recorded steps.

The body runs as an asyncio task. Each ``wf.*`` call gets a deterministic key (its name plus an
occurrence number). A call whose key is recorded returns (or raises) what was stored; a new call
executes and its result is committed before the call returns, so it is durable before any later
step can start (invariant 2, docs/architecture.md).

New calls wait until every step recorded before this pass has been asked for again. If the body
settles (every branch waits on the engine) while a new call waits and a recorded step was never
asked for, the code diverged from the history: the run fails with a non-determinism error
(invariant 3, docs/architecture.md). This also keeps ``asyncio.gather`` branches free to
replay in any order.

The pass ends when the body returns or raises, or when every branch waits on something outside
the pass: a timer (sleep, retry delay), a suspension, or (remote mode) a queued job. Nothing holds
a database transaction or lock across user code; the run's lease has a fencing token that every
write checks (invariant 4, docs/architecture.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ..core import (
    ANY_CODEC,
    CallbackFailed,
    CallbackTimedOut,
    CancelSignal,
    Codec,
    ConditionNotMet,
    Duration,
    EngineSignal,
    ErrorInfo,
    FunctionNotFound,
    InvalidInput,
    LambdaFlowError,
    LeaseLost,
    NonDeterminismError,
    RawJson,
    RunDeadlineExceeded,
    RunStatus,
    StepFailed,
    StepInterrupted,
    StepKind,
    StepStatus,
    StepTimedOut,
    WorkflowCancelled,
    check_input,
    check_storable,
    codec_for,
    parse_duration,
    resolve_hints,
)
from ..store.base import (
    BatchPlan,
    ChildStart,
    LeasedRun,
    RunOutcome,
    StepClaim,
    StepRecord,
    StepWrite,
)
from ..transport.base import StepJob
from ._callback import Callback, ConditionPoll, callback_codec, option_duration
from ._child import ChildRun, child_failed, child_run_id, child_workflow
from ._context import (
    LiveCall,
    StepInfo,
    WorkflowContext,
    outside_any_step,
    running_step,
    scope_prefix,
)
from ._flow import call_sync
from ._retry import RetryPolicy, step_policy
from ._timeout import parse_timeout, within

if TYPE_CHECKING:
    from ._engine import Chain, Engine
    from ._flow import FunctionDef, WorkflowDef


class _Abort(EngineSignal):
    """Unwinds every branch when the pass must stop (divergence or a lost lease)."""


class StepSpec:
    """What one ``wf.do`` call asks for.

    Built for every call that is not a recorded success (a replayed success returns before
    one is built, see :meth:`OrchestrationPass.replay_do`); a plain slotted class holding what
    to call rather than a closure per call.

    An RPC step naming a function that is not registered has neither a function nor a
    callable: its attempt fails with :class:`~lambda_flow.FunctionNotFound` (see
    :attr:`unregistered`).
    """

    __slots__ = (
        "_call", "at_most_once", "codec", "function", "input", "kind", "retry", "target",
        "timeout",
    )  # fmt: skip

    def __init__(
        self,
        *,
        kind: StepKind,
        target: str | None,
        codec: Codec,
        input: Any,
        retry: RetryPolicy,
        function: FunctionDef | None,
        call: Callable[[], Any] | None,
        timeout: timedelta | None = None,
        at_most_once: bool = False,
    ) -> None:
        self.kind = kind
        self.target = target
        self.codec = codec
        self.input = input
        self.retry = retry
        """The step's retry policy (the most specific one given)."""
        self.timeout = timeout
        """How long one attempt may run (None: no limit)."""
        self.at_most_once = at_most_once
        """Commit each attempt's start before running it (never run an attempt twice)."""
        self.function = function
        """The registered function of an RPC step."""
        self._call = call
        """The callable of an inline step."""

    @property
    def unregistered(self) -> bool:
        """An RPC step whose function (named by :attr:`target`) is not registered."""
        return self.function is None and self._call is None

    async def invoke(self) -> Any:
        """Run one attempt; an inline step's result comes back JSON-safe.

        Sync code runs in a worker thread, so a blocking step never holds up the event loop
        (other branches of the pass, the lease's heartbeat).
        """
        if self.function is not None:
            return await self.function.invoke(self.input)
        call = self._call
        if call is None:
            raise FunctionNotFound(self.target or "")
        result = call() if inspect.iscoroutinefunction(call) else await call_sync(call)
        if inspect.isawaitable(result):
            result = await result
        return self.codec.dump(result)


class StepOptions:
    """The options of one ``wf.do`` call, checked before anything is recorded."""

    __slots__ = ("_retries", "_retry", "_retry_delay", "at_most_once", "timeout")

    def __init__(
        self,
        retry: RetryPolicy | None,
        retries: int | None,
        retry_delay: Duration | None,
        timeout: Duration | None,
        at_most_once: bool,
    ) -> None:
        self._retry = retry
        self._retries = retries
        self._retry_delay = retry_delay
        self.timeout = parse_timeout(timeout)
        self.at_most_once = bool(at_most_once)
        step_policy(retry, retries, retry_delay)  # conflicts and bad values fail here

    def policy(self, *defaults: RetryPolicy | None) -> RetryPolicy:
        """The step's policy: the call's own, else the first of ``defaults`` given."""
        return step_policy(self._retry, self._retries, self._retry_delay, *defaults)


_NO_OPTIONS = StepOptions(None, None, None, None, at_most_once=False)
_AT_MOST_ONCE = StepOptions(None, None, None, None, at_most_once=True)


_INLINE_ANY: tuple[StepKind, str | None, Codec] = (StepKind.INLINE, None, ANY_CODEC)


def _step_options(
    retry: RetryPolicy | None,
    retries: int | None,
    retry_delay: Duration | None,
    timeout: Duration | None,
    at_most_once: bool,
) -> StepOptions:
    """A ``wf.do`` call's options, checked (shared instances for the common ones)."""
    if retry is None and retries is None and retry_delay is None and timeout is None:
        return _AT_MOST_ONCE if at_most_once else _NO_OPTIONS
    return StepOptions(retry, retries, retry_delay, timeout, at_most_once)


class OrchestrationPass:
    """Replays one run's body once, recording what is new, until it finishes or waits."""

    _waits_outside = False
    """A branch waits for a callback's completion (inline mode stops driving there)."""

    def __init__(
        self,
        engine: Engine,
        definition: WorkflowDef,
        leased: LeasedRun,
        *,
        chain: Chain | None = None,
    ) -> None:
        self.engine = engine
        self._find_function = engine.flow.find_function
        self._chain = chain
        self.definition = definition
        self.lease = leased.lease
        self.run_id = leased.lease.run_id
        self._input = leased.input
        self._created_at = leased.created_at
        self._recorded = leased.steps
        # Steps recorded before this pass that the body has not asked for yet, oldest first.
        self._unclaimed, self._next_position = _in_order(leased.steps)
        self._name_counts: dict[str, int] = {}
        self._used_keys: set[str] = set()
        self._parked: list[tuple[str, asyncio.Future[None]]] = []
        self._timers: dict[str, tuple[datetime, asyncio.Future[None]]] = {}
        self._suspended: list[str] = []
        self._external: set[str] = set()
        self._outbox: list[tuple[StepWrite, StepJob]] = []
        self._version = leased.version
        self._stale = False
        self._executing = 0
        self._epoch = 0
        self._changed: asyncio.Event | None = None
        self._fatal: NonDeterminismError | None = None
        self._lost = False
        self._cancel_reason: str | None = None
        self._cancelled = False
        self._wake_at: datetime | None = None
        self._closing = False
        """The pass is ending while the body waits: ``wf.*`` calls made as it unwinds (in a
        ``finally:``) must record and run nothing."""
        self._recovering = leased.recovering
        self._deadline = leased.deadline
        self._cancel_requested = leased.cancel_requested
        self._cancel_delivered = False
        if leased.cancel_requested:
            self._cancel_reason = leased.cancel_reason
        self._cleanup_deadline = leased.cleanup_deadline
        self.beyond_history: str | None = None
        """Replay-only: the first step the code asked for past the end of the history."""

        self._patches: dict[str, bool] = {}
        """What ``wf.patched`` answered for each patch (its scoped marker name) in this pass."""
        self._parent_id = leased.parent_id
        self._children: dict[str, str] = {
            key: step.child_run_id or child_run_id(self.run_id, key)
            for key, step in leased.steps.items()
            if step.kind is StepKind.CHILD and step.status is StepStatus.SCHEDULED
        }
        """The child runs this run waits for, by step key: asked to cancel if it ends first."""
        self._child_timers: set[str] = set()
        """Children driven here (inline mode) that rest on a timer past the parent's timeout."""

    @property
    def skipped(self) -> tuple[str, StepRecord] | None:
        """The first recorded step the body has not asked for (after the pass: skipped)."""
        return next(iter(self._unclaimed.items()), None)

    # -- the driver ------------------------------------------------------------------------
    async def run(self) -> RunOutcome | None:
        """Run the pass and commit its outcome; None when the lease was lost meanwhile."""
        expired = self._expired()
        if expired is not None:
            return self._finish(expired)
        self._changed = asyncio.Event()
        body = asyncio.create_task(self._body())
        body.add_done_callback(lambda _: self._touch())
        try:
            await self._drive(body)
        finally:
            # What the parked branches wait for, read before cancelling them unwinds it.
            wakes = [t[0] for t in self._timers.values()]
            wakes += [d for d in (self._deadline, self._cleanup_ends()) if d is not None]
            self._wake_at = min(wakes, default=None)
            if not body.done():
                self._closing = True
                body.cancel()
            # The outcome below reads the task's state; here we only wait for it to unwind.
            with contextlib.suppress(
                asyncio.CancelledError, Exception, EngineSignal, WorkflowCancelled
            ):
                await body
        if self._lost:
            return None
        return self._finish(self._outcome(body))

    def _finish(self, outcome: RunOutcome) -> RunOutcome | None:
        """Commit the pass's outcome (and its outbox); None when the lease was lost."""
        # Jobs of a run that just ended are dropped: they could only be refused by the worker.
        outbox = [] if outcome.status.is_terminal else self._outbox
        try:
            if self._chains(outcome, outbox):
                version = self._finish_chained(outcome, outbox[0][0])
                outbox = []
            else:
                version = self.engine.store.finish_pass(
                    self.lease,
                    outcome,
                    [w for w, _ in outbox],
                    self.engine.clock.now(),
                    seen_version=None if self._stale else self._version,
                    cancel_seen=self._cancel_requested,
                )
        except LeaseLost:
            return None
        outcome = self._unseen_cancel(outcome, version)
        if outcome.status.is_terminal:
            woken = [*self._children.values()]
            if self._parent_id is not None:
                woken.append(self._parent_id)
            outcome = replace(outcome, wake_runs=tuple(woken))
        if outbox:
            self.engine.driver.send_steps([job for _, job in outbox])
        if outcome.status is not RunStatus.RUNNING:
            elapsed = (self.engine.clock.now() - self._created_at).total_seconds()
            self.engine.observer.run_finished(
                self.run_id, self.definition.name, outcome.status, elapsed
            )
        stale = self._stale or version != self._version + 1
        return replace(outcome, changed_meanwhile=stale) if stale else outcome

    def _chains(self, outcome: RunOutcome, outbox: Sequence[tuple[StepWrite, StepJob]]) -> bool:
        """Whether this pass hands its one new job to the worker running it (a chained step)."""
        return (
            self._chain is not None
            and self._chain.claimed is None
            and outcome.status is RunStatus.RUNNING
            and len(outbox) == 1
        )

    def _finish_chained(self, outcome: RunOutcome, write: StepWrite) -> int:
        """Finish the pass claiming its one scheduled step for the chaining worker."""
        chain = self._chain
        if chain is None:  # pragma: no cover - checked by _chains
            raise RuntimeError("no chain")
        now = self.engine.clock.now()
        until = now + chain.step_lease
        if write.timeout_ms is not None:  # as claim_step: at least the timeout plus 30s
            until = max(until, now + timedelta(milliseconds=write.timeout_ms + 30_000))
        claimed = replace(
            write, status=StepStatus.RUNNING, attempt_status=StepStatus.RUNNING,
            started_at=now, lease_owner=self.engine.owner, lease_expires_at=until,
        )  # fmt: skip
        version, token = self.engine.store.finish_pass_claiming(
            self.lease, outcome, [claimed], now, claim_key=write.key,
            seen_version=None if self._stale else self._version,
            cancel_seen=self._cancel_requested,
        )  # fmt: skip
        chain.claimed = StepClaim(
            run_id=self.run_id, workflow=self.definition.name, step_key=write.key,
            name=write.name, attempt=write.attempt, target=write.target or "",
            input=write.input, token=token, max_attempts=write.max_attempts,
            retry_delay_ms=write.retry_delay_ms, started_at=now,
            retry_policy=write.retry_policy, timeout_ms=write.timeout_ms,
        )  # fmt: skip
        return version

    def _unseen_cancel(self, outcome: RunOutcome, version: int) -> RunOutcome:
        """The outcome as stored, after an unseen cancel request.

        A cancel request made after the pass's last write kept a suspension ``running``
        (``finish_pass``), so that the pass that follows delivers it.
        """
        if outcome.status is not RunStatus.SUSPENDED or version == self._version + 1:
            return outcome
        if not self._cancel_requested:
            self._learn_cancel()
        if not self._cancel_requested:
            return outcome
        return replace(outcome, status=RunStatus.RUNNING, wake_at=None)

    def _cleanup_ends(self) -> datetime | None:
        return self._cleanup_deadline if self._cancel_requested else None

    def _expired(self) -> RunOutcome | None:
        """The run's end without running its body: its cleanup or its deadline ran out."""
        now = self.engine.clock.now()
        cleanup = self._cleanup_ends()
        if cleanup is not None and now >= cleanup:
            return self._cancelled_outcome()
        if self._deadline is not None and now >= self._deadline and not self._cancel_requested:
            error = ErrorInfo(
                type=RunDeadlineExceeded.__name__,
                message=f"run {self.run_id} went past its deadline ({self._deadline.isoformat()})",
            )
            return RunOutcome(RunStatus.FAILED, error=error)
        return None

    def _cancelled_outcome(self) -> RunOutcome:
        message = self._cancel_reason or (
            "cancelled" if self._cancel_requested else "cancelled by the workflow"
        )
        return RunOutcome(RunStatus.CANCELLED, error=ErrorInfo(type="Cancelled", message=message))

    def _deliver_cancel(self) -> None:
        """Raise the run's cancellation into the body at the first call that would wait."""
        if self._cancel_requested and not self._cancel_delivered:
            raise self._cancelled_at()

    def _cancelled_at(self) -> WorkflowCancelled:
        """The cancellation to raise where the body waits (its steps there were cancelled)."""
        self._cancel_delivered = True
        return WorkflowCancelled(self._cancel_reason)

    async def _body(self) -> Any:
        # A body starts outside any scope and step, even when this pass runs inside another
        # run's (inline mode drives a child from its parent's pass).
        outside_any_step()
        return await self.engine.flow.run_body(self.definition, WorkflowContext(self), self._input)

    async def _drive(self, body: asyncio.Task[Any]) -> None:
        changed = self._changed
        if changed is None:  # pragma: no cover - run() sets it first
            raise RuntimeError("pass not started")
        heartbeat = self.engine.lease_ttl.total_seconds() / 3
        while not body.done() and self._fatal is None and not self._lost:
            if self._outbox and self._executing and await self._settled(busy_ok=True):
                self._flush_outbox()
            if self._executing == 0 and self._waiting() and await self._settled():
                if self._parked:
                    self._diverge_on_parked()
                    break
                if self._fire_due_timers():
                    continue
                break  # every branch waits on something outside this pass
            changed.clear()
            waits: set[asyncio.Future[Any]] = {asyncio.ensure_future(changed.wait())}
            if self._timers and self._executing:
                wake = min(t[0] for t in self._timers.values())
                waits.add(asyncio.ensure_future(self.engine.clock.sleep_until(wake)))
            done, pending = await asyncio.wait(
                waits, timeout=heartbeat, return_when=asyncio.FIRST_COMPLETED
            )
            for task in pending:
                task.cancel()
            if not done and self._executing:
                self._renew_lease()
            if self._timers and self._executing:
                self._fire_due_timers()

    def _waiting(self) -> bool:
        return bool(self._timers or self._parked or self._suspended or self._external)

    def _flush_outbox(self) -> None:
        """Commit the scheduled steps, then send their jobs (the commit is the outbox)."""
        outbox, self._outbox = self._outbox, []
        self._commit([w for w, _ in outbox])
        self.engine.driver.send_steps([job for _, job in outbox])

    async def _settled(self, *, busy_ok: bool = False) -> bool:
        """True once every branch of the body is blocked on the engine.

        With ``busy_ok``, a branch blocked on a running step counts as blocked too.
        """
        loop = asyncio.get_running_loop()
        ready = getattr(loop, "_ready", None)  # CPython's run queue; absent on other loops
        quiet = 0
        while True:
            epoch = self._epoch
            await asyncio.sleep(0)
            if (self._executing and not busy_ok) or self._fatal is not None or self._lost:
                return False
            if epoch != self._epoch:
                quiet = 0
                continue
            quiet += 1
            if (ready is not None and not ready) or quiet >= 50:
                return True

    def _touch(self) -> None:
        self._epoch += 1
        if self._changed is not None:
            self._changed.set()

    def _fire_due_timers(self) -> bool:
        now = self.engine.clock.now()
        due = [fut for when, fut in self._timers.values() if when <= now and not fut.done()]
        for fut in due:
            fut.set_result(None)
        return bool(due)

    def _renew_lease(self) -> None:
        now = self.engine.clock.now()
        try:
            self.engine.store.renew(self.lease, now, now + self.engine.lease_ttl)
        except LeaseLost:
            self._lose()

    def _outcome(self, body: asyncio.Task[Any]) -> RunOutcome:
        if self._fatal is not None:
            return RunOutcome(RunStatus.FAILED, error=ErrorInfo.from_exception(self._fatal))
        if self._closing or body.cancelled():
            # The body only unwound because the pass ended while it waited, whatever it raised.
            status = RunStatus.SUSPENDED if self._suspended else RunStatus.RUNNING
            return RunOutcome(status, wake_at=self._wake_at, waits_outside=self._waits_outside)
        exc = body.exception()
        if exc is not None and not isinstance(exc, Exception | EngineSignal | WorkflowCancelled):
            # KeyboardInterrupt, SystemExit, a simulated crash: the process is going away and
            # must not record anything, exactly as if it had died here.
            raise exc
        if (
            self._cancelled
            or self._cancel_requested
            or isinstance(exc, CancelSignal | WorkflowCancelled)
        ):
            # Cancelled from outside: the body ended, however it ended (its cleanup done).
            return self._cancelled_outcome()
        if isinstance(exc, Exception):  # the body's own: its message may hold secrets too
            error = self.engine.flow.redacted(ErrorInfo.from_exception(exc))
            return RunOutcome(RunStatus.FAILED, error=error)
        if exc is not None:
            # KeyboardInterrupt, SystemExit, a simulated crash: the process is going away and
            # must not record anything, exactly as if it had died here.
            raise exc
        if self._unclaimed:
            key, record = next(iter(self._unclaimed.items()))
            diverged = NonDeterminismError(
                self.run_id,
                key,
                f"the workflow returned without reaching recorded {record.kind.value} step {key!r}",
            )
            return RunOutcome(RunStatus.FAILED, error=ErrorInfo.from_exception(diverged))
        codec = self.definition.output
        try:
            target = f"output of workflow {self.definition.name!r}"
            output = codec.dump(codec.validate(body.result(), target))
        except InvalidInput as invalid:
            return RunOutcome(RunStatus.FAILED, error=ErrorInfo.from_exception(invalid))
        return RunOutcome(RunStatus.COMPLETED, output=output)

    # -- keys, history and divergence ------------------------------------------------------
    def _key(self, name: str) -> str:
        if not isinstance(name, str) or not name:
            raise LambdaFlowError(f"a step name must be a non-empty string, got {name!r}")
        prefix = scope_prefix.get()
        if prefix:
            name = prefix + name  # inside a scope: ``<scope key>/<name>``
        counts, used = self._name_counts, self._used_keys
        n = counts.get(name, 0)
        key = f"{name}#{n}" if n else name
        while key in used:  # a literal "x#1" next to a repeated "x"
            n += 1
            key = f"{name}#{n}"
        counts[name] = n + 1
        used.add(key)
        self._epoch += 1
        return key

    def _claim(self, key: str, kind: StepKind, target: str | None) -> StepRecord | None:
        record = self._recorded.get(key)
        if record is None:
            return None
        self._unclaimed.pop(key, None)
        self._release_parked()
        if record.kind is not kind or record.target != target:
            raise self._diverge(
                key,
                f"the history has {_describe(record.kind, record.target)} there, "
                f"the code now asks for {_describe(kind, target)}",
            )
        return record

    async def _caught_up(self, key: str) -> None:
        """Hold a new step until every previously recorded step has been asked for again."""
        if not self._unclaimed:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._parked.append((key, fut))
        self._touch()
        await fut

    def _diverge_on_parked(self) -> None:
        expected, record = next(iter(self._unclaimed.items()))
        asked = self._parked[0][0]
        abort = self._diverge(
            expected,
            f"the code asks for a new step {asked!r} where the history has "
            f"{record.kind.value} step {expected!r}",
        )
        for _, fut in self._parked:
            if not fut.done():
                fut.set_exception(abort)

    def _diverge(self, key: str, message: str) -> _Abort:
        if self._fatal is None:
            self._fatal = NonDeterminismError(self.run_id, key, message)
        self._touch()
        return _Abort()

    def _check_open(self) -> None:
        """Refuse ``wf.*`` calls made while the body unwinds at the end of a pass.

        The run only waits, so a ``finally:`` must not record or run anything now (it will when
        the body really ends, in a later pass).
        """
        if self._closing:
            raise _Abort()

    def _lose(self) -> _Abort:
        self._lost = True
        self._touch()
        return _Abort()

    def _new_record(self, key: str, name: str, kind: StepKind, target: str | None) -> StepRecord:
        position = self._next_position
        self._next_position += 1
        return StepRecord(
            key=key, name=name, position=position, kind=kind, target=target,
            status=StepStatus.PENDING, attempt=0,
        )  # fmt: skip

    def _write(self, record: StepRecord, attempt_status: StepStatus, **changes: Any) -> StepRecord:
        """Apply ``changes`` to the step and commit it with its attempt's history row.

        ``started_at``, ``finished_at`` and ``input`` go to the write only, not the record.
        """
        extra = {k: changes.pop(k) for k in ("started_at", "finished_at", "input") if k in changes}
        record = replace(record, **changes)
        self._commit((_step_write(record, attempt_status, **extra),))
        return record

    def _commit(self, writes: Sequence[StepWrite]) -> None:
        now = self.engine.clock.now()
        try:
            version = self.engine.store.write_steps(
                self.lease, writes, now, now + self.engine.lease_ttl
            )
        except LeaseLost:
            raise self._lose() from None
        self._saw_version(version)

    def _saw_version(self, version: int) -> None:
        """Note the run's version after this pass's own write."""
        if version != self._version + 1:
            self._stale = True  # a worker stored a result meanwhile: another pass must follow
            if not self._cancel_requested:
                self._learn_cancel()
        self._version = version

    def _time_out(self, record: StepRecord, error: ErrorInfo, now: datetime) -> StepRecord | None:
        """Record a callback's timeout, fenced on it still waiting past its deadline.

        None when it no longer does (a completion or a heartbeat came since the pass loaded
        it): nothing was written, and the run counts as changed meanwhile, so another pass
        follows and reads the step as it now is.
        """
        timed_out = replace(record, status=StepStatus.FAILED, error=error, wake_at=None)
        write = _step_write(timed_out, StepStatus.FAILED, finished_at=now)
        try:
            version = self.engine.store.time_out_step(
                self.lease, write, now, now + self.engine.lease_ttl
            )
        except LeaseLost:
            raise self._lose() from None
        if version is None:
            self._stale = True
            return None
        self._saw_version(version)
        return timed_out

    def _learn_cancel(self) -> None:
        """Someone else wrote meanwhile: if it was a cancellation, the body gets it from now on.

        At its next ``wf.*`` call that would wait or run something new, as a later pass would.
        """
        request = self.engine.store.cancel_request(self.run_id)
        if request is not None:
            self._cancel_requested = True
            self._cancel_reason, self._cleanup_deadline = request

    async def _wait_until(self, key: str, when: datetime) -> None:
        if when <= self.engine.clock.now():
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._timers[key] = (when, fut)
        self._touch()
        try:
            await fut
        finally:
            self._timers.pop(key, None)

    # -- wf.do -----------------------------------------------------------------------------
    def _target(self, name: str, target: str | Callable[..., Any], data: Any) -> _Target:
        """What a ``wf.do`` call's target is, as replay compares it: kind, name, codec.

        Cheap and cached (replaying 10,000 steps asks 10,000 times); :meth:`_spec` builds the
        rest when the step has to run.
        """
        flow = self.engine.flow
        if isinstance(target, str):
            function = flow.functions.get(target)
            if function is None:
                return StepKind.RPC, target, ANY_CODEC
            return StepKind.RPC, function.name, function.output
        function = flow.find_function(target)
        if function is not None:
            return StepKind.RPC, function.name, function.output
        if not callable(target):
            raise LambdaFlowError(
                f"step {name!r}: target must be a function name, a registered function or a "
                f"callable, got {type(target).__name__}"
            )
        if data is not None:
            raise LambdaFlowError(
                f"step {name!r}: an inline step takes no data; register "
                f"{getattr(target, '__name__', 'the function')} with @flow.function to pass data"
            )
        return StepKind.INLINE, None, _inline_codec(target)

    def _spec(
        self,
        name: str,
        target: str | Callable[..., Any],
        data: Any,
        options: StepOptions,
    ) -> StepSpec:
        flow = self.engine.flow
        if isinstance(target, str):
            function = flow.functions.get(target)
            if function is None:  # recorded as a failed attempt (FunctionNotFound) by do()
                return StepSpec(
                    kind=StepKind.RPC, target=target, codec=ANY_CODEC, input=ANY_CODEC.dump(data),
                    retry=options.policy(flow.default_retry), function=None, call=None,
                    timeout=options.timeout, at_most_once=options.at_most_once,
                )  # fmt: skip
        else:
            function = flow.find_function(target)
        if function is not None:
            payload = ANY_CODEC.dump(data)
            return StepSpec(
                kind=StepKind.RPC, target=function.name, codec=function.output, input=payload,
                retry=options.policy(function.retry, flow.default_retry), function=function,
                call=None, timeout=options.timeout, at_most_once=options.at_most_once,
            )  # fmt: skip
        if not callable(target):
            raise LambdaFlowError(
                f"step {name!r}: target must be a function name, a registered function or a "
                f"callable, got {type(target).__name__}"
            )
        if data is not None:
            raise LambdaFlowError(
                f"step {name!r}: an inline step takes no data; register "
                f"{getattr(target, '__name__', 'the function')} with @flow.function to pass data"
            )
        return StepSpec(
            kind=StepKind.INLINE, target=None, codec=_inline_codec(target), input=None,
            retry=options.policy(flow.default_retry), function=None, call=target,
            timeout=options.timeout, at_most_once=options.at_most_once,
        )  # fmt: skip

    async def do(
        self,
        name: str,
        target: str | Callable[..., Any],
        data: Any,
        *,
        retries: int | None = None,
        retry_delay: Duration | None = None,
        retry: RetryPolicy | None = None,
        timeout: Duration | None = None,  # noqa: ASYNC109 - each attempt's, not this call's
        at_most_once: bool = False,
    ) -> Any:
        found = self.replay_do(
            name, target, data, retries, retry_delay, retry, timeout, at_most_once
        )
        if type(found) is not LiveCall:
            return found
        return await self.live_do(name, target, data, found)

    def replay_do(  # noqa: PLR0917 - wf.do's arguments, positional for speed
        self,
        name: str,
        target: str | Callable[..., Any],
        data: Any,
        retries: int | None,
        retry_delay: Duration | None,
        retry: RetryPolicy | None,
        timeout: Duration | None,
        at_most_once: bool,
    ) -> Any:
        """The synchronous half of :meth:`do`: a recorded success comes back from here.

        Replaying 10,000 steps calls it 10,000 times, so a recorded success returns without
        an awaitable of its own (``_claim`` inlined); anything else returns a
        :class:`LiveCall` that :meth:`live_do` carries on with (the key taken, the record
        claimed, the options checked).
        """
        if self._closing:
            raise _Abort()
        kind, target_name, codec = (
            _INLINE_ANY  # _target's usual case inlined: an unannotated inline step
            if data is None
            and callable(target)
            and not isinstance(target, str)
            and not getattr(target, "__annotations__", None)
            and self._find_function(target) is None
            else self._target(name, target, data)
        )
        options = (
            _NO_OPTIONS
            if retry is None
            and retries is None
            and retry_delay is None
            and timeout is None
            and not at_most_once
            else _step_options(retry, retries, retry_delay, timeout, at_most_once)
        )
        # _key inlined for a plain name (the same steps: the occurrence number, a literal
        # "x#1" skipped over); a name in a scope, a taken key, a bad name go through _key.
        n = self._name_counts.get(name, 0) if type(name) is str else 0
        key = f"{name}#{n}" if n else name
        if type(name) is not str or not name or key in self._used_keys or scope_prefix.get():
            key = self._key(name)
        else:
            self._name_counts[name] = n + 1
            self._used_keys.add(key)
            self._epoch += 1
        record = self._recorded.get(key)
        if record is None:
            return LiveCall(key, None, options)
        unclaimed = self._unclaimed
        unclaimed.pop(key, None)
        if not unclaimed and self._parked:
            self._release_parked()
        if record.kind is not kind or record.target != target_name:
            raise self._diverge(
                key,
                f"the history has {_describe(record.kind, record.target)} there, "
                f"the code now asks for {_describe(kind, target_name)}",
            )
        if record.status is StepStatus.SUCCEEDED:  # the replay path: nothing more to build
            result = record.result
            if codec is ANY_CODEC and type(result) is not RawJson:
                return result
            return codec.load(result)
        return LiveCall(key, record, options)

    async def live_do(
        self, name: str, target: str | Callable[..., Any], data: Any, live: LiveCall
    ) -> Any:
        """The rest of :meth:`do` for a step that is not a recorded success."""
        key, record = live.key, live.record
        spec = self._spec(name, target, data, live.options)
        if record is None:
            await self._caught_up(key)
            self._deliver_cancel()
            await self._history_ends(key)
            record = self._new_record(key, name, spec.kind, spec.target)
        elif record.status is StepStatus.FAILED:
            raise _step_failed(record)
        elif record.status is StepStatus.CANCELLED:
            raise self._cancelled_at()
        else:
            self._deliver_cancel()
            await self._history_ends(key)
        if spec.kind is StepKind.INLINE or (
            spec.unregistered and record.status is StepStatus.PENDING
        ):
            # An unregistered function's next attempt fails here at once, in either mode: no
            # worker would find the function either (an attempt already out with one still may).
            return await self.run_attempts(spec, record)
        return await self.engine.driver.rpc_step(self, spec, record)

    async def _history_ends(self, key: str) -> None:
        """In replay-only mode, the recorded history ends at this step: wait here for good."""
        if self.engine.replay_only:
            if self.beyond_history is None:
                self.beyond_history = key
            self._external.add(key)
            self._touch()
            await asyncio.get_running_loop().create_future()

    async def schedule_job(self, spec: StepSpec, record: StepRecord) -> Any:
        """Schedule the step's next attempt as a job and wait (across passes) for a worker."""
        if record.status is StepStatus.PENDING and record.wake_at is not None:
            await self._wait_until(record.key, record.wake_at)  # a retry delay
        if record.status is StepStatus.PENDING:
            attempt = record.attempt + 1
            scheduled = replace(
                record, status=StepStatus.SCHEDULED, attempt=attempt, error=None, wake_at=None
            )
            policy = spec.retry.to_json()
            write = _step_write(
                scheduled,
                StepStatus.SCHEDULED,
                input=spec.input,
                max_attempts=spec.retry.max_attempts,
                retry_delay_ms=policy["initial_delay_ms"],
                retry_policy=policy,
                timeout_ms=None if spec.timeout is None else _ms(spec.timeout),
            )
            self._outbox.append((write, StepJob(self.run_id, record.key, attempt)))
        # Scheduled or running: a worker stores the result, and a later pass returns it.
        self._external.add(record.key)
        self._touch()
        await asyncio.get_running_loop().create_future()

    async def run_attempts(self, spec: StepSpec, record: StepRecord) -> Any:
        """Run the step's attempts in this process until one succeeds or the policy stops."""
        clock = self.engine.clock
        observer = self.engine.observer
        while True:
            if record.status is StepStatus.RUNNING:
                record = self._interrupted(spec, record)
            if record.status is StepStatus.PENDING and record.wake_at is not None:
                await self._wait_until(record.key, record.wake_at)
            attempt = record.attempt + 1
            info = StepInfo(self.run_id, record.key, attempt, record.name, self.definition.name)
            started = clock.now()
            if self._recovering or spec.at_most_once:
                # Commit the start first, so that an attempt whose process dies is known to the
                # next pass, which counts it as interrupted and never runs it again (the pass
                # before died mid-way, or the step asked for at-most-once: invariant 10).
                record = self._write(
                    record, StepStatus.RUNNING, status=StepStatus.RUNNING, attempt=attempt,
                    error=None, wake_at=None, started_at=started, input=spec.input,
                )  # fmt: skip
            self._executing += 1
            self._epoch += 1
            try:
                with running_step(info), observer.step(info, spec.kind):
                    result = await within(
                        clock, spec.invoke(), spec.timeout, step_key=record.key, attempt=attempt
                    )
            except Exception as exc:  # a step's failure is data: record it, maybe retry
                self._finished_executing()
                record = self._attempt_failed(spec, record, info, exc, started)
                if record.status is StepStatus.FAILED:
                    raise _step_failed(record) from exc
                continue
            except BaseException:
                self._finished_executing()
                raise
            self._finished_executing()
            observer.step_finished(info, spec.kind, StepStatus.SUCCEEDED, retrying=False)
            record = self._write(
                record,
                StepStatus.SUCCEEDED,
                status=StepStatus.SUCCEEDED,
                attempt=attempt,
                result=result,
                error=None,
                wake_at=None,
                started_at=started,
                finished_at=clock.now(),
                input=spec.input,
            )
            return spec.codec.load(result)

    def _attempt_failed(
        self, spec: StepSpec, record: StepRecord, info: StepInfo, exc: Exception, started: datetime
    ) -> StepRecord:
        """Record a failed attempt; the policy decides (and the record keeps) the next wait."""
        finished = self.engine.clock.now()
        delay = spec.retry.next_delay(exc, info.attempt)
        error = self.engine.flow.step_error(exc, record.key)
        self.engine.observer.step_finished(
            info, spec.kind, StepStatus.FAILED, retrying=delay is not None, error=error
        )
        return self._write(
            record,
            StepStatus.FAILED,
            status=StepStatus.FAILED if delay is None else StepStatus.PENDING,
            attempt=info.attempt,
            error=error,
            result=None,
            wake_at=None if delay is None else finished + delay,
            started_at=started,
            finished_at=finished,
            input=spec.input,
        )

    def _interrupted(self, spec: StepSpec, record: StepRecord) -> StepRecord:
        """An attempt a dead pass started and never finished: count it as failed, once."""
        now = self.engine.clock.now()
        delay = spec.retry.next_delay(None, record.attempt)
        error = ErrorInfo(
            type=StepInterrupted.__name__,
            message=f"attempt {record.attempt} was started by a pass that never finished: "
            "its process stopped (killed, out of memory or timed out)",
            step_key=record.key,
        )
        record = self._write(
            record, StepStatus.FAILED,
            status=StepStatus.FAILED if delay is None else StepStatus.PENDING,
            error=error, result=None, wake_at=None if delay is None else now + delay,
            finished_at=now,
        )  # fmt: skip
        if delay is None:
            raise _step_failed(record)
        return record

    def _finished_executing(self) -> None:
        self._executing -= 1
        if self._waiting() or self._outbox:
            self._touch()

    # -- wf.sleep / wf.suspend / wf.cancel -------------------------------------------------
    async def sleep(self, name: str, duration: Duration) -> None:
        self._check_open()
        delta = parse_duration(duration)
        key = self._key(name)
        record = self._claim(key, StepKind.SLEEP, None)
        if record is None:
            await self._caught_up(key)
            self._deliver_cancel()
            await self._history_ends(key)
            now = self.engine.clock.now()
            record = self._write(
                self._new_record(key, name, StepKind.SLEEP, None),
                StepStatus.SCHEDULED,
                status=StepStatus.SCHEDULED,
                attempt=1,
                wake_at=now + delta,
                started_at=now,
            )
        elif record.status is StepStatus.SUCCEEDED:
            return
        elif record.status is StepStatus.CANCELLED:
            raise self._cancelled_at()
        else:
            self._deliver_cancel()
            await self._history_ends(key)
        await self._wait_until(key, record.wake_at or self.engine.clock.now())
        self._write(
            record,
            StepStatus.SUCCEEDED,
            status=StepStatus.SUCCEEDED,
            finished_at=self.engine.clock.now(),
        )

    async def suspend(self, reason: str) -> Any:
        self._check_open()
        key = self._key(reason)
        record = self._claim(key, StepKind.SUSPEND, None)
        if record is None:
            await self._caught_up(key)
            self._deliver_cancel()
            await self._history_ends(key)
            self._write(
                self._new_record(key, reason, StepKind.SUSPEND, None),
                StepStatus.PENDING,
                status=StepStatus.PENDING,
                attempt=1,
                started_at=self.engine.clock.now(),
            )
        elif record.status is StepStatus.SUCCEEDED:
            return record.result  # the payload resume() was given (None without one)
        elif record.status is StepStatus.CANCELLED:
            raise self._cancelled_at()
        else:
            self._deliver_cancel()
        self._suspended.append(key)
        self._touch()
        return await asyncio.get_running_loop().create_future()  # until resume(): a later pass

    async def cancel(self, reason: str | None) -> None:
        self._check_open()
        self._cancelled = True
        self._cancel_reason = reason
        raise CancelSignal(reason)

    # -- wf.patched / wf.deprecate_patch ---------------------------------------------------
    def patched(self, patch_id: str) -> bool:
        """True where the run takes the patched code path; records its marker when live.

        The marker's key is taken like any step's. If the history holds it, the run was
        recorded on patched code: True. Otherwise, a recorded step still waiting to be asked
        for means this point of the run was recorded by code without the patch: False, and
        the key is given back (nothing recorded). With the history exhausted the run is live
        here: the marker is recorded and the answer is True.
        """
        self._check_open()
        name = _patch_name(patch_id)
        asked = scope_prefix.get() + name
        if asked in self._patches:
            return self._patches[asked]
        key = self._key(name)
        if self._claim(key, StepKind.PATCH, None) is not None:
            answer = True
        elif self._unclaimed:  # replaying a point recorded before the patch existed
            self._release(name, key)
            answer = False
        else:
            if not self.engine.replay_only:
                now = self.engine.clock.now()
                self._write(
                    self._new_record(key, name, StepKind.PATCH, None), StepStatus.SUCCEEDED,
                    status=StepStatus.SUCCEEDED, attempt=1, started_at=now, finished_at=now,
                )  # fmt: skip
            answer = True
        self._patches[asked] = answer
        return answer

    def deprecate_patch(self, patch_id: str) -> None:
        """Accept a recorded marker of ``patch_id`` here, or none; record nothing."""
        self._check_open()
        name = _patch_name(patch_id)
        asked = scope_prefix.get() + name
        if asked in self._patches:
            return
        key = self._key(name)
        if self._claim(key, StepKind.PATCH, None) is None:
            self._release(name, key)
        self._patches[asked] = True

    def _release(self, name: str, key: str) -> None:
        """Give back a key that recorded nothing, so that the next call of ``name`` takes it."""
        self._used_keys.discard(key)
        self._name_counts[scope_prefix.get() + name] -= 1  # as _key counted it

    # -- wf.scope (and the batches of wf.map / wf.parallel) -------------------------------
    def context(self) -> WorkflowContext:
        """A context for code running inside a scope (its keys take the scope's prefix)."""
        return WorkflowContext(self)

    async def scope(
        self, name: str, body: Callable[[str], Awaitable[Any]], target: str | None
    ) -> Any:
        """Run ``body`` (given the scope's key) with its steps keyed ``<key>/<step>``.

        Its result is recorded as one step of kind ``scope`` once it returns; a replay that
        finds it returns it (as stored) without running ``body``, and counts the steps inside
        as asked for. An error inside propagates unchanged and records nothing: a replay runs
        ``body`` again, whose steps replay their recorded outcomes.
        """
        self._check_open()
        key = self._key(name)
        record = self._claim(key, StepKind.SCOPE, target)
        if record is not None and record.status is StepStatus.SUCCEEDED:
            self._claim_inside(key)
            return record.result
        token = scope_prefix.set(f"{key}/")
        try:
            result = ANY_CODEC.dump(await body(key))
        finally:
            scope_prefix.reset(token)
        await self._caught_up(key)
        await self._history_ends(key)
        now = self.engine.clock.now()
        self._write(
            self._new_record(key, scope_prefix.get() + name, StepKind.SCOPE, target),
            StepStatus.SUCCEEDED, status=StepStatus.SUCCEEDED, attempt=1, result=result,
            started_at=now, finished_at=now,
        )  # fmt: skip
        return result

    def _claim_inside(self, key: str) -> None:
        """Count the recorded steps of a finished scope as asked for (they do not replay)."""
        inner = f"{key}/"
        for step in [k for k in self._unclaimed if k.startswith(inner)]:
            self._unclaimed.pop(step)
            self._used_keys.add(step)
        self._release_parked()

    def recorded_under(self, key: str) -> set[str]:
        """The recorded keys under scope ``key``, and every scope key between (``a``, ``a/b``).

        A batch starts the items found here whatever its completion policy says: they were
        started when the history was recorded.
        """
        inner = f"{key}/"
        found: set[str] = set()
        for step in self._recorded:
            if step.startswith(inner):
                rest = step[len(inner) :]
                found.add(rest)
                found.update(rest[:i] for i, ch in enumerate(rest) if ch == "/")
        return found

    # -- wf.child / wf.start_child -------------------------------------------------------
    async def start_child(
        self,
        name: str,
        workflow: str | Callable[..., Any],
        input: Any,
        *,
        timeout: Duration | None,  # noqa: ASYNC109 - how long the parent waits, not this call
    ) -> ChildRun[Any]:
        """Start (once) a child run of ``workflow`` and return its handle.

        New: the child step and the child run are written in one statement, then the driver
        starts the child (inline mode runs it here until it rests). Recorded: the handle of the
        child started then; a child still running is driven again in inline mode.
        """
        self._check_open()
        definition = child_workflow(self.engine.flow, workflow)
        limit = option_duration("timeout", timeout)
        stored = definition.validate_input(input)
        target = f"input of child workflow {definition.name!r}"
        check_storable(input, target)
        check_input(stored, target)
        key = self._key(name)
        record = self._claim(key, StepKind.CHILD, definition.name)
        child_id = (record and record.child_run_id) or child_run_id(self.run_id, key)
        if record is None:
            await self._caught_up(key)
            self._deliver_cancel()
            await self._history_ends(key)
            record = self._start_child(
                key, name, definition, stored=stored, child_id=child_id, limit=limit
            )
            record = await self._drive_child(record, child_id, new=True)
        elif record.status is StepStatus.SCHEDULED and not self.engine.replay_only:
            record = await self._drive_child(record, child_id, new=False)
        return ChildRun(self, record, child_id, definition.output)

    def _start_child(
        self,
        key: str,
        name: str,
        definition: WorkflowDef,
        *,
        stored: Any,
        child_id: str,
        limit: timedelta | None,
    ) -> StepRecord:
        now = self.engine.clock.now()
        timeout_at = None if limit is None else now + limit
        record = replace(
            self._new_record(key, name, StepKind.CHILD, definition.name),
            status=StepStatus.SCHEDULED, attempt=1, wake_at=timeout_at,
        )  # fmt: skip
        write = _step_write(
            record, StepStatus.SCHEDULED, started_at=now,
            input={"run_id": child_id, "timeout_at": None if timeout_at is None else
                   timeout_at.isoformat()},
        )  # fmt: skip
        own_limit = definition.timeout
        child = ChildStart(
            run_id=child_id, workflow=definition.name, input=stored, parent_step=key,
            deadline=None if own_limit is None else now + own_limit,
        )  # fmt: skip
        try:
            version = self.engine.store.start_child(
                self.lease, write, child, now, now + self.engine.lease_ttl
            )
        except LeaseLost:
            raise self._lose() from None
        self._saw_version(version)
        self._children[key] = child_id
        return record

    async def _drive_child(self, record: StepRecord, child_id: str, *, new: bool) -> StepRecord:
        """Have the driver start the child; the step as it is after (inline: maybe ended)."""
        self._executing += 1  # the lease is renewed while a child runs here
        self._epoch += 1
        try:
            run = await self.engine.driver.start_child(self, child_id, record.wake_at, new=new)
        finally:
            self._finished_executing()
        if run is None or not run.status.is_terminal:
            if run is not None and run.status is RunStatus.RUNNING and run.wake_at is not None:
                # Driven here up to a timer past the parent's timeout: the parent waits on the
                # clock for that timeout (not for a call from outside), to cancel the child.
                self._child_timers.add(child_id)
            return record
        # The child's end was handed to the step by the statement that ended it (and bumped
        # this run's version: a pass follows this one, which reads it as stored).
        self._children.pop(record.key, None)
        if run.status is RunStatus.COMPLETED:
            return replace(record, status=StepStatus.SUCCEEDED, result=run.output, wake_at=None)
        error = run.error or ErrorInfo(type="Cancelled", message="cancelled")
        error = error.model_copy(update={"step_key": record.key})
        return replace(record, status=StepStatus.FAILED, error=error, wake_at=None)

    async def child_result(self, handle: ChildRun[Any]) -> Any:
        """The child's output as stored; parks the run until the child ends or times out."""
        self._check_open()
        record = handle._record
        if record.status is StepStatus.CANCELLED:
            raise self._cancelled_at()
        if record.status is StepStatus.SCHEDULED:
            record = handle._record = await self._waited(
                record,
                RunDeadlineExceeded.__name__,
                f"child run {handle.run_id} did not end before its timeout",
                outside=handle.run_id not in self._child_timers,
            )
            self._children.pop(record.key, None)
            await self.engine.driver.wake(self.engine, (handle.run_id,))  # its cleanup
        if record.status is StepStatus.FAILED:
            raise child_failed(record, handle.run_id)
        return record.result

    # -- chained batches (remote wf.map over a registered function) ----------------------
    def chains_batches(self) -> bool:
        """Whether a map over a registered function is chained here (remote mode, live)."""
        return self.engine.driver.chains_batches and not self.engine.replay_only

    def note_changed(self) -> None:
        """The run changed after this pass read it: another pass must follow this one."""
        self._stale = True

    def deliver_cancel(self) -> None:
        """Raise the run's cancellation here if it has not reached the body yet."""
        self._deliver_cancel()

    def claim_items(self, key: str, names: Sequence[str], target: str) -> list[StepRecord | None]:
        """The recorded item steps of batch ``key`` (None where an item has none), claimed."""
        found: list[StepRecord | None] = []
        for name in names:
            item = f"{key}/{name}"
            record = self._recorded.get(item)
            if record is not None:
                self._unclaimed.pop(item, None)
                self._used_keys.add(item)
                if record.kind is not StepKind.RPC or record.target != target:
                    raise self._diverge(
                        item,
                        f"the history has {_describe(record.kind, record.target)} there, "
                        f"the code now asks for {_describe(StepKind.RPC, target)}",
                    )
            found.append(record)
        self._release_parked()
        return found

    def _release_parked(self) -> None:
        if not self._unclaimed and self._parked:
            for _, fut in self._parked:
                if not fut.done():
                    fut.set_result(None)
            self._parked.clear()

    async def start_chained(self, plan: BatchPlan, step_name: str) -> None:
        """Record a chained batch's plan, its scope step and its first items; send their jobs.

        Item ``i`` takes position ``base + i`` and the batch's scope step ``base + total``, so
        the steps recorded after the batch come after every item, whichever worker starts it.
        Parks for good: the pass that follows the batch's end reads the outcome.
        """
        key = plan.batch_key
        await self._caught_up(key)
        self._deliver_cancel()
        await self._history_ends(key)
        base = self._next_position
        total = len(plan.names)
        self._next_position = base + total + 1
        plan = replace(plan, position_base=base)
        now = self.engine.clock.now()
        scope = StepRecord(
            key=key, name=step_name, position=base + total, kind=StepKind.SCOPE, target="map",
            status=StepStatus.SCHEDULED, attempt=1,
        )  # fmt: skip
        writes = [_step_write(scope, StepStatus.SCHEDULED, started_at=now)]
        jobs = []
        for index in range(plan.started):
            item = StepRecord(
                key=f"{key}/{plan.names[index]}", name=plan.names[index], position=base + index,
                kind=StepKind.RPC, target=plan.target, status=StepStatus.SCHEDULED, attempt=1,
            )  # fmt: skip
            writes.append(
                _step_write(
                    item,
                    StepStatus.SCHEDULED,
                    input=plan.items[index],
                    max_attempts=plan.max_attempts,
                    retry_delay_ms=plan.retry_delay_ms,
                    retry_policy=plan.retry_policy,
                    batch_key=key,
                )
            )
            jobs.append(StepJob(self.run_id, item.key, 1))
        try:
            version = self.engine.store.start_batch(
                self.lease, plan, writes, now, now + self.engine.lease_ttl
            )
        except LeaseLost:
            raise self._lose() from None
        self._saw_version(version)
        self.engine.driver.send_steps(jobs)  # lost before sent: the sweeper sends them again
        await self.wait_for_items([], None, key=key)

    async def wait_for_items(
        self,
        records: Sequence[StepRecord],
        retry: Callable[[StepRecord], StepSpec] | None,
        *,
        key: str,
    ) -> None:
        """Park on a chained batch: its workers carry it on.

        Items waiting for a retry are scheduled again (after their delay) as any step's next
        attempt is.
        """
        self._external.add(key)
        retries = []
        for record in records:
            if record.status is StepStatus.PENDING and retry is not None:
                retries.append(self.schedule_job(retry(record), record))
            elif record.status in (StepStatus.SCHEDULED, StepStatus.RUNNING):
                self._external.add(record.key)
        self._touch()
        await asyncio.gather(asyncio.get_running_loop().create_future(), *retries)

    # -- wf.callback / wf.wait_for_condition -----------------------------------------------
    async def callback(
        self,
        name: str,
        *,
        timeout: Duration | None,  # noqa: ASYNC109 - the callback's deadline, not this call's
        heartbeat_timeout: Duration | None,
        type: Any,
    ) -> Callback[Any]:
        """Record a callback step (once) and return its handle; its id survives replays."""
        self._check_open()
        limit = option_duration("timeout", timeout)
        beat = option_duration("heartbeat_timeout", heartbeat_timeout)
        codec = callback_codec(type)
        key = self._key(name)
        record = self._claim(key, StepKind.CALLBACK, None)
        if record is None:
            await self._caught_up(key)
            self._deliver_cancel()
            await self._history_ends(key)
            now = self.engine.clock.now()
            # 192 random bits behind a prefix: a bare token starts with "-" one time in 64,
            # which a shell command line (`lambda-flow callback succeed ID`) reads as an option
            callback_id = "cb_" + secrets.token_urlsafe(24)
            timeout_at = None if limit is None else now + limit
            deadlines = [d for d in (timeout_at, None if beat is None else now + beat) if d]
            record = self._write(
                replace(
                    self._new_record(key, name, StepKind.CALLBACK, None), callback_id=callback_id
                ),
                StepStatus.SCHEDULED,
                status=StepStatus.SCHEDULED,
                attempt=1,
                wake_at=min(deadlines, default=None),
                started_at=now,
                input={
                    "callback_id": callback_id,
                    "timeout_at": None if timeout_at is None else timeout_at.isoformat(),
                    "heartbeat_ms": None if beat is None else int(beat.total_seconds() * 1000),
                },
            )
        return Callback(self, record, codec)

    async def callback_result(self, cb: Callback[Any]) -> Any:
        """The callback's payload; parks the run (``running``) until it comes or times out."""
        self._check_open()
        record = cb._record
        if record.status is StepStatus.CANCELLED:
            raise self._cancelled_at()
        if record.status is StepStatus.SCHEDULED:
            record = cb._record = await self._waited(
                record,
                CallbackTimedOut.__name__,
                f"callback {record.name!r} was not completed before its deadline",
                detail=": its timeout or heartbeat timeout",
            )
        if record.status is StepStatus.FAILED:
            raise _callback_failed(record)
        try:
            return cb.codec.validate(record.result, f"payload of callback {record.name!r}")
        except InvalidInput as invalid:
            raise CallbackFailed(record.key, record.attempt, "InvalidInput", str(invalid)) from None

    async def _waited(
        self,
        record: StepRecord,
        error_type: str,
        message: str,
        *,
        detail: str = "",
        outside: bool = True,
    ) -> StepRecord:
        """A ``scheduled`` callback or child step: park until it ends, or record its timeout.

        Returns the step as timed out (failed with ``error_type``) once its deadline passed;
        parks for good while it has not, or when it ended since the pass loaded it (the fenced
        timeout wrote nothing: the pass that follows reads it).
        """
        self._deliver_cancel()
        await self._history_ends(record.key)
        now = self.engine.clock.now()
        deadline = record.wake_at
        if deadline is None or deadline > now:
            await self._wait_outside(record, outside=outside)
            raise AssertionError("unreachable")  # pragma: no cover - parks for good
        error = ErrorInfo(
            type=error_type,
            message=f"{message} ({deadline.isoformat()}{detail})",
            step_key=record.key,
        )
        timed_out = self._time_out(record, error, now)
        if timed_out is None:
            await self._wait_outside(replace(record, wake_at=None))
            raise AssertionError("unreachable")  # pragma: no cover - parks for good
        return timed_out

    async def _wait_outside(self, record: StepRecord, *, outside: bool = True) -> None:
        """Park until a later pass: the callback's completion comes from outside.

        Its deadline is a timer of the run (the run's ``wake_at``), so a pass follows when it
        passes; the pass then records the timeout. A completion meanwhile bumps the run's
        version, so the pass that saw it is followed by another one (invariant 5).
        """
        loop = asyncio.get_running_loop()
        if record.wake_at is not None:
            self._timers[record.key] = (record.wake_at, loop.create_future())
        self._external.add(record.key)
        self._waits_outside = self._waits_outside or outside
        self._touch()
        await loop.create_future()

    async def wait_for_condition(
        self,
        name: str,
        poll: ConditionPoll,
        initial_state: Any,
    ) -> Any:
        """Check, sleep durably, check again, until the condition holds; return the state."""
        self._check_open()
        key = self._key(name)
        record = self._claim(key, StepKind.CONDITION, poll.target)
        if record is None:
            await self._caught_up(key)
            record = self._new_record(key, name, StepKind.CONDITION, poll.target)
        elif record.status is StepStatus.CANCELLED:
            raise self._cancelled_at()
        while record.status is not StepStatus.SUCCEEDED:
            if record.status is StepStatus.FAILED:
                raise _condition_failed(record)
            self._deliver_cancel()
            await self._history_ends(key)
            if record.wake_at is not None:
                await self._wait_until(key, record.wake_at)
            record = await self._check_condition(poll, record, initial_state)
        return record.result

    async def _check_condition(
        self, poll: ConditionPoll, record: StepRecord, initial_state: Any
    ) -> StepRecord:
        """Run one check (one attempt) and record the state it returned."""
        attempt = record.attempt + 1
        state = ANY_CODEC.dump(initial_state) if record.attempt == 0 else record.result
        info = StepInfo(self.run_id, record.key, attempt, record.name, self.definition.name)
        started = self.engine.clock.now()
        self._executing += 1
        self._epoch += 1
        try:
            with running_step(info):
                new_state = await poll.run_check(state)
                done = poll.holds(new_state)
        except Exception as exc:  # a check's failure fails the step like any step's
            self._finished_executing()
            record = self._write(
                record, StepStatus.FAILED, status=StepStatus.FAILED, attempt=attempt,
                error=self.engine.flow.step_error(exc, record.key), result=None, wake_at=None,
                started_at=started, finished_at=self.engine.clock.now(), input=state,
            )  # fmt: skip
            raise _step_failed(record) from exc
        except BaseException:
            self._finished_executing()
            raise
        self._finished_executing()
        now = self.engine.clock.now()
        common: dict[str, Any] = {
            "attempt": attempt, "result": new_state, "started_at": started, "finished_at": now,
            "input": state,
        }  # fmt: skip
        if done:
            return self._write(
                record, StepStatus.SUCCEEDED, status=StepStatus.SUCCEEDED, error=None,
                wake_at=None, **common,
            )  # fmt: skip
        if poll.max_attempts is not None and attempt >= poll.max_attempts:
            plural = "check" if attempt == 1 else "checks"
            error = ErrorInfo(
                type=ConditionNotMet.__name__,
                message=f"condition {record.name!r} did not hold after {attempt} {plural}",
                step_key=record.key,
            )
            self._write(
                record, StepStatus.FAILED, status=StepStatus.FAILED, error=error, wake_at=None,
                **common,
            )  # fmt: skip
            raise ConditionNotMet(record.key, attempt, error.type, error.message)
        return self._write(
            record, StepStatus.SUCCEEDED, status=StepStatus.PENDING, error=None,
            wake_at=now + poll.delay(attempt), **common,
        )  # fmt: skip


def _step_write(record: StepRecord, attempt_status: StepStatus, **extra: Any) -> StepWrite:
    """The write that stores ``record`` and the history row of its current attempt."""
    return StepWrite(
        key=record.key,
        name=record.name,
        position=record.position,
        kind=record.kind,
        target=record.target,
        status=record.status,
        attempt=record.attempt,
        attempt_status=attempt_status,
        result=record.result,
        error=record.error,
        wake_at=record.wake_at,
        **extra,
    )


def _in_order(steps: dict[str, StepRecord]) -> tuple[dict[str, StepRecord], int]:
    """The steps by position (a copy), and the position after the last one.

    The store loads them in position order: they are sorted again only when they are not.
    """
    positions = [s.position for s in steps.values()]
    ordered = sorted(positions)
    if positions != ordered:
        steps = dict(sorted(steps.items(), key=lambda kv: kv[1].position))
    return dict(steps), (ordered[-1] + 1 if ordered else 0)


def _patch_name(patch_id: str) -> str:
    """The step name of a patch's marker (``patch:<id>``), so it never takes a step's key."""
    if not isinstance(patch_id, str) or not patch_id:
        raise LambdaFlowError(f"a patch id must be a non-empty string, got {patch_id!r}")
    return f"patch:{patch_id}"


def _annotated(fn: Callable[..., Any]) -> bool:
    return bool(getattr(fn, "__annotations__", None))


_Target = tuple[StepKind, str | None, Codec]

_INLINE_CODECS: dict[Any, Codec] = {}
"""The codec of an inline step's return annotation, by the code of its function: closures and
lambdas made anew on each call share their code (and their annotations)."""


def _inline_codec(fn: Callable[..., Any]) -> Codec:
    if not _annotated(fn):
        return ANY_CODEC
    code = getattr(fn, "__code__", None)
    if code is None:  # a callable object, a partial: not cached
        return codec_for(resolve_hints(fn), "return")
    codec = _INLINE_CODECS.get(code)
    if codec is None:
        codec = _INLINE_CODECS[code] = codec_for(resolve_hints(fn), "return")
    return codec


def _describe(kind: StepKind, target: str | None) -> str:
    if kind is StepKind.RPC:
        return f"an rpc step calling {target!r}"
    if kind is StepKind.CHILD:
        return f"a child step running workflow {target!r}"
    return f"a {kind.value} step"


def _step_failed(record: StepRecord) -> StepFailed:
    error = record.error or ErrorInfo(type="Error", message="unknown failure")
    kind = _STEP_FAILURES.get(error.type, StepFailed)
    return kind(record.key, record.attempt, error.type, error.message)


_STEP_FAILURES: dict[str, type[StepFailed]] = {
    StepInterrupted.__name__: StepInterrupted,
    StepTimedOut.__name__: StepTimedOut,
}
"""Failures the engine itself records, raised into the body as their own class."""


def _ms(value: timedelta) -> int:
    return int(value.total_seconds() * 1000)


def _callback_failed(record: StepRecord) -> StepFailed:
    """What a failed callback raises on every replay: timed out, or failed from outside."""
    error = record.error or ErrorInfo(type="Error", message="unknown failure")
    kind = CallbackTimedOut if error.type == CallbackTimedOut.__name__ else CallbackFailed
    return kind(record.key, record.attempt, error.type, error.message)


def _condition_failed(record: StepRecord) -> StepFailed:
    """What a failed condition raises: out of checks, or a check that raised."""
    error = record.error
    if error is not None and error.type == ConditionNotMet.__name__:
        return ConditionNotMet(record.key, record.attempt, error.type, error.message)
    return _step_failed(record)

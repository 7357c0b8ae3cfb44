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
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ..core import (
    ANY_CODEC,
    CancelSignal,
    Codec,
    Duration,
    EngineSignal,
    ErrorInfo,
    FunctionNotFound,
    InvalidInput,
    LambdaFlowError,
    LeaseLost,
    NonDeterminismError,
    RunStatus,
    StepFailed,
    StepInterrupted,
    StepKind,
    StepStatus,
    codec_for,
    parse_duration,
    resolve_hints,
)
from ..store.base import LeasedRun, RunOutcome, StepRecord, StepWrite
from ..transport.base import StepJob
from ._context import StepInfo, WorkflowContext, running_step
from ._flow import call_sync
from ._retry import is_final

if TYPE_CHECKING:
    from ._engine import Engine
    from ._flow import FunctionDef, WorkflowDef


class _Abort(EngineSignal):
    """Unwinds every branch when the pass must stop (divergence or a lost lease)."""


class StepSpec:
    """What one ``wf.do`` call asks for.

    Built for every call, replayed ones included (replaying 10,000 steps builds 10,000), so it
    is a plain slotted class and holds what to call rather than a closure per call.

    An RPC step naming a function that is not registered has neither a function nor a
    callable: its attempt fails with :class:`~lambda_flow.FunctionNotFound` (see
    :attr:`unregistered`).
    """

    __slots__ = ("_call", "codec", "function", "input", "kind", "retries", "retry_delay", "target")

    def __init__(
        self,
        *,
        kind: StepKind,
        target: str | None,
        codec: Codec,
        input: Any,
        retries: int,
        retry_delay: timedelta,
        function: FunctionDef | None,
        call: Callable[[], Any] | None,
    ) -> None:
        self.kind = kind
        self.target = target
        self.codec = codec
        self.input = input
        self.retries = retries
        self.retry_delay = retry_delay
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


_NO_DELAY = timedelta(0)


def _retry_delay(value: Duration) -> timedelta:
    """``parse_duration``, with the default (``0``) spared the parsing on every replayed step."""
    if value.__class__ is int and value == 0:
        return _NO_DELAY
    return parse_duration(value)


class OrchestrationPass:
    """Replays one run's body once, recording what is new, until it finishes or waits."""

    def __init__(self, engine: Engine, definition: WorkflowDef, leased: LeasedRun) -> None:
        self.engine = engine
        self.definition = definition
        self.lease = leased.lease
        self.run_id = leased.lease.run_id
        self._input = leased.input
        self._created_at = leased.created_at
        self._recorded = leased.steps
        # Steps recorded before this pass that the body has not asked for yet, oldest first.
        self._unclaimed = dict(sorted(leased.steps.items(), key=lambda kv: kv[1].position))
        self._next_position = max((s.position for s in leased.steps.values()), default=-1) + 1
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
        self.beyond_history: str | None = None
        """Replay-only: the first step the code asked for past the end of the history."""

    # -- the driver ------------------------------------------------------------------------
    async def run(self) -> RunOutcome | None:
        """Run the pass and commit its outcome; None when the lease was lost meanwhile."""
        self._changed = asyncio.Event()
        body = asyncio.create_task(self._body())
        body.add_done_callback(lambda _: self._touch())
        try:
            await self._drive(body)
        finally:
            # What the parked branches wait for, read before cancelling them unwinds it.
            self._wake_at = min((t[0] for t in self._timers.values()), default=None)
            if not body.done():
                self._closing = True
                body.cancel()
            # The outcome below reads the task's state; here we only wait for it to unwind.
            with contextlib.suppress(asyncio.CancelledError, Exception, EngineSignal):
                await body
        if self._lost:
            return None
        outcome = self._outcome(body)
        # Jobs of a run that just ended are dropped: they could only be refused by the worker.
        outbox = [] if outcome.status.is_terminal else self._outbox
        try:
            version = self.engine.store.finish_pass(
                self.lease,
                outcome,
                [w for w, _ in outbox],
                self.engine.clock.now(),
                seen_version=None if self._stale else self._version,
            )
        except LeaseLost:
            return None
        if outbox:
            self.engine.driver.send_steps([job for _, job in outbox])
        if outcome.status is not RunStatus.RUNNING:
            elapsed = (self.engine.clock.now() - self._created_at).total_seconds()
            self.engine.observer.run_finished(
                self.run_id, self.definition.name, outcome.status, elapsed
            )
        stale = self._stale or version != self._version + 1
        return replace(outcome, changed_meanwhile=stale) if stale else outcome

    async def _body(self) -> Any:
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
            return RunOutcome(status, wake_at=self._wake_at)
        exc = body.exception()
        if self._cancelled or isinstance(exc, CancelSignal):
            message = self._cancel_reason or "cancelled by the workflow"
            error = ErrorInfo(type="Cancelled", message=message)
            return RunOutcome(RunStatus.CANCELLED, error=error)
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
        n = self._name_counts.get(name, 0)
        key = name if n == 0 else f"{name}#{n}"
        while key in self._used_keys:  # a literal "x#1" next to a repeated "x"
            n += 1
            key = f"{name}#{n}"
        self._name_counts[name] = n + 1
        self._used_keys.add(key)
        self._epoch += 1
        return key

    def _claim(self, key: str, kind: StepKind, target: str | None) -> StepRecord | None:
        record = self._recorded.get(key)
        if record is None:
            return None
        self._unclaimed.pop(key, None)
        if not self._unclaimed and self._parked:
            for _, fut in self._parked:
                if not fut.done():
                    fut.set_result(None)
            self._parked.clear()
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
        if version != self._version + 1:
            self._stale = True  # a worker stored a result meanwhile: another pass must follow
        self._version = version

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
    def _spec(
        self,
        name: str,
        target: str | Callable[..., Any],
        data: Any,
        retries: int,
        retry_delay: Duration,
    ) -> StepSpec:
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise LambdaFlowError(
                f"step {name!r}: retries must be a whole number >= 0, got {retries!r}"
            )
        delay = _retry_delay(retry_delay)
        if isinstance(target, str):
            function = self.engine.flow.functions.get(target)
            if function is None:  # recorded as a failed attempt (FunctionNotFound) by do()
                return StepSpec(
                    kind=StepKind.RPC, target=target, codec=ANY_CODEC, input=ANY_CODEC.dump(data),
                    retries=retries, retry_delay=delay, function=None, call=None,
                )  # fmt: skip
        else:
            function = self.engine.flow.find_function(target)
        if function is not None:
            payload = ANY_CODEC.dump(data)
            return StepSpec(
                kind=StepKind.RPC, target=function.name, codec=function.output, input=payload,
                retries=retries, retry_delay=delay, function=function, call=None,
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
        codec = codec_for(resolve_hints(target), "return") if _annotated(target) else ANY_CODEC
        return StepSpec(
            kind=StepKind.INLINE, target=None, codec=codec, input=None, retries=retries,
            retry_delay=delay, function=None, call=target,
        )  # fmt: skip

    async def do(
        self,
        name: str,
        target: str | Callable[..., Any],
        data: Any,
        *,
        retries: int,
        retry_delay: Duration,
    ) -> Any:
        self._check_open()
        spec = self._spec(name, target, data, retries, retry_delay)
        key = self._key(name)
        record = self._claim(key, spec.kind, spec.target)
        if record is None:
            await self._caught_up(key)
            await self._history_ends(key)
            record = self._new_record(key, name, spec.kind, spec.target)
        elif record.status is StepStatus.SUCCEEDED:
            return spec.codec.load(record.result)
        elif record.status is StepStatus.FAILED:
            raise _step_failed(record)
        else:
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
            write = _step_write(
                scheduled,
                StepStatus.SCHEDULED,
                input=spec.input,
                max_attempts=spec.retries + 1,
                retry_delay_ms=int(spec.retry_delay.total_seconds() * 1000),
            )
            self._outbox.append((write, StepJob(self.run_id, record.key, attempt)))
        # Scheduled or running: a worker stores the result, and a later pass returns it.
        self._external.add(record.key)
        self._touch()
        await asyncio.get_running_loop().create_future()

    async def run_attempts(self, spec: StepSpec, record: StepRecord) -> Any:
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
            if self._recovering:
                # The pass before died mid-way: commit each start so that a step killing its
                # process is known to the next pass (which counts it as interrupted).
                record = self._write(
                    record, StepStatus.RUNNING, status=StepStatus.RUNNING, attempt=attempt,
                    error=None, wake_at=None, started_at=started, input=spec.input,
                )  # fmt: skip
            self._executing += 1
            self._epoch += 1
            try:
                with running_step(info), observer.step(info, spec.kind):
                    result = await spec.invoke()
            except Exception as exc:  # a step's failure is data: record it, maybe retry
                self._finished_executing()
                final = is_final(exc, attempt, spec.retries + 1)
                error = self.engine.flow.step_error(exc, record.key)
                observer.step_finished(
                    info, spec.kind, StepStatus.FAILED, retrying=not final, error=error
                )
                finished = clock.now()
                record = self._write(
                    record,
                    StepStatus.FAILED,
                    status=StepStatus.FAILED if final else StepStatus.PENDING,
                    attempt=attempt,
                    error=error,
                    result=None,
                    wake_at=None if final else finished + spec.retry_delay,
                    started_at=started,
                    finished_at=finished,
                    input=spec.input,
                )
                if final:
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

    def _interrupted(self, spec: StepSpec, record: StepRecord) -> StepRecord:
        """An attempt a dead pass started and never finished: count it as failed, once."""
        final = is_final(None, record.attempt, spec.retries + 1)
        now = self.engine.clock.now()
        error = ErrorInfo(
            type=StepInterrupted.__name__,
            message=f"attempt {record.attempt} was started by a pass that never finished: "
            "its process stopped (killed, out of memory or timed out)",
            step_key=record.key,
        )
        record = self._write(
            record, StepStatus.FAILED, status=StepStatus.FAILED if final else StepStatus.PENDING,
            error=error, result=None, wake_at=None if final else now + spec.retry_delay,
            finished_at=now,
        )  # fmt: skip
        if final:
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
        else:
            await self._history_ends(key)
        await self._wait_until(key, record.wake_at or self.engine.clock.now())
        self._write(
            record,
            StepStatus.SUCCEEDED,
            status=StepStatus.SUCCEEDED,
            finished_at=self.engine.clock.now(),
        )

    async def suspend(self, reason: str) -> None:
        self._check_open()
        key = self._key(reason)
        record = self._claim(key, StepKind.SUSPEND, None)
        if record is None:
            await self._caught_up(key)
            await self._history_ends(key)
            self._write(
                self._new_record(key, reason, StepKind.SUSPEND, None),
                StepStatus.PENDING,
                status=StepStatus.PENDING,
                attempt=1,
                started_at=self.engine.clock.now(),
            )
        elif record.status is StepStatus.SUCCEEDED:
            return
        self._suspended.append(key)
        self._touch()
        await asyncio.get_running_loop().create_future()  # until resume(): a later pass

    async def cancel(self, reason: str | None) -> None:
        self._check_open()
        self._cancelled = True
        self._cancel_reason = reason
        raise CancelSignal(reason)


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


def _annotated(fn: Callable[..., Any]) -> bool:
    return bool(getattr(fn, "__annotations__", None))


def _describe(kind: StepKind, target: str | None) -> str:
    return f"an rpc step calling {target!r}" if kind is StepKind.RPC else f"a {kind.value} step"


def _step_failed(record: StepRecord) -> StepFailed:
    error = record.error or ErrorInfo(type="Error", message="unknown failure")
    kind = StepInterrupted if error.type == StepInterrupted.__name__ else StepFailed
    return kind(record.key, record.attempt, error.type, error.message)

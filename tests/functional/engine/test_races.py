"""Races around callback timeouts, cancel requests and deadlines of suspended runs (issue 12).

Each test wraps the real store to make another process's write land at one exact point of a
pass (as :class:`~lambda_flow.testing.CrashBeforeWrite` makes a process die at one), in inline
mode and in remote mode through the dispatcher:

- a callback completed between the pass loading it and recording its timeout keeps its
  completion (the timeout write is fenced on the callback still waiting past its deadline);
- a cancel request that lands after a pass's last write, just before ``finish_pass``, is
  delivered by the pass that follows (invariant 5: no lost wake-ups);
- a suspended run past its deadline is failed by the sweeper, and ``resume`` fails it instead
  of resuming it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from lambda_flow import (
    CallbackTimedOut,
    Flow,
    PostgresStore,
    RunStatus,
    StepStatus,
    WorkflowCancelled,
    WorkflowContext,
    WorkflowService,
)
from lambda_flow.store.base import CallbackOutcome, StepWrite
from lambda_flow.testing import TimeSkippingClock
from lambda_flow.transport.local import LocalQueue
from lambda_flow.worker import Dispatcher
from tests.functional.worker.test_remote import drain


class Interleave:
    """Wraps a real store: another process's write (``inject``) lands just before a call.

    Args:
        store: the real store.
        methods: the store methods to watch.
        inject: called with the real store and the watched call's arguments just before it
            runs; the first time it returns True, it is not called again.
    """

    def __init__(
        self, store: PostgresStore, methods: tuple[str, ...], inject: Callable[..., bool]
    ) -> None:
        self._store = store
        self._methods = methods
        self._inject = inject
        self.injected = False

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._store, name)
        if name not in self._methods:
            return attr

        def watched(*args: Any, **kwargs: Any) -> Any:
            if not self.injected:
                self.injected = bool(self._inject(self._store, *args))
            return attr(*args, **kwargs)

        return watched


def _mode_service(
    mode: str, flow: Flow, store: Any, clock: TimeSkippingClock, queue: LocalQueue | None = None
) -> tuple[WorkflowService, Callable[[], None]]:
    """A service over ``store`` and how to let it settle: inline drives in the call itself.

    Remote mode delivers the queue's messages that are due (``queue``: one to share).
    """
    if mode == "inline":
        return WorkflowService(flow, store=store, clock=clock), lambda: None
    queue = queue or LocalQueue(clock)
    service = WorkflowService(flow, store=store, queue=queue, clock=clock)
    dispatcher = Dispatcher(service, step_timeout=timedelta(minutes=5))

    def settle() -> None:
        drain(queue, dispatcher, skip_time=False)

    return service, settle


def _steps(service: WorkflowService, run_id: str) -> list[tuple[str, StepStatus]]:
    return [(a.step_key, a.status) for a in service.get_run_history(run_id)]


MODES = ["inline", "remote"]


# -- a completion racing the callback's timeout ----------------------------------------------
@pytest.mark.parametrize("mode", MODES)
def test_a_completion_committed_before_the_timeout_write_is_kept(
    flow: Flow, store: PostgresStore, clock: TimeSkippingClock, mode: str
) -> None:
    @flow.workflow
    async def pay(wf: WorkflowContext) -> Any:
        cb = await wf.callback("paid", timeout="1h")
        try:
            return {"payment": await cb.result()}
        except CallbackTimedOut:
            return {"timed_out": True}

    queue = LocalQueue(clock)
    plain, settle = _mode_service(mode, flow, store, clock, queue)
    run_id = plain.start("pay")
    settle()
    run = plain.get_run(run_id)
    assert run is not None
    assert run.pending[0].callback_id is not None
    callback_id, deadline = run.pending[0].callback_id, run.pending[0].deadline
    assert deadline is not None

    def complete(real: PostgresStore, _lease: Any, writes: Any, *_: Any) -> bool:
        batch = [writes] if isinstance(writes, StepWrite) else list(writes)
        if not any(w.key == "paid" and w.status is StepStatus.FAILED for w in batch):
            return False
        # Another process completed it just before its deadline, after this pass loaded it.
        outcome = CallbackOutcome(StepStatus.SUCCEEDED, result="paid")
        state = real.complete_callback(callback_id, outcome, deadline - timedelta(seconds=1))
        assert state.changed
        return True

    racing = Interleave(store, ("write_steps", "time_out_step"), complete)
    service, settle = _mode_service(mode, flow, racing, clock, queue)
    clock.advance("2h")
    if mode == "inline":
        service.resume(run_id)  # drives the run: the pass would record the timeout
    settle()

    assert racing.injected
    run = service.get_run(run_id)
    assert run is not None
    assert (run.status, run.output) == (RunStatus.COMPLETED, {"payment": "paid"})
    assert _steps(service, run_id) == [("paid", StepStatus.SUCCEEDED)]


# -- a cancel request landing just before finish_pass -----------------------------------------
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("waits", ["suspend", "sleep"])
def test_a_cancel_request_just_before_finish_pass_is_delivered(
    flow: Flow, store: PostgresStore, clock: TimeSkippingClock, mode: str, waits: str
) -> None:
    effects: Counter[str] = Counter()

    def effect(name: str) -> str:
        effects[name] += 1
        return name

    @flow.workflow
    async def order(wf: WorkflowContext) -> str:
        await wf.do("charge", lambda: effect("charge"))
        try:
            if waits == "suspend":
                await wf.suspend("approval")
            else:
                await wf.sleep("cooling off", "1d")
        except WorkflowCancelled:
            await wf.do("refund", lambda: effect("refund"))
            raise
        return "shipped"

    def cancel(real: PostgresStore, lease: Any, outcome: Any, *_: Any) -> bool:
        if outcome.status.is_terminal:
            return False
        # Another process asks to cancel after the pass's last write, before it finishes.
        real.cancel(lease.run_id, "customer left", clock.now())
        return True

    racing = Interleave(store, ("finish_pass",), cancel)
    service, settle = _mode_service(mode, flow, racing, clock)
    run_id = service.start("order")
    settle()

    assert racing.injected
    run = service.get_run(run_id)
    assert run is not None
    assert run.status is RunStatus.CANCELLED
    assert run.error is not None
    assert run.error.message == "customer left"
    assert effects == {"charge": 1, "refund": 1}


# -- suspended runs past their deadline -------------------------------------------------------
@pytest.fixture
def approval(flow: Flow) -> Counter[str]:
    effects: Counter[str] = Counter()

    @flow.workflow
    async def approve(wf: WorkflowContext) -> str:
        decision = await wf.suspend("approval")
        effects["after"] += 1
        return str(decision)

    return effects


@pytest.mark.parametrize("mode", MODES)
def test_resume_past_the_deadline_fails_the_run_instead_of_resuming(
    approval: Counter[str], flow: Flow, store: PostgresStore, clock: TimeSkippingClock, mode: str
) -> None:
    service, settle = _mode_service(mode, flow, store, clock)
    run_id = service.start("approve", run_timeout="1h")
    settle()
    clock.advance("2h")

    run = service.resume(run_id, {"approved": True})
    settle()

    assert run.status is RunStatus.FAILED
    assert run.error is not None
    assert run.error.type == "RunDeadlineExceeded"
    assert approval == {}
    assert _steps(service, run_id) == [("approval", StepStatus.CANCELLED)]


def _sweeper(
    flow: Flow, store: PostgresStore, clock: TimeSkippingClock
) -> tuple[WorkflowService, Dispatcher, LocalQueue]:
    queue = LocalQueue(clock)
    service = WorkflowService(flow, store=store, queue=queue, clock=clock)
    return service, Dispatcher(service), queue


def test_the_sweeper_fails_suspended_runs_past_their_deadline(
    approval: Counter[str], flow: Flow, store: PostgresStore, clock: TimeSkippingClock
) -> None:
    service, dispatcher, queue = _sweeper(flow, store, clock)
    overdue = service.start("approve", run_timeout="1h")
    later = service.start("approve", run_timeout="3h")
    unbounded = service.start("approve")
    drain(queue, dispatcher, skip_time=False)
    clock.advance("2h")

    report = dispatcher.sweep()

    assert report.failed_runs == [overdue]
    run = service.get_run(overdue)
    assert run is not None
    assert run.status is RunStatus.FAILED
    assert run.error is not None
    assert run.error.type == "RunDeadlineExceeded"
    assert "went past its deadline" in run.error.message
    assert _steps(service, overdue) == [("approval", StepStatus.CANCELLED)]
    for other in (later, unbounded):
        kept = service.get_run(other)
        assert kept is not None
        assert kept.status is RunStatus.SUSPENDED
    assert dispatcher.sweep().failed_runs == []  # done once


def test_the_overdue_sweep_is_bounded(
    approval: Counter[str], flow: Flow, store: PostgresStore, clock: TimeSkippingClock
) -> None:
    service, dispatcher, queue = _sweeper(flow, store, clock)
    ids = {service.start("approve", run_timeout="1h") for _ in range(3)}
    drain(queue, dispatcher, skip_time=False)
    clock.advance("2h")

    first = dispatcher.sweep(limit=2).failed_runs
    second = dispatcher.sweep(limit=2).failed_runs

    assert len(first) == 2
    assert set(first) | set(second) == ids

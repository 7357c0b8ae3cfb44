"""Retry policies, step timeouts, run deadlines, at-most-once steps and cancellation that runs
cleanup, in inline mode (issue 12, items 3 to 6; AWS durable-execution step and wait
requirements, Temporal's cancellation delivery).

Invariants 10 (an interrupted attempt counts as failed) and 11 (a ``finally:`` records nothing
while the run only waits) are held here for at-most-once steps and cleanup after cancellation.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from datetime import timedelta

import pytest

from lambda_flow import (
    Flow,
    InvalidOption,
    InvalidRunState,
    NonRetryableError,
    PostgresStore,
    RetryPolicy,
    RunStatus,
    StepFailed,
    StepInterrupted,
    StepStatus,
    StepTimedOut,
    WorkflowCancelled,
    WorkflowContext,
    WorkflowService,
    current_step,
)
from lambda_flow.testing import CrashBeforeWrite, SimulatedCrash, TimeSkippingClock


class Flaky(Exception):
    """A failure worth retrying."""


class Fatal(Exception):
    """A failure no retry mends."""


def _fail_until(effects: Counter[str], name: str, succeed_on: int, error: type[Exception] = Flaky):
    def step() -> str:
        effects[name] += 1
        if effects[name] < succeed_on:
            raise error(f"{name} attempt {effects[name]}")
        return "ok"

    return step


def _attempts(service: WorkflowService, run_id: str) -> list[tuple[str, StepStatus, str | None]]:
    return [
        (a.step_key, a.status, a.error.type if a.error else None)
        for a in service.get_run_history(run_id)
    ]


# -- item 3: retry policies -------------------------------------------------------------------
def test_backoff_waits_grow_and_every_attempt_stays_in_the_history(
    flow: Flow, service: WorkflowService, clock: TimeSkippingClock
) -> None:
    effects: Counter[str] = Counter()
    policy = RetryPolicy(max_attempts=4, initial_delay="1s", backoff=2.0, jitter="none")

    @flow.workflow
    async def flaky(wf: WorkflowContext) -> str:
        return str(await wf.do("call", _fail_until(effects, "call", 4), retry=policy))

    run = service.start_and_wait("flaky")

    assert run.status is RunStatus.COMPLETED
    assert clock.slept == [timedelta(seconds=1), timedelta(seconds=2), timedelta(seconds=4)]
    assert _attempts(service, run.id) == [
        ("call", StepStatus.FAILED, "Flaky"),
        ("call", StepStatus.FAILED, "Flaky"),
        ("call", StepStatus.FAILED, "Flaky"),
        ("call", StepStatus.SUCCEEDED, None),
    ]


def test_max_delay_caps_the_wait(
    flow: Flow, service: WorkflowService, clock: TimeSkippingClock
) -> None:
    effects: Counter[str] = Counter()
    policy = RetryPolicy(
        max_attempts=4, initial_delay="10s", backoff=10.0, max_delay="30s", jitter="none"
    )

    @flow.workflow
    async def capped(wf: WorkflowContext) -> str:
        return str(await wf.do("call", _fail_until(effects, "call", 4), retry=policy))

    service.start("capped")

    assert clock.slept == [timedelta(seconds=10), timedelta(seconds=30), timedelta(seconds=30)]


def test_a_jittered_wait_is_decided_once_and_stored(
    flow: Flow, service: WorkflowService, store: PostgresStore, clock: TimeSkippingClock
) -> None:
    effects: Counter[str] = Counter()
    policy = RetryPolicy(max_attempts=2, initial_delay="1min", jitter="half")

    @flow.workflow
    async def jittered(wf: WorkflowContext) -> str:
        await wf.suspend("look")
        return str(await wf.do("call", _fail_until(effects, "call", 2), retry=policy))

    run_id = service.start("jittered")
    failed_at = clock.now()

    # The first attempt comes after the resume; its failure stores the drawn wake-up.
    run_after = service.resume(run_id)
    assert run_after.status is RunStatus.COMPLETED
    (wait,) = clock.slept
    assert timedelta(seconds=30) <= wait <= timedelta(minutes=1)
    assert failed_at <= clock.now()
    assert [s.status for s in store.get_steps(run_id)] == [StepStatus.SUCCEEDED] * 2


def test_the_most_specific_policy_wins(flow: Flow, store: PostgresStore) -> None:
    app = Flow(default_retry=RetryPolicy(max_attempts=2, initial_delay="1s", jitter="none"))
    effects: Counter[str] = Counter()

    @app.function(retry=RetryPolicy(max_attempts=3, initial_delay="1s", jitter="none"))
    def by_function() -> str:
        effects["function"] += 1
        raise Flaky("no")

    @app.workflow
    async def layered(wf: WorkflowContext) -> None:
        for name, step, options in (
            ("app default", _fail_until(effects, "app", 99), {}),
            ("function default", by_function, {}),
            ("call wins", by_function, {"retry": RetryPolicy(max_attempts=4, jitter="none")}),
            ("retries wins", by_function, {"retries": 0}),
        ):
            with pytest.raises(StepFailed):
                await wf.do(name, step, **options)  # type: ignore[arg-type]

    service = WorkflowService(app, store=store, clock=TimeSkippingClock())
    run = service.start_and_wait("layered")

    assert run.status is RunStatus.COMPLETED
    counts = Counter(a.step_key for a in service.get_run_history(run.id))
    assert counts == {"app default": 2, "function default": 3, "call wins": 4, "retries wins": 1}


def test_retry_with_retries_is_refused_and_writes_nothing(
    flow: Flow, service: WorkflowService
) -> None:
    @flow.workflow
    async def both(wf: WorkflowContext) -> None:
        await wf.do("x", lambda: 1, retries=2, retry=RetryPolicy())

    run = service.start_and_wait("both")

    assert run.status is RunStatus.FAILED
    assert run.error is not None
    assert run.error.type == "InvalidOption"
    assert "retry" in run.error.message
    assert service.get_run_history(run.id) == []


def test_a_policy_with_no_attempts_names_the_parameter() -> None:
    with pytest.raises(InvalidOption) as caught:
        RetryPolicy(max_attempts=0)
    assert caught.value.parameter == "max_attempts"


@pytest.mark.parametrize(
    ("error", "policy"),
    [
        (NonRetryableError, RetryPolicy(max_attempts=5, initial_delay=0, max_delay=0)),
        (Fatal, RetryPolicy(max_attempts=5, initial_delay=0, max_delay=0, dont_retry_on=(Fatal,))),
        (Fatal, RetryPolicy(max_attempts=5, initial_delay=0, max_delay=0, retry_on=(Flaky,))),
    ],
)
def test_failures_the_policy_does_not_retry_stop_at_once(
    flow: Flow, service: WorkflowService, error: type[Exception], policy: RetryPolicy
) -> None:
    effects: Counter[str] = Counter()

    @flow.workflow
    async def stops(wf: WorkflowContext) -> None:
        await wf.do("call", _fail_until(effects, "call", 99, error), retry=policy)

    run = service.start_and_wait("stops")

    assert run.status is RunStatus.FAILED
    assert effects == {"call": 1}


# -- item 4: timeouts -------------------------------------------------------------------------
def test_an_async_step_past_its_timeout_is_cancelled_and_retried(
    flow: Flow, service: WorkflowService, clock: TimeSkippingClock
) -> None:
    cancelled: list[int] = []

    async def hangs_once() -> str:
        step = current_step()
        assert step is not None
        if step.attempt == 1:
            clock.advance("31s")  # the attempt has taken longer than its timeout
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancelled.append(step.attempt)
                raise
        return "second time lucky"

    @flow.workflow
    async def slow(wf: WorkflowContext) -> str:
        return str(await wf.do("call", hangs_once, timeout="30s", retries=1))

    run = service.start_and_wait("slow")

    assert run.status is RunStatus.COMPLETED, run.error
    assert run.output == "second time lucky"
    assert cancelled == [1]
    assert _attempts(service, run.id) == [
        ("call", StepStatus.FAILED, "StepTimedOut"),
        ("call", StepStatus.SUCCEEDED, None),
    ]


def test_a_sync_step_past_its_timeout_is_abandoned_and_fails_the_step(
    flow: Flow, service: WorkflowService, clock: TimeSkippingClock
) -> None:
    release = threading.Event()

    def blocks() -> str:
        clock.advance("2min")
        release.wait(10)  # abandoned: the thread finishes in the background once released
        return "too late"

    @flow.workflow
    async def stuck(wf: WorkflowContext) -> str:
        try:
            return str(await wf.do("call", blocks, timeout="1min"))
        except StepTimedOut as exc:
            return f"{exc.error_type} after {exc.attempts}"

    run = service.start_and_wait("stuck")
    release.set()

    assert run.status is RunStatus.COMPLETED
    assert run.output == "StepTimedOut after 1"


@pytest.mark.parametrize("timeout", ["-1s", 0, -5])
def test_a_negative_timeout_is_refused(
    flow: Flow, service: WorkflowService, timeout: object
) -> None:
    @flow.workflow
    async def bad(wf: WorkflowContext) -> None:
        await wf.do("x", lambda: 1, timeout=timeout)  # type: ignore[arg-type]

    run = service.start_and_wait("bad")

    assert run.status is RunStatus.FAILED
    assert run.error is not None
    assert run.error.type == "InvalidOption"
    assert service.get_run_history(run.id) == []


def test_a_workflow_timeout_fails_the_run_and_cancels_its_timer(
    flow: Flow, service: WorkflowService, clock: TimeSkippingClock
) -> None:
    @flow.workflow(timeout="1h")
    async def sleepy(wf: WorkflowContext) -> None:
        await wf.sleep("nap", "2h")

    started = clock.now()
    run = service.start_and_wait("sleepy")

    assert run.status is RunStatus.FAILED
    assert run.error is not None
    assert run.error.type == "RunDeadlineExceeded"
    assert clock.now() - started == timedelta(hours=1)
    assert _attempts(service, run.id) == [("nap", StepStatus.CANCELLED, None)]


def test_run_timeout_overrides_the_workflows_and_is_validated(
    flow: Flow, service: WorkflowService, clock: TimeSkippingClock
) -> None:
    @flow.workflow(timeout="7d")
    async def sleepy(wf: WorkflowContext) -> str:
        await wf.sleep("nap", "1d")
        return "rested"

    assert service.run_to_completion("sleepy") == "rested"
    run = service.start_and_wait("sleepy", run_timeout="2h")
    assert run.status is RunStatus.FAILED
    assert run.error is not None
    assert run.error.type == "RunDeadlineExceeded"
    with pytest.raises(InvalidOption) as caught:
        service.start("sleepy", run_timeout="-1h")
    assert caught.value.parameter == "run_timeout"
    assert len(service.list_runs()) == 2  # the refused start wrote nothing


def test_a_suspended_run_past_its_deadline_fails_when_driven(
    flow: Flow, service: WorkflowService, clock: TimeSkippingClock
) -> None:
    @flow.workflow
    async def waits(wf: WorkflowContext) -> None:
        await wf.suspend("approval")

    run_id = service.start("waits", run_timeout="1h")
    clock.advance("2h")
    run = service.resume(run_id)

    assert run.status is RunStatus.FAILED
    assert run.error is not None
    assert run.error.type == "RunDeadlineExceeded"


# -- item 5: at-most-once steps ---------------------------------------------------------------
def test_an_at_most_once_step_commits_its_start_before_running(
    flow: Flow, service: WorkflowService
) -> None:
    seen: list[list[tuple[str, StepStatus]]] = []

    def charge() -> str:
        run_id = service.list_runs()[0].id
        seen.append([(a.step_key, a.status) for a in service.get_run_history(run_id)])
        return "charged"

    @flow.workflow
    async def pay(wf: WorkflowContext) -> str:
        return str(await wf.do("charge", charge, at_most_once=True))

    run = service.start_and_wait("pay")

    assert run.status is RunStatus.COMPLETED
    assert seen == [[("charge", StepStatus.RUNNING)]]


@pytest.mark.parametrize(
    ("retries", "status", "charges"), [(0, RunStatus.FAILED, 1), (1, RunStatus.COMPLETED, 2)]
)
def test_an_interrupted_at_most_once_attempt_is_never_run_again(  # noqa: PLR0917 - fixtures
    flow: Flow,
    store: PostgresStore,
    clock: TimeSkippingClock,
    retries: int,
    status: RunStatus,
    charges: int,
) -> None:
    effects: Counter[str] = Counter()

    def charge() -> str:
        effects["charge"] += 1
        return "charged"

    @flow.workflow
    async def pay(wf: WorkflowContext) -> str:
        try:
            return str(await wf.do("charge", charge, at_most_once=True, retries=retries))
        except StepInterrupted as exc:
            raise RuntimeError(f"{exc.error_type} after {exc.attempts}") from exc

    crashing = CrashBeforeWrite(
        store, when=lambda w: w.key == "charge" and w.status is StepStatus.SUCCEEDED
    )
    doomed = WorkflowService(flow, store=crashing, clock=clock)  # type: ignore[arg-type]
    with pytest.raises(SimulatedCrash):
        doomed.start("pay")
    run_id = store.list_runs()[0].id

    clock.advance("31s")
    restarted = WorkflowService(flow, store=store, clock=clock)
    run = restarted.resume(run_id)

    assert run.status is status
    assert effects == {"charge": charges}
    assert _attempts(restarted, run_id)[0] == ("charge", StepStatus.FAILED, "StepInterrupted")
    if status is RunStatus.FAILED:
        assert run.error is not None
        assert run.error.message == "StepInterrupted after 1"


# -- item 6: cancellation that runs cleanup ----------------------------------------------------
def _order(flow: Flow, effects: Counter[str]) -> None:
    @flow.workflow
    async def order(wf: WorkflowContext) -> str:
        await wf.do("charge", lambda: _count(effects, "charge"))
        try:
            await wf.suspend("ship")
        except WorkflowCancelled as cancelled:
            reason = cancelled.reason
            await wf.do("refund", lambda: _count(effects, f"refund: {reason}"))
            raise
        return "shipped"


def _count(effects: Counter[str], name: str) -> str:
    effects[name] += 1
    return name


def test_a_cancelled_order_refunds_then_ends_cancelled(
    flow: Flow, service: WorkflowService
) -> None:
    effects: Counter[str] = Counter()
    _order(flow, effects)
    run_id = service.start("order")

    run = service.cancel(run_id, "customer changed their mind")

    assert run.status is RunStatus.CANCELLED
    assert run.error is not None
    assert (run.error.type, run.error.message) == ("Cancelled", "customer changed their mind")
    assert effects == {"charge": 1, "refund: customer changed their mind": 1}
    assert _attempts(service, run_id) == [
        ("charge", StepStatus.SUCCEEDED, None),
        ("ship", StepStatus.CANCELLED, None),
        ("refund", StepStatus.SUCCEEDED, None),
    ]
    with pytest.raises(InvalidRunState):
        service.cancel(run_id)


def test_a_body_that_ignores_cancellation_ends_at_once(
    flow: Flow, service: WorkflowService
) -> None:
    effects: Counter[str] = Counter()

    @flow.workflow
    async def sleepy(wf: WorkflowContext) -> None:
        try:
            await wf.sleep("nap", "1d")
        except Exception:
            effects["swallowed"] += 1
        await wf.do("after", lambda: _count(effects, "after"))

    run_id = service.start_and_wait("sleepy", timeout="1h").id  # parked on its timer
    run = service.cancel(run_id)

    assert run.status is RunStatus.CANCELLED
    assert effects == {}
    assert _attempts(service, run_id) == [("nap", StepStatus.CANCELLED, None)]


def test_finally_runs_durable_cleanup_only_when_the_body_ends(
    flow: Flow, service: WorkflowService, clock: TimeSkippingClock
) -> None:
    effects: Counter[str] = Counter()

    @flow.workflow
    async def reserve(wf: WorkflowContext) -> None:
        await wf.do("hold seat", lambda: _count(effects, "hold"))
        try:
            await wf.sleep("wait for payment", "1h")  # the pass ends here: no release yet
            await wf.suspend("confirm")
        finally:
            await wf.do("release seat", lambda: _count(effects, "release"))

    run_id = service.start("reserve")
    run = service.get_run(run_id)
    assert run is not None
    assert run.status is RunStatus.SUSPENDED
    assert effects == {"hold": 1}  # invariant 11: the waits ran no finally

    run = service.cancel(run_id, "timeout")
    assert run.status is RunStatus.CANCELLED
    assert effects == {"hold": 1, "release": 1}


def test_cleanup_timeout_bounds_the_cleanup(
    flow: Flow, service: WorkflowService, clock: TimeSkippingClock
) -> None:
    effects: Counter[str] = Counter()

    @flow.workflow
    async def slow_cleanup(wf: WorkflowContext) -> None:
        try:
            await wf.suspend("wait")
        except WorkflowCancelled:
            await wf.sleep("drain", "1h")
            await wf.do("never", lambda: _count(effects, "never"))
            raise

    run_id = service.start("slow_cleanup")
    before = clock.now()
    run = service.cancel(run_id, "stop", cleanup_timeout="10min")

    assert run.status is RunStatus.CANCELLED
    assert run.error is not None
    assert run.error.message == "stop"
    assert clock.now() - before == timedelta(minutes=10)
    assert effects == {}
    assert [(k, s) for k, s, _ in _attempts(service, run_id)] == [
        ("wait", StepStatus.CANCELLED),
        ("drain", StepStatus.CANCELLED),
    ]


def test_a_bad_cleanup_timeout_is_refused_and_changes_nothing(
    flow: Flow, service: WorkflowService
) -> None:
    _order(flow, Counter())
    run_id = service.start("order")

    with pytest.raises(InvalidOption) as caught:
        service.cancel(run_id, cleanup_timeout="-1s")

    assert caught.value.parameter == "cleanup_timeout"
    run = service.get_run(run_id)
    assert run is not None
    assert run.status is RunStatus.SUSPENDED

"""What a failed step leaves behind (issue 11): its traceback, redacted, in the history and the
logs; and a step naming a function that is not registered, recorded as a failed attempt."""

from __future__ import annotations

import contextlib
import logging
from datetime import timedelta
from typing import Any

import pytest

from lambda_flow import (
    Flow,
    PostgresStore,
    RunStatus,
    StepFailed,
    StepKind,
    StepStatus,
    WorkflowContext,
    WorkflowService,
)
from lambda_flow.testing import TimeSkippingClock
from lambda_flow.transport.local import LocalQueue
from lambda_flow.worker import Dispatcher

SECRET = "sk_live_0123456789"


def _redact(text: str) -> str:
    return text.replace(SECRET, "[redacted]")


def _charge_card(token: str) -> None:
    raise ConnectionError(f"card gateway refused token {token}")


@pytest.fixture(params=["inline", "remote"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class Runner:
    """Starts a run and carries it to rest in either mode (remote: through a local queue)."""

    def __init__(self, flow: Flow, store: PostgresStore, clock: TimeSkippingClock, mode: str):
        self.queue = LocalQueue(clock) if mode == "remote" else None
        self.service = WorkflowService(flow, store=store, clock=clock, queue=self.queue)
        self.dispatcher = Dispatcher(self.service) if self.queue else None
        self.step_jobs = 0

    def run(self, workflow: str, data: Any = None) -> str:
        run_id = self.service.start(workflow, data)
        if self.queue is not None and self.dispatcher is not None:
            while (message := self.queue.receive()) is not None:
                if message.queue == "orchestrator":
                    self.dispatcher.run_message(message.body)
                else:
                    self.step_jobs += 1
                    self.dispatcher.step_message(message.body)
        return run_id


@pytest.fixture
def runner(flow: Flow, store: PostgresStore, clock: TimeSkippingClock, mode: str) -> Runner:
    return Runner(flow, store, clock, mode)


# -- the traceback of the step's own code -------------------------------------------------------
def test_a_failed_step_stores_the_traceback_of_its_own_code(flow: Flow, runner: Runner) -> None:
    @flow.function
    def charge(data: dict[str, str]) -> None:
        _charge_card(data["token"])

    @flow.workflow
    async def checkout(wf: WorkflowContext) -> None:
        await wf.do("Charge", charge, {"token": "tok_1"}, retries=1)

    run_id = runner.run("checkout")

    history = runner.service.get_run_history(run_id)
    assert [(h.status, h.attempt) for h in history] == [
        (StepStatus.FAILED, 1),
        (StepStatus.FAILED, 2),
    ]
    for attempt in history:
        error = attempt.error
        assert error is not None
        assert (error.type, error.message) == (
            "ConnectionError",
            "card gateway refused token tok_1",
        )
        assert str(error) == "ConnectionError: card gateway refused token tok_1"  # no traceback
        assert error.traceback is not None
        lines = error.traceback.splitlines()
        assert lines[0] == "Traceback (most recent call last):"
        assert __file__ in lines[1]
        assert "in charge" in lines[1]
        assert "in _charge_card" in error.traceback
        assert lines[-1] == "ConnectionError: card gateway refused token tok_1"
        assert "lambda_flow" not in error.traceback  # the engine's frames tell a user nothing
    run = runner.service.get_run(run_id)
    assert run is not None
    assert run.error is not None
    assert run.error.traceback is None  # the run's error points at the step, whose has one


def test_an_inline_steps_traceback_is_stored_too(flow: Flow, service: WorkflowService) -> None:
    async def fetch() -> None:
        raise KeyError("missing")

    @flow.workflow
    async def load(wf: WorkflowContext) -> None:
        await wf.do("Fetch", fetch)

    run_id = service.start("load")

    [attempt] = service.get_run_history(run_id)
    assert attempt.kind is StepKind.INLINE
    assert attempt.error is not None
    assert attempt.error.traceback is not None
    assert "in fetch" in attempt.error.traceback
    assert attempt.error.traceback.endswith("KeyError: 'missing'\n")


def test_errors_the_engine_made_have_no_traceback(flow: Flow, runner: Runner) -> None:
    @flow.function
    def ship(order: dict[str, int]) -> None:
        raise AssertionError("never called: the input fails validation first")

    @flow.workflow
    async def shipping(wf: WorkflowContext) -> None:
        await wf.do("Ship", ship, {"id": "not a number"})

    run_id = runner.run("shipping")

    [attempt] = runner.service.get_run_history(run_id)
    assert attempt.error is not None
    assert attempt.error.type == "InvalidInput"
    assert attempt.error.traceback is None


# -- the redact hook ------------------------------------------------------------------------------
@pytest.fixture
def secret_flow() -> Flow:
    flow = Flow(redact=_redact)

    @flow.function
    def charge() -> None:
        _charge_card(SECRET)

    @flow.workflow
    async def checkout(wf: WorkflowContext) -> None:
        try:
            await wf.do("Charge", charge)
        finally:
            await wf.do("Audit", lambda: None)
        raise AssertionError("unreachable")

    @flow.workflow
    async def body_fails(wf: WorkflowContext) -> None:
        raise RuntimeError(f"the body saw {SECRET}")

    return flow


def test_redact_strips_secrets_from_message_traceback_and_logs(
    secret_flow: Flow,
    store: PostgresStore,
    clock: TimeSkippingClock,
    mode: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    runner = Runner(secret_flow, store, clock, mode)
    with caplog.at_level(logging.WARNING, logger="lambda_flow"):
        run_id = runner.run("checkout")

    failed = [h for h in runner.service.get_run_history(run_id) if h.error is not None]
    assert [h.step_name for h in failed] == ["Charge"]
    error = failed[0].error
    assert error is not None
    assert error.traceback is not None
    assert error.message == "card gateway refused token [redacted]"
    assert "[redacted]" in error.traceback
    run = runner.service.get_run(run_id)
    assert run is not None
    assert run.error is not None
    assert "token [redacted]" in run.error.message
    logged = [r for r in caplog.records if getattr(r, "error_type", None) == "ConnectionError"]
    assert len(logged) == 1
    assert logged[0].error_message == error.message  # type: ignore[attr-defined]
    assert logged[0].traceback == error.traceback  # type: ignore[attr-defined]
    text = " ".join(str(r.__dict__) for r in caplog.records)
    text += str(runner.service.get_run_history(run_id)) + str(run)
    assert SECRET not in text


def test_redact_applies_to_the_error_the_workflow_body_raised(
    secret_flow: Flow, store: PostgresStore, clock: TimeSkippingClock
) -> None:
    service = WorkflowService(secret_flow, store=store, clock=clock)

    run = service.get_run(service.start("body_fails"))

    assert run is not None
    assert run.error is not None
    assert run.error.message == "the body saw [redacted]"


def _raises(text: str) -> str:
    raise ValueError("oops")


def _returns_none(text: str) -> Any:
    return None


@pytest.mark.parametrize(("hook", "why"), [(_raises, "ValueError"), (_returns_none, "TypeError")])
def test_a_failing_redact_hook_stores_nothing_unredacted(
    store: PostgresStore,
    clock: TimeSkippingClock,
    caplog: pytest.LogCaptureFixture,
    hook: Any,
    why: str,
) -> None:
    flow = Flow(redact=hook)

    @flow.workflow
    async def leaky(wf: WorkflowContext) -> None:
        await wf.do("Charge", lambda: _charge_card(SECRET))

    service = WorkflowService(flow, store=store, clock=clock)
    with caplog.at_level(logging.WARNING, logger="lambda_flow"):
        run_id = service.start("leaky")

    [attempt] = service.get_run_history(run_id)
    assert attempt.error is not None
    assert attempt.error.type == "ConnectionError"
    assert attempt.error.message == f"(not shown: redact failed with {why})"
    assert attempt.error.traceback is None
    assert SECRET not in str(service.get_run(run_id))
    assert any(r.message.startswith("redact hook failed") for r in caplog.records)


# -- a step naming a function that is not registered (issue 11, defect 16) ------------------------
def test_an_unregistered_function_is_a_failed_attempt_in_the_history(
    flow: Flow, runner: Runner
) -> None:
    seen: list[StepFailed] = []

    @flow.workflow
    async def typo(wf: WorkflowContext) -> str:
        try:
            await wf.do("Notify", "send_emial", {"to": "ada"}, retries=3, retry_delay="1s")
        except StepFailed as failed:
            seen.append(failed)
            await wf.do("Fallback", lambda: "logged")
        return "handled"

    run_id = runner.run("typo")

    run = runner.service.get_run(run_id)
    assert run is not None
    assert (run.status, run.output) == (RunStatus.COMPLETED, "handled")
    [failed] = seen
    assert (failed.step_key, failed.attempts, failed.error_type) == (
        "Notify",
        1,
        "FunctionNotFound",
    )
    history = runner.service.get_run_history(run_id)
    assert [(h.step_name, h.kind, h.status, h.attempt) for h in history] == [
        ("Notify", StepKind.RPC, StepStatus.FAILED, 1),  # not retried: retrying cannot mend it
        ("Fallback", StepKind.INLINE, StepStatus.SUCCEEDED, 1),
    ]
    error = history[0].error
    assert error is not None
    assert (error.type, error.message) == ("FunctionNotFound", "unknown function 'send_emial'")
    assert error.traceback is None
    assert runner.step_jobs == 0  # failed in the pass: no job for a function nobody has
    steps = runner.service.store.get_steps(run_id)
    assert next((s.key, s.target) for s in steps) == ("Notify", "send_emial")


def test_an_unregistered_function_uncaught_fails_the_run_with_the_step_in_the_history(
    flow: Flow, runner: Runner
) -> None:
    @flow.workflow
    async def typo(wf: WorkflowContext) -> None:
        await wf.do("Notify", "send_emial", {"to": "ada"})

    run_id = runner.run("typo")

    run = runner.service.get_run(run_id)
    assert run is not None
    assert run.error is not None
    assert run.status is RunStatus.FAILED
    assert (run.error.type, run.error.step_key) == ("StepFailed", "Notify")
    assert "FunctionNotFound" in run.error.message
    [attempt] = runner.service.get_run_history(run_id)
    assert attempt.error is not None
    assert attempt.error.type == "FunctionNotFound"


def test_a_recorded_unregistered_step_replays_and_keeps_its_target(
    flow: Flow, store: PostgresStore, clock: TimeSkippingClock
) -> None:
    target = {"name": "send_emial"}

    @flow.function
    def send_email() -> str:
        return "sent"

    @flow.workflow
    async def typo(wf: WorkflowContext) -> str:
        with contextlib.suppress(StepFailed):
            await wf.do("Notify", target["name"])
        await wf.sleep("Later", "1h")
        return "done"

    service = WorkflowService(flow, store=store, clock=clock)
    parked = [service.start_and_wait("typo", timeout="1min").id for _ in range(2)]
    clock.advance(timedelta(hours=2))

    # Replayed, the recorded step raises its recorded failure again and the run goes on.
    service.orchestrate(parked[0])
    run = service.get_run(parked[0])
    assert run is not None
    assert (run.status, run.output) == (RunStatus.COMPLETED, "done")
    assert len(service.get_run_history(parked[0])) == 2  # Notify's one attempt, the sleep

    # A deploy that asks for another function at that step diverges from the history.
    target["name"] = "send_email"
    service.orchestrate(parked[1])
    run = service.get_run(parked[1])
    assert run is not None
    assert run.error is not None
    assert run.error.type == "NonDeterminismError"
    assert "calling 'send_emial'" in run.error.message
    assert "calling 'send_email'" in run.error.message

"""Callbacks in inline mode (issue 12, item 1): create, complete from outside, fail, time out.

Ported from the AWS durable-execution conformance requirements (callback and
wait-for-callback suites) where they apply.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from pydantic import BaseModel

from lambda_flow import (
    Callback,
    CallbackConflict,
    CallbackFailed,
    CallbackNotFound,
    CallbackTimedOut,
    Flow,
    InvalidInput,
    InvalidOption,
    RunStatus,
    StepFailed,
    StepKind,
    StepStatus,
    WorkflowContext,
    WorkflowService,
)
from lambda_flow.testing import TimeSkippingClock
from tests.conftest import count_rows


class Decision(BaseModel):
    approved: bool
    comment: str = ""


def _callback_id(service: WorkflowService, run_id: str, index: int = 0) -> str:
    run = service.get_run(run_id)
    assert run is not None
    callback_id = run.pending[index].callback_id
    assert callback_id is not None
    return callback_id


@pytest.fixture
def payment(flow: Flow) -> Flow:
    @flow.workflow
    async def pay(wf: WorkflowContext, data: dict[str, Any]) -> Any:
        cb = await wf.callback("paid", timeout=data.get("timeout"))
        await wf.do("noted", lambda: cb.id)
        try:
            return {"payment": await cb.result()}
        except CallbackFailed as failed:
            return {"failed": [failed.error_type, failed.error_message]}
        except CallbackTimedOut:
            return {"timed_out": True}

    return flow


def test_a_run_waiting_on_a_callback_is_running_and_lists_it_pending(
    payment: Flow, service: WorkflowService
) -> None:
    run_id = service.start("pay", {})
    run = service.get_run(run_id)
    assert run is not None
    assert run.status is RunStatus.RUNNING  # never suspended
    [item] = run.pending
    assert (item.kind, item.step_key, item.name, item.deadline) == (
        "callback",
        "paid",
        "paid",
        None,
    )
    assert item.callback_id is not None
    assert len(item.callback_id) >= 32


def test_complete_drives_the_run_here_and_the_payload_comes_back(
    payment: Flow, service: WorkflowService
) -> None:
    run_id = service.start("pay", {})
    callback_id = _callback_id(service, run_id)
    service.complete_callback(callback_id, {"amount": 42})
    run = service.get_run(run_id)
    assert run is not None
    assert run.status is RunStatus.COMPLETED
    assert run.output == {"payment": {"amount": 42}}
    assert run.pending == []
    [step] = [a for a in service.get_run_history(run_id) if a.step_key == "paid"]
    assert (step.kind, step.status, step.result) == (
        StepKind.CALLBACK,
        StepStatus.SUCCEEDED,
        {"amount": 42},
    )


def test_the_callback_id_is_stable_across_replays(payment: Flow, service: WorkflowService) -> None:
    run_id = service.start("pay", {})
    callback_id = _callback_id(service, run_id)
    service.resume(run_id)  # another pass replays wf.callback
    assert _callback_id(service, run_id) == callback_id
    service.complete_callback(callback_id, "ok")
    history = service.get_run_history(run_id)
    assert [a.result for a in history if a.step_key == "noted"] == [callback_id]


def test_completing_again_with_the_same_payload_answers_the_same(
    payment: Flow, service: WorkflowService
) -> None:
    run_id = service.start("pay", {})
    callback_id = _callback_id(service, run_id)
    service.complete_callback(callback_id, {"a": 1, "b": 2})
    service.complete_callback(callback_id, {"b": 2, "a": 1})  # no error, nothing changes
    with pytest.raises(CallbackConflict, match="different payload"):
        service.complete_callback(callback_id, {"a": 2})
    with pytest.raises(CallbackConflict, match="already completed"):
        service.fail_callback(callback_id, "nope")
    run = service.get_run(run_id)
    assert run is not None
    assert run.output == {"payment": {"a": 1, "b": 2}}


def test_unknown_callback_ids_are_not_found(payment: Flow, service: WorkflowService) -> None:
    with pytest.raises(CallbackNotFound):
        service.complete_callback("no-such-callback", 1)
    with pytest.raises(CallbackNotFound):
        service.fail_callback("no-such-callback", "x")
    with pytest.raises(CallbackNotFound):
        service.heartbeat_callback("no-such-callback")


def test_fail_raises_callback_failed_with_the_callers_error(
    payment: Flow, service: WorkflowService
) -> None:
    run_id = service.start("pay", {})
    callback_id = _callback_id(service, run_id)
    service.fail_callback(callback_id, "card declined", error_type="Declined")
    service.fail_callback(callback_id, "card declined", error_type="Declined")  # idempotent
    with pytest.raises(CallbackConflict, match="already failed"):
        service.fail_callback(callback_id, "other")
    run = service.get_run(run_id)
    assert run is not None
    assert run.output == {"failed": ["Declined", "card declined"]}


def test_bad_completions_write_nothing(
    payment: Flow, service: WorkflowService, db: psycopg.Connection[Any]
) -> None:
    run_id = service.start("pay", {})
    callback_id = _callback_id(service, run_id)
    before = count_rows(db, "step_attempts")
    with pytest.raises(InvalidInput):
        service.complete_callback(callback_id, "bad \x00 text")
    with pytest.raises(InvalidInput):
        service.fail_callback(callback_id, "")
    assert count_rows(db, "step_attempts") == before
    run = service.get_run(run_id)
    assert run is not None
    assert run.status is RunStatus.RUNNING


def test_a_completion_before_result_is_awaited_is_kept(
    flow: Flow, service: WorkflowService
) -> None:
    holder: dict[str, WorkflowService] = {"service": service}

    @flow.workflow
    async def early(wf: WorkflowContext) -> Any:
        cb = await wf.callback("c")
        # The outside party answers while the run is still busy (inside this very pass).
        await wf.do("hand-over", lambda: holder["service"].complete_callback(cb.id, "early"))
        return await cb.result()

    run_id = service.start("early")
    run = service.get_run(run_id)
    assert run is not None
    assert (run.status, run.output) == (RunStatus.COMPLETED, "early")


def test_timeout_raises_callback_timed_out_and_late_completions_conflict(
    payment: Flow, service: WorkflowService, clock: TimeSkippingClock
) -> None:
    run_id = service.start("pay", {"timeout": "1h"})
    run = service.get_run(run_id)
    assert run is not None
    assert run.wake_at == clock.now() + __import__("datetime").timedelta(hours=1)
    callback_id = _callback_id(service, run_id)
    clock.advance("2h")
    with pytest.raises(CallbackConflict, match="timed out"):
        service.complete_callback(callback_id, "late")
    service.resume(run_id)  # drives the run: the pass records the timeout
    run = service.get_run(run_id)
    assert run is not None
    assert run.output == {"timed_out": True}
    with pytest.raises(CallbackConflict, match="timed out"):
        service.complete_callback(callback_id, "late")
    [step] = [a for a in service.get_run_history(run_id) if a.step_key == "paid"]
    assert step.error is not None
    assert step.error.type == "CallbackTimedOut"


def test_start_and_wait_drives_through_the_timeout_on_the_clock(
    payment: Flow, service: WorkflowService
) -> None:
    run = service.start_and_wait("pay", {"timeout": "10min"})
    assert run.output == {"timed_out": True}


def test_heartbeats_move_the_deadline(
    flow: Flow, service: WorkflowService, clock: TimeSkippingClock
) -> None:
    @flow.workflow
    async def beat(wf: WorkflowContext) -> Any:
        cb = await wf.callback("job", timeout="1h", heartbeat_timeout="10min")
        return await cb.result()

    run_id = service.start("beat")
    callback_id = _callback_id(service, run_id)
    start = clock.now()
    clock.advance("8min")
    service.heartbeat_callback(callback_id)
    run = service.get_run(run_id)
    assert run is not None
    assert run.pending[0].deadline == start + _minutes(18)
    assert run.status is RunStatus.RUNNING  # a heartbeat never drives the run
    clock.advance("9min")  # past the first deadline, not the moved one
    service.complete_callback(callback_id, "done")
    run = service.get_run(run_id)
    assert run is not None
    assert run.output == "done"


def test_a_missed_heartbeat_times_the_callback_out(
    flow: Flow, service: WorkflowService, clock: TimeSkippingClock
) -> None:
    @flow.workflow
    async def beat(wf: WorkflowContext) -> Any:
        cb = await wf.callback("job", timeout="1h", heartbeat_timeout="10min")
        return await cb.result()

    run_id = service.start("beat")
    callback_id = _callback_id(service, run_id)
    clock.advance("11min")
    with pytest.raises(CallbackConflict, match="timed out"):
        service.heartbeat_callback(callback_id)
    service.resume(run_id)
    run = service.get_run(run_id)
    assert run is not None
    assert run.status is RunStatus.FAILED
    assert run.error is not None
    assert "CallbackTimedOut" in run.error.message


def test_a_heartbeat_never_moves_the_deadline_past_the_timeout(
    flow: Flow, service: WorkflowService, clock: TimeSkippingClock
) -> None:
    @flow.workflow
    async def beat(wf: WorkflowContext) -> Any:
        cb = await wf.callback("job", timeout="15min", heartbeat_timeout="10min")
        return await cb.result()

    run_id = service.start("beat")
    start = clock.now()
    clock.advance("9min")
    service.heartbeat_callback(_callback_id(service, run_id))
    run = service.get_run(run_id)
    assert run is not None
    assert run.pending[0].deadline == start + _minutes(15)


def test_a_typed_payload_is_validated_and_a_bad_one_fails_the_step(
    flow: Flow, service: WorkflowService
) -> None:
    @flow.workflow
    async def approve(wf: WorkflowContext) -> Any:
        cb: Callback[Decision] = await wf.callback("decision", type=Decision)
        try:
            decision = await cb.result()
        except StepFailed as failed:
            return {"error": failed.error_type}
        return {"approved": decision.approved, "comment": decision.comment}

    good = service.start("approve")
    service.complete_callback(_callback_id(service, good), {"approved": True, "comment": "ok"})
    bad = service.start("approve")
    service.complete_callback(_callback_id(service, bad), {"approved": "maybe"})  # accepted
    outputs = [service.get_run(r).output for r in (good, bad)]  # type: ignore[union-attr]
    assert outputs == [{"approved": True, "comment": "ok"}, {"error": "InvalidInput"}]


def test_two_callbacks_of_one_run_complete_independently_in_either_order(
    flow: Flow, service: WorkflowService
) -> None:
    @flow.workflow
    async def both(wf: WorkflowContext) -> Any:
        first = await wf.callback("first")
        second = await wf.callback("second")
        return [await first.result(), await second.result()]

    run_id = service.start("both")
    first, second = _callback_id(service, run_id, 0), _callback_id(service, run_id, 1)
    service.complete_callback(second, "two")
    run = service.get_run(run_id)
    assert run is not None
    assert [p.name for p in run.pending] == ["first"]
    service.complete_callback(first, "one")
    run = service.get_run(run_id)
    assert run is not None
    assert run.output == ["one", "two"]


def test_an_uncaught_callback_failure_fails_the_run(flow: Flow, service: WorkflowService) -> None:
    @flow.workflow
    async def strict(wf: WorkflowContext) -> Any:
        return await (await wf.callback("c")).result()

    run_id = service.start("strict")
    service.fail_callback(_callback_id(service, run_id), "boom")
    run = service.get_run(run_id)
    assert run is not None
    assert run.status is RunStatus.FAILED
    assert run.error is not None
    assert run.error.type == "CallbackFailed"


def test_callbacks_of_a_cancelled_run_conflict(payment: Flow, service: WorkflowService) -> None:
    run_id = service.start("pay", {})
    callback_id = _callback_id(service, run_id)
    service.cancel(run_id, "changed my mind")
    with pytest.raises(CallbackConflict, match="run ended"):
        service.complete_callback(callback_id, 1)
    [step] = [a for a in service.get_run_history(run_id) if a.step_key == "paid"]
    assert step.status is StepStatus.CANCELLED


@pytest.mark.parametrize(
    ("option", "value"), [("timeout", "-1s"), ("timeout", 0), ("heartbeat_timeout", "soon")]
)
def test_invalid_options_name_the_parameter_and_record_nothing(
    flow: Flow, service: WorkflowService, option: str, value: Any
) -> None:
    @flow.workflow
    async def bad(wf: WorkflowContext) -> Any:
        try:
            await wf.callback("c", **{option: value})
        except InvalidOption as exc:
            return exc.parameter
        return None

    run_id = service.start("bad")
    run = service.get_run(run_id)
    assert run is not None
    assert run.output == option
    assert service.get_run_history(run_id) == []


def test_wait_for_callback_hands_the_id_to_a_registered_submitter(
    flow: Flow, service: WorkflowService
) -> None:
    sent: list[dict[str, Any]] = []

    @flow.function
    def submit(request: dict[str, Any]) -> None:
        sent.append(request)

    @flow.workflow
    async def charge(wf: WorkflowContext) -> Any:
        return await wf.wait_for_callback("charge", submit, {"amount": 5}, timeout="1d")

    run_id = service.start("charge")
    [request] = sent
    assert request["data"] == {"amount": 5}
    assert request["callback_id"] == _callback_id(service, run_id)
    service.complete_callback(request["callback_id"], {"status": "paid"})
    run = service.get_run(run_id)
    assert run is not None
    assert run.output == {"status": "paid"}
    keys = [a.step_key for a in service.get_run_history(run_id)]
    assert keys == ["charge", "charge.submit"]  # one attempt row per callback


def test_wait_for_callback_retries_an_inline_submitter(
    flow: Flow, service: WorkflowService
) -> None:
    calls: list[str] = []

    async def submit(callback_id: str) -> None:
        calls.append(callback_id)
        if len(calls) < 2:
            raise ConnectionError("provider down")

    @flow.workflow
    async def charge(wf: WorkflowContext) -> Any:
        return await wf.wait_for_callback("charge", submit, retries=2, retry_delay="1s")

    run_id = service.start("charge")
    assert len(calls) == 2
    assert calls[0] == calls[1] == _callback_id(service, run_id)
    service.complete_callback(calls[0], "ok")
    run = service.get_run(run_id)
    assert run is not None
    assert run.output == "ok"


def _minutes(n: int) -> Any:
    from datetime import timedelta

    return timedelta(minutes=n)

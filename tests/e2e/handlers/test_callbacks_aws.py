"""Callbacks and conditions through the real handlers on moto (issue 12, items 1 and 2).

A completion commits in one statement and sends one orchestrator message; nothing runs in the
caller. A callback's timeout is a timer like a sleep's (an SQS delay here).
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from lambda_flow import CallbackConflict, RunStatus
from tests.e2e import app, aws
from tests.e2e.aws import Harness

moto_server = aws.moto_server
harness = aws.harness

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")


@pytest.fixture(autouse=True)
def _no_submissions() -> None:
    app.submitted.clear()


def test_a_webhook_completes_the_callback_with_one_statement_and_one_message(
    harness: Harness,
) -> None:
    orchestrator = harness.queues["orchestrator"]
    run_id = harness.service.start("checkout", {"amount": 30})
    harness.pump(skip_time=False)
    assert harness.run(run_id).status is RunStatus.RUNNING
    [callback_id] = app.submitted
    assert harness.run(run_id).pending[0].callback_id == callback_id

    sent = len(harness.recorder.sent)
    before = harness.service.store.stats.round_trips
    harness.service.complete_callback(callback_id, {"amount": 30})
    assert harness.service.store.stats.round_trips - before == 1
    new = harness.recorder.sent[sent:]
    assert [(m.queue_url, json.loads(m.body)) for m in new] == [
        (orchestrator.url, {"run_id": run_id})
    ]
    assert harness.run(run_id).status is RunStatus.RUNNING  # not run in the caller

    harness.pump(skip_time=False)
    run = harness.run(run_id)
    assert (run.status, run.output) == (RunStatus.COMPLETED, {"amount": 30})
    assert app.calls["ask_provider"] == 1


def test_a_callback_timeout_is_an_sqs_delay(harness: Harness) -> None:
    run_id = harness.service.start("checkout", {"timeout": "10min"})
    harness.pump(skip_time=False)
    wakeups = [m for m in harness.recorder.delivered() if m.delay_seconds]
    assert [m.delay_seconds for m in wakeups] == [600]
    harness.pump()  # skips time to the delayed message
    run = harness.run(run_id)
    assert run.status is RunStatus.FAILED
    assert run.error is not None
    assert "CallbackTimedOut" in run.error.message
    with pytest.raises(CallbackConflict, match="timed out"):
        harness.service.complete_callback(app.submitted[0], 1)


def test_a_condition_polls_on_timers(harness: Harness) -> None:
    began = harness.clock.now()
    run_id = harness.service.start("poll_export")
    harness.pump()
    run = harness.run(run_id)
    assert (run.status, run.output) == (RunStatus.COMPLETED, 3)
    assert harness.clock.now() - began == timedelta(minutes=2)

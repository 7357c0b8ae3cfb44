"""Starting workflows from outside: ``lambda_flow.handlers.queue_start`` (one run per SQS
message) and ``lambda_flow.handlers.schedule_start`` (one run per EventBridge event), through moto
and the real handlers."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from lambda_flow import ConfigurationError, InvalidInput, RunStatus, WorkflowNotFound
from lambda_flow.aws.runtime import reset_runtimes
from tests.conftest import count_rows
from tests.e2e import aws
from tests.e2e.aws import MAX_RECEIVES, Harness, lambda_context
from tests.events import load_event

moto_server = aws.moto_server
harness = aws.harness

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

Rows = Callable[[], tuple[int, int, int]]


@pytest.fixture
def rows(db: psycopg.Connection[Any]) -> Rows:
    """Counts of (runs, steps, step_attempts), to show that nothing was written."""
    return lambda: (
        count_rows(db, "runs"),
        count_rows(db, "steps"),
        count_rows(db, "step_attempts"),
    )


@pytest.fixture
def signups(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> Harness:
    """A ``signups`` queue (with its DLQ) whose messages ``lambda_flow.handlers.queue_start``
    turns into runs of the ``signup`` workflow."""
    harness.add_queue("signups", "lambda-flow-signups")
    monkeypatch.setenv("LAMBDA_FLOW_TRIGGER_WORKFLOW", "signup")
    harness.load("queue_start")
    return harness


def send(h: Harness, queue: str, *bodies: str) -> list[str]:
    url = h.queues[queue].url
    return [h.sqs.send_message(QueueUrl=url, MessageBody=b)["MessageId"] for b in bodies]


# -- handlers.queue_start -----------------------------------------------------------------------
def test_each_queue_message_starts_one_run_with_its_body_as_input(signups: Harness) -> None:
    [message_id] = send(signups, "signups", json.dumps({"email": "ada@example.com", "plan": "pro"}))
    messages = signups.receive("signups")

    # SQS delivers at least once: the same event twice (a retried batch) starts one run.
    first = signups.invoke("queue_start", messages, queue="signups", settle=False)
    second = signups.invoke("queue_start", messages, queue="signups")

    assert first.failures == second.failures == []
    [run] = signups.service.list_runs(workflow="signup")
    assert run.input == {"email": "ada@example.com", "plan": "pro"}
    assert run.idempotency_key == f"sqs:{message_id}"
    assert signups.receive("signups") == []  # deleted once handled
    # The run goes on through the orchestrator queue like any other.
    signups.pump()
    assert signups.run(run.id).status is RunStatus.COMPLETED
    assert signups.run(run.id).output == "ada@example.com on pro"


def test_invalid_input_fails_only_its_record_and_writes_nothing(
    signups: Harness, rows: Rows
) -> None:
    good = json.dumps({"email": "bob@example.com"})
    bad = ["not json", json.dumps({"email": "not an address"}), json.dumps(["a", "list"])]
    [good_id, *bad_ids] = send(signups, "signups", good, *bad)
    messages = signups.receive("signups")
    assert len(messages) == 4

    invocation = signups.invoke("queue_start", messages, queue="signups")

    assert sorted(invocation.failures) == sorted(bad_ids)
    [run] = signups.service.list_runs(workflow="signup")
    assert run.idempotency_key == f"sqs:{good_id}"
    assert rows() == (1, 0, 0)  # the good run only, not started yet

    # They keep failing, write nothing, and the redrive policy parks them in the DLQ.
    for _ in range(MAX_RECEIVES - 1):
        retry = signups.deliver("queue_start", queue="signups")
        assert retry is not None
        assert sorted(retry.failures) == sorted(bad_ids)
    assert signups.deliver("queue_start", queue="signups") is None
    dead = signups.receive(signups.queues["signups"].dlq_url)
    assert sorted(m["Body"] for m in dead) == sorted(bad)
    assert rows() == (1, 0, 0)


def test_a_dead_lettered_trigger_message_leaves_other_runs_alone(signups: Harness) -> None:
    bystander = signups.service.start("nap", {"duration": "2h"})
    signups.pump()
    # A trigger body is workflow input; this one refers to a run and is invalid for `signup`.
    [bad_id] = send(signups, "signups", json.dumps({"run_id": bystander, "email": "nope"}))

    for _ in range(MAX_RECEIVES):
        invocation = signups.deliver("queue_start", queue="signups")
        assert invocation is not None
        assert invocation.failures == [bad_id]
    assert signups.deliver("queue_start", queue="signups") is None  # in the DLQ now

    run = signups.run(bystander)
    assert run.status is RunStatus.RUNNING, run.error


def test_the_queue_trigger_needs_a_known_workflow(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LAMBDA_FLOW_TRIGGER_WORKFLOW", raising=False)
    with pytest.raises(ConfigurationError, match="LAMBDA_FLOW_TRIGGER_WORKFLOW"):
        harness.load("queue_start")

    monkeypatch.setenv("LAMBDA_FLOW_TRIGGER_WORKFLOW", "no_such_workflow")
    with pytest.raises(WorkflowNotFound, match="no_such_workflow"):
        harness.load("schedule_start")


# -- handlers.schedule_start --------------------------------------------------------------------
@pytest.fixture
def nightly(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> Harness:
    monkeypatch.setenv("LAMBDA_FLOW_TRIGGER_WORKFLOW", "nightly_report")
    harness.load("schedule_start")
    return harness


def start_from_schedule(h: Harness, event: dict[str, Any]) -> str:
    result = h.handlers["schedule_start"].handler(event, lambda_context("schedule_start"))
    run_id: str = result["run_id"]
    return run_id


def test_a_scheduled_event_starts_one_run_per_event_id(nightly: Harness) -> None:
    event = load_event("schedule")

    run_id = start_from_schedule(nightly, event)
    assert start_from_schedule(nightly, event) == run_id  # EventBridge delivered it twice

    [run] = nightly.service.list_runs(workflow="nightly_report")
    assert run.id == run_id
    assert run.idempotency_key == f"event:{event['id']}"
    assert run.input == {"period": "daily"}  # a rule's empty detail: the model's defaults
    nightly.pump()
    assert nightly.run(run_id).output == {"period": "daily", "signups": 3}

    # The next firing is another event (another id): another run.
    tomorrow = load_event("schedule")
    tomorrow["id"] = "5b7b5c2e-3f1a-4c55-9d0e-2a8f6c1d7e90"
    assert start_from_schedule(nightly, tomorrow) != run_id
    assert len(nightly.service.list_runs(workflow="nightly_report")) == 2


def test_a_scheduler_target_input_is_the_workflow_input(nightly: Harness, rows: Rows) -> None:
    # EventBridge Scheduler's universal target sends the schedule's Input as the whole event.
    run_id = start_from_schedule(nightly, {"period": "weekly"})
    assert nightly.run(run_id).input == {"period": "weekly"}

    before = rows()
    with pytest.raises(InvalidInput, match="period"):
        start_from_schedule(nightly, {"period": ["not", "a", "string"]})
    assert rows() == before


# -- the sample events ------------------------------------------------------------------------
def test_the_queue_start_sample_event_starts_a_run(signups: Harness) -> None:
    event = load_event("sqs_queue_start")
    record = event["Records"][0]

    response = signups.handlers["queue_start"].handler(event, lambda_context("queue_start"))

    assert response == {"batchItemFailures": []}
    [run] = signups.service.list_runs(workflow="signup")
    assert run.input == {"email": "grace@example.com", "plan": "free"}
    assert run.idempotency_key == f"sqs:{record['messageId']}"


def test_configuration_is_checked_before_any_event(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAMBDA_FLOW_TRIGGER_WORKFLOW", "signup")
    monkeypatch.setenv("LAMBDA_FLOW_SCHEMA", "bad schema; drop")
    reset_runtimes()
    with pytest.raises(ConfigurationError, match="LAMBDA_FLOW_SCHEMA"):
        harness.load("queue_start")

"""Remote mode on AWS, end to end: the real queue handlers, with SQS and Scheduler in moto.

The same scenarios as ``tests/functional/test_remote.py`` (which runs them in-process through
``LocalQueue``), here through ``lambda_flow.handlers.orchestrator``, ``step_worker`` and
``sweeper`` with events built from messages moto delivered. See ``tests/e2e/aws.py`` for how the
harness plays Lambda's event source and skips time.
"""

from __future__ import annotations

import json
import sys
import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest

from lambda_flow import ConfigurationError, RunStatus, StepStatus, StoreUnavailable
from lambda_flow.aws.runtime import reset_runtimes
from lambda_flow.testing import SimulatedCrash
from lambda_flow.transport.scheduler import schedule_name
from tests.e2e import app, aws
from tests.e2e.aws import MAX_RECEIVES, ROLE_ARN, Harness, load_handler, sqs_event
from tests.events import load_event

moto_server = aws.moto_server
harness = aws.harness

pytestmark = pytest.mark.filterwarnings(
    # A pass that records no step attempt adds no metric; Powertools warns about the empty flush.
    "ignore:No application metrics to publish:UserWarning"
)

ADA = {"email": "ada@example.com", "user_id": "ada"}
OUTPUT = {
    "profile": {"user_id": "ada", "email": "ada@example.com"},
    "greeting": "Welcome, ada!",
    "email": "sent to ada@example.com on attempt 2",
    "workspace": "ws-ada",
}
HISTORY = [
    ("Create profile", 1, StepStatus.SUCCEEDED),
    ("Greet", 1, StepStatus.SUCCEEDED),
    ("Wait before email", 1, StepStatus.SUCCEEDED),
    ("Send email", 1, StepStatus.FAILED),
    ("Send email", 2, StepStatus.SUCCEEDED),
    ("Provision", 1, StepStatus.SUCCEEDED),
]
ONBOARDING_CALLS = {"create_profile": 1, "send_email": 2, "provision": 1}


def run_message(run_id: str) -> str:
    return json.dumps({"run_id": run_id}, separators=(",", ":"))


def step_message(run_id: str, step_key: str, attempt: Any) -> str:
    return json.dumps({"run_id": run_id, "step_key": step_key, "attempt": attempt})


def history(h: Harness, run_id: str) -> list[tuple[str, int, StepStatus]]:
    return [(a.step_name, a.attempt, a.status) for a in h.service.get_run_history(run_id)]


def assert_queues_empty(h: Harness) -> None:
    for queue in h.queues.values():
        for url in (queue.url, queue.dlq_url):
            counts = h.queue_attributes(url)
            assert set(counts.values()) == {0}, (url, counts)


def emf_metrics(printed: str) -> Counter[str]:
    """Metric values by name in the EMF documents Powertools printed."""
    totals: Counter[str] = Counter()
    for line in printed.splitlines():
        if not line.startswith('{"_aws"'):
            continue
        document = json.loads(line)
        for metric in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
            values = document[metric["Name"]]
            totals[metric["Name"]] += int(sum(values) if isinstance(values, list) else values)
    return totals


# -- the happy path ---------------------------------------------------------------------------
def test_onboarding_runs_to_completion_through_the_handlers(
    harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    orchestrator = harness.queues["orchestrator"]
    began = harness.clock.now()

    run_id = harness.service.start("onboard_user", ADA)

    # Remote mode: start() stored the run and queued one job; nothing ran here.
    assert harness.run(run_id).status is RunStatus.RUNNING
    assert [(m.queue_url, m.body) for m in harness.recorder.sent] == [
        (orchestrator.url, run_message(run_id))
    ]
    assert app.calls == {}
    capsys.readouterr()

    invocations = harness.pump()

    run = harness.run(run_id)
    assert run.status is RunStatus.COMPLETED, run.error
    assert run.output == OUTPUT
    assert app.calls == ONBOARDING_CALLS
    assert history(harness, run_id) == HISTORY
    assert [i.failures for i in invocations] == [[]] * len(invocations)
    # The sleep and the retry delay were skipped, not waited for.
    assert harness.clock.now() - began == timedelta(minutes=5, seconds=1)
    assert_queues_empty(harness)
    # The handlers' Powertools metrics (EMF on stdout) saw every attempt and the finished run.
    metrics = emf_metrics(capsys.readouterr().out)
    assert metrics["StepSucceeded"] == 4  # three RPC steps and the inline one
    assert metrics["StepRetried"] == 1
    assert metrics["RunCompleted"] == 1


def test_the_happy_path_costs_one_message_and_one_invocation_per_step_attempt(
    harness: Harness,
) -> None:
    calls_before = len(harness.recorder.calls)
    trips_before = harness.runtime.store.stats.round_trips
    run_id = harness.service.start("onboard_user", ADA)
    start_trips = harness.runtime.store.stats.round_trips - trips_before

    invocations = harness.pump()

    assert harness.run(run_id).status is RunStatus.COMPLETED
    rpc_attempts, timers = 4, 2  # 3 steps, one retried; the sleep and the retry delay
    chained = 1  # Provision: the one step Send email's pass schedules, run by that worker
    sent = harness.recorder.delivered()
    assert len(sent) == 1 + rpc_attempts - chained + timers
    assert Counter(harness.recorder.calls[calls_before:]) == {
        "send_message": 1 + timers,  # the start and the two wake-ups
        "send_message_batch": rpc_attempts - chained,  # one step job each, but the chained
    }
    assert [m.delay_seconds for m in sent if m.delay_seconds] == [300, 1]
    # One Lambda invocation per message, each with one record.
    assert len(invocations) == len(sent)
    assert harness.count("orchestrator") == 1 + timers
    assert harness.count("step_worker") == rpc_attempts - chained
    assert all(len(i.message_ids) == 1 and i.sqs_sent <= 1 for i in invocations)
    steps = [json.loads(i.bodies[0]) for i in invocations if i.function == "step_worker"]
    assert [(s["step_key"], s["attempt"]) for s in steps] == [
        ("Create profile", 1),
        ("Send email", 1),
        ("Send email", 2),
    ]
    # SQL (issue 14): an RPC attempt costs 3 statements (its claim; its result, which takes
    # the run's lease and returns its steps; the pass's finish), a chained one 2 (the finish
    # that claims it, its result); a pass woken by a message 1 more (its acquire, which returns
    # the steps). Greet and the sleep's end are one statement each.
    assert start_trips == 1
    assert [i.round_trips for i in invocations] == [
        2,  # the start's pass: acquire, finish (schedules Create profile)
        3 + 2,  # Create profile: claim, result, finish; Greet and the sleep: one write each
        3,  # the sleep's timer: acquire, the sleep's end, finish (schedules Send email)
        3,  # Send email 1: claim, result (a retry is due), finish (a timer)
        2,  # the retry delay's timer: acquire, finish (schedules attempt 2)
        3 + 2,  # Send email 2: claim, result, finish claiming Provision; Provision: result, finish
    ]


# -- timers -------------------------------------------------------------------------------------
def test_a_long_sleep_becomes_a_one_time_schedule(harness: Harness) -> None:
    orchestrator = harness.queues["orchestrator"]
    began = harness.clock.now()
    run_id = harness.service.start("nap", {"duration": "2h"})

    harness.pump()

    wake = began + timedelta(hours=2)
    assert harness.run(run_id).status is RunStatus.RUNNING
    assert harness.run(run_id).wake_at == wake
    [schedule] = harness.schedules()
    assert schedule["Name"] == schedule_name(run_id, wake)
    assert schedule["ScheduleExpression"] == "at(2026-01-01T02:00:00)"
    assert schedule["ScheduleExpressionTimezone"] == "UTC"
    assert schedule["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert schedule["ActionAfterCompletion"] == "DELETE"
    assert schedule["Target"]["Arn"] == orchestrator.arn
    assert schedule["Target"]["RoleArn"] == ROLE_ARN
    assert json.loads(schedule["Target"]["Input"]) == {"run_id": run_id}
    # No SQS message carries this wake-up (15 minutes is the most SQS can delay).
    assert [m.body for m in harness.recorder.delivered()] == [run_message(run_id)]

    # A duplicate pass before the wake time schedules the same wake-up again: harmless.
    harness.clock.advance("30min")
    harness.sqs.send_message(QueueUrl=orchestrator.url, MessageBody=run_message(run_id))
    [again] = harness.pump()
    assert again.failures == []
    assert again.error is None
    assert [s["Name"] for s in harness.schedules()] == [schedule["Name"]]
    assert harness.run(run_id).status is RunStatus.RUNNING

    # Scheduler fires at the time (moto never does): the target input reaches the queue.
    harness.fire_schedule(schedule)
    assert harness.clock.now() == wake
    harness.pump()

    run = harness.run(run_id)
    assert run.status is RunStatus.COMPLETED, run.error
    assert run.output == "rested"
    assert harness.schedules() == []
    assert_queues_empty(harness)


@pytest.mark.parametrize(("duration", "seconds"), [("1s", 1), ("10min", 600), ("15min", 900)])
def test_a_short_sleep_is_an_sqs_delay(harness: Harness, duration: str, seconds: int) -> None:
    orchestrator = harness.queues["orchestrator"]
    began = harness.clock.now()
    run_id = harness.service.start("nap", {"duration": duration})

    harness.pump(skip_time=False)

    wakeups = [m for m in harness.recorder.delivered() if m.delay_seconds]
    assert [(m.queue_url, m.body, m.delay_seconds) for m in wakeups] == [
        (orchestrator.url, run_message(run_id), seconds)
    ]
    # The queue really holds it back: not receivable, counted as delayed.
    assert harness.receive("orchestrator") == []
    assert harness.queue_attributes(orchestrator.url)["ApproximateNumberOfMessagesDelayed"] == 1
    assert harness.schedules() == []
    assert harness.run(run_id).status is RunStatus.RUNNING

    harness.pump()

    assert harness.run(run_id).output == "rested"
    assert harness.clock.now() - began == timedelta(seconds=seconds)


# -- at-least-once delivery and recovery --------------------------------------------------------
def test_every_message_delivered_twice_changes_nothing(harness: Harness) -> None:
    run_id = harness.service.start("onboard_user", ADA)

    invocations = harness.pump(times=2)

    run = harness.run(run_id)
    assert run.status is RunStatus.COMPLETED, run.error
    assert run.output == OUTPUT
    assert app.calls == ONBOARDING_CALLS
    assert history(harness, run_id) == HISTORY
    assert {i.function for i in invocations} == {"orchestrator", "step_worker"}
    assert all(i.failures == [] and i.error is None for i in invocations)

    # And late: every message sent so far arrives once more, after the end.
    for message in harness.recorder.delivered():
        harness.sqs.send_message(QueueUrl=message.queue_url, MessageBody=message.body)
    late = harness.pump()

    assert len(late) >= 2
    assert all(i.failures == [] for i in late)
    assert app.calls == ONBOARDING_CALLS
    assert history(harness, run_id) == HISTORY
    assert harness.run(run_id).output == OUTPUT


def test_a_job_lost_between_commit_and_send_is_recovered_by_the_sweeper(harness: Harness) -> None:
    harness.recorder.drop_batches = 1  # the pass commits the step, then dies before sending
    run_id = harness.service.start("onboard_user", ADA)

    harness.pump()

    [lost] = [m for m in harness.recorder.sent if m.dropped]
    assert json.loads(lost.body) == {"run_id": run_id, "step_key": "Create profile", "attempt": 1}
    assert harness.run(run_id).status is RunStatus.RUNNING  # stuck: the job never left
    assert app.calls == {}
    assert harness.sweep() == {"runs": [], "step_jobs": 0, "deleted_runs": 0}  # too early

    harness.clock.advance("121s")
    assert harness.sweep() == {"runs": [], "step_jobs": 1, "deleted_runs": 0}
    harness.pump()

    run = harness.run(run_id)
    assert run.status is RunStatus.COMPLETED, run.error
    assert run.output == OUTPUT
    assert app.calls == ONBOARDING_CALLS
    assert history(harness, run_id) == HISTORY


def test_a_worker_that_dies_mid_step_is_recovered_when_its_claim_expires(
    harness: Harness,
) -> None:
    app.crash_once.add("charge")
    run_id = harness.service.start("pay", {"cents": 500})

    with pytest.raises(SimulatedCrash):
        harness.pump()
    # The worker died with the message in flight; assume the worst: it is gone for good.
    assert harness.lose_in_flight() == 1
    assert history(harness, run_id) == [("Charge", 1, StepStatus.RUNNING)]
    assert harness.pump() == []
    assert harness.sweep()["step_jobs"] == 0  # the claim (5 minutes) is still live

    harness.clock.advance("301s")
    assert harness.sweep()["step_jobs"] == 1
    harness.pump()

    run = harness.run(run_id)
    assert run.status is RunStatus.COMPLETED, run.error
    assert run.output == "charged 500"
    assert app.calls == {"charge": 2}
    # The attempt the dead worker started counts as failed (interrupted), not run again.
    assert history(harness, run_id) == [
        ("Charge", 1, StepStatus.FAILED),
        ("Charge", 2, StepStatus.SUCCEEDED),
    ]


# -- bad messages ---------------------------------------------------------------------------------
def send_all(h: Harness, queue: str, bodies: list[str]) -> list[str]:
    url = h.queues[queue].url
    return [h.sqs.send_message(QueueUrl=url, MessageBody=b)["MessageId"] for b in bodies]


def test_malformed_messages_fail_alone_and_end_in_the_dead_letter_queues(harness: Harness) -> None:
    unknown = str(uuid.uuid4())
    run_id = harness.service.start("pay", {"cents": 700})
    bad_runs = ["not json", "{}", '{"run_id": "abc"}', run_message(unknown)]
    bad_ids = send_all(harness, "orchestrator", bad_runs)
    messages = harness.receive("orchestrator")
    assert len(messages) == 5  # the start message and the four bad ones, in one batch

    passed = harness.invoke("orchestrator", messages)

    assert sorted(passed.failures) == sorted(bad_ids)
    assert passed.error is None
    bad_steps = [
        "not json",
        "{}",
        step_message("abc", "Charge", 1),
        step_message(unknown, "Charge", 1),
    ]
    bad_ids = send_all(harness, "step", bad_steps)
    messages = harness.receive("step")
    assert len(messages) == 5  # the Charge job and the four bad ones

    worked = harness.invoke("step_worker", messages)

    assert sorted(worked.failures) == sorted(bad_ids)
    run = harness.run(run_id)
    assert run.status is RunStatus.COMPLETED, run.error
    assert run.output == "charged 700"
    assert app.calls == {"charge": 1}

    # The bad ones come back until the redrive policy moves them to the dead-letter queues.
    retries = harness.pump()
    assert {i.function for i in retries} == {"orchestrator", "step_worker"}
    assert len(retries) == 2 * (MAX_RECEIVES - 1)
    for queue, bodies in (("orchestrator", bad_runs), ("step", bad_steps)):
        dead = harness.receive(harness.queues[queue].dlq_url)
        assert sorted(m["Body"] for m in dead) == sorted(bodies)
        assert harness.receive(queue) == []
    assert harness.run(run_id).status is RunStatus.COMPLETED


@pytest.mark.parametrize(
    "junk",
    [
        pytest.param(
            lambda run_id: step_message(run_id, "Nap", "first"), id="attempt-not-a-number"
        ),
        pytest.param(lambda run_id: step_message(run_id, "Nap", 0), id="attempt-zero"),
        pytest.param(lambda run_id: json.dumps({"run_id": run_id, "x": [1]}), id="no-step-key"),
    ],
)
def test_a_junk_message_naming_a_run_goes_to_the_dlq_and_leaves_the_run_alone(
    harness: Harness, junk: Any
) -> None:
    """Issue 9, defect 3: only the engine's own message for a run's current work may fail it."""
    step = harness.queues["step"]
    run_id = harness.service.start("nap", {"duration": "2h"})
    harness.pump()
    poison = junk(run_id)
    [poison_id] = send_all(harness, "step", [poison])

    for _ in range(MAX_RECEIVES):
        invocation = harness.deliver("step_worker")
        assert invocation is not None
        assert invocation.failures == [poison_id]
        assert harness.run(run_id).status is RunStatus.RUNNING

    # One more receive: SQS moves it to the dead-letter queue instead of delivering it.
    assert harness.deliver("step_worker") is None
    [dead] = harness.receive(step.dlq_url)
    assert (dead["Body"], dead["MessageId"]) == (poison, poison_id)
    run = harness.run(run_id)
    assert (run.status, run.error) == (RunStatus.RUNNING, None)
    # The run's own timer still wakes it, and it completes.
    [schedule] = harness.schedules()
    harness.fire_schedule(schedule)
    harness.pump()
    assert harness.run(run_id).status is RunStatus.COMPLETED


def test_the_engines_own_step_job_failing_every_time_fails_its_run_with_the_reason(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = harness.service.start("pay", {"cents": 5})
    assert harness.deliver("orchestrator") is not None  # Charge attempt 1 scheduled and sent
    [job] = harness.receive("step")
    assert json.loads(job["Body"]) == {"run_id": run_id, "step_key": "Charge", "attempt": 1}
    harness.settle(harness.queues["step"], [job], [job["MessageId"]])  # back, 1 receive used

    store = harness.runtime.service.store

    def broken_claim(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the step table is corrupt")

    monkeypatch.setattr(store, "claim_step", broken_claim)
    for receive in range(2, MAX_RECEIVES + 1):
        invocation = harness.deliver("step_worker")
        assert invocation is not None
        assert invocation.failures == [job["MessageId"]]
        expected = RunStatus.FAILED if receive == MAX_RECEIVES else RunStatus.RUNNING
        assert harness.run(run_id).status is expected

    run = harness.run(run_id)
    assert run.error is not None
    assert run.error.type == "DeadLetter"
    assert f"failed {MAX_RECEIVES} times" in run.error.message
    assert "the step table is corrupt" in run.error.message
    # Its step, never run, reads cancelled rather than scheduled.
    assert history(harness, run_id) == [("Charge", 1, StepStatus.CANCELLED)]


def test_a_database_outage_at_the_last_receive_fails_no_run(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = harness.service.start("pay", {"cents": 5})
    assert harness.deliver("orchestrator") is not None
    store = harness.runtime.service.store

    def unreachable(*args: Any, **kwargs: Any) -> Any:
        raise StoreUnavailable("the database is unavailable: connection refused")

    monkeypatch.setattr(store, "claim_step", unreachable)
    for _ in range(MAX_RECEIVES):
        invocation = harness.deliver("step_worker")
        assert invocation is not None
        assert len(invocation.failures) == 1
    assert harness.deliver("step_worker") is None  # the job went to the DLQ

    monkeypatch.undo()  # the database is back: the sweeper sends the job again
    assert harness.run(run_id).status is RunStatus.RUNNING
    harness.clock.advance("3min")
    assert harness.sweep()["step_jobs"] == 1
    harness.pump()
    assert harness.run(run_id).output == "charged 5"


# -- the SAM sample events --------------------------------------------------------------------
def test_the_sample_events_drive_the_handlers(harness: Harness) -> None:
    run_id = harness.service.start("pay", {"cents": 900})
    event = load_event("sqs_orchestrator")
    event["Records"][0]["body"] = run_message(run_id)

    assert harness.handlers["orchestrator"].handler(event, aws.lambda_context("orchestrator")) == {
        "batchItemFailures": []
    }
    [job] = harness.receive("step")
    event = load_event("sqs_step")
    event["Records"][0]["body"] = job["Body"]
    assert harness.handlers["step_worker"].handler(event, aws.lambda_context("step_worker")) == {
        "batchItemFailures": []
    }
    assert harness.run(run_id).output == "charged 900"
    # The harness's events have the samples' shape.
    built = sqs_event([job], harness.queues["step"].arn)["Records"][0]
    assert set(built) == set(load_event("sqs_step")["Records"][0])
    assert set(built["attributes"]) >= set(load_event("sqs_step")["Records"][0]["attributes"])


# -- configuration ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("module", "variable", "value"),
    [
        ("orchestrator", "LAMBDA_FLOW_ORCHESTRATOR_QUEUE_URL", None),
        ("orchestrator", "LAMBDA_FLOW_ORCHESTRATOR_QUEUE_URL", "lambda-flow-orchestrator"),
        (
            "orchestrator",
            "LAMBDA_FLOW_ORCHESTRATOR_QUEUE_URL",
            "https://sqs.us-east-1.amazonaws.com/lambda-flow-orchestrator",
        ),
        ("step_worker", "LAMBDA_FLOW_STEP_QUEUE_URL", None),
        ("sweeper", "LAMBDA_FLOW_SCHEDULER_ROLE_ARN", None),
        ("step_worker", "LAMBDA_FLOW_SCHEDULER_ROLE_ARN", "lambda-flow-scheduler"),
        ("orchestrator", "LAMBDA_FLOW_MAX_RECEIVES", "three"),
    ],
)
def test_a_missing_or_malformed_setting_fails_the_cold_start(
    harness: Harness,
    monkeypatch: pytest.MonkeyPatch,
    module: str,
    variable: str,
    value: str | None,
) -> None:
    if value is None:
        monkeypatch.delenv(variable)
    else:
        monkeypatch.setenv(variable, value)
    reset_runtimes()

    with pytest.raises(ConfigurationError, match=variable):
        load_handler(module)
    assert f"lambda_flow.handlers.{module}" not in sys.modules


# -- timers never fire early ------------------------------------------------------------------
def test_a_delay_with_a_fraction_of_a_second_is_not_cut_short(harness: Harness) -> None:
    # DelaySeconds is whole seconds: rounding 1.5 s down would deliver the wake-up early, the
    # pass would find the timer not due and re-arm it with 0.5 s -> 0 s, again and again.
    run_id = harness.service.start("nap", {"duration": "1500ms"})

    invocations = harness.pump(limit=10)

    assert harness.run(run_id).output == "rested"
    assert [m.delay_seconds for m in harness.recorder.delivered() if m.delay_seconds] == [2]
    assert harness.count("orchestrator") == 2
    assert len(invocations) == 2


def test_a_schedule_that_fires_within_its_second_does_not_spin(harness: Harness) -> None:
    # at(...) has whole seconds: a wake-up at 02:00:00.5 fires at 02:00:00, half a second early.
    harness.clock.advance("500ms")
    run_id = harness.service.start("nap", {"duration": "2h"})
    harness.pump()
    [schedule] = harness.schedules()
    assert schedule["ScheduleExpression"] == "at(2026-01-01T02:00:00)"

    harness.fire_schedule(schedule)
    invocations = harness.pump(limit=10)

    assert harness.run(run_id).output == "rested"
    # The early pass re-arms once with a delay that covers the rest of the second.
    assert len(invocations) == 2
    assert [m.delay_seconds for m in harness.recorder.delivered() if m.delay_seconds] == [1]


def test_a_retry_policy_is_decided_by_the_step_worker(harness: Harness) -> None:
    """Issue 12, item 3: the policy travels with the step; the worker waits 10s, then 30s."""
    began = harness.clock.now()
    run_id = harness.service.start("convert", {"cents": 21})

    harness.pump()

    run = harness.run(run_id)
    assert run.status is RunStatus.COMPLETED, run.error
    assert run.output == 42
    assert app.calls == {"fetch_rate": 3}
    assert harness.clock.now() - began == timedelta(seconds=40)
    assert [(k, s) for k, _, s in history(harness, run_id)] == [
        ("Fetch rate", StepStatus.FAILED),
        ("Fetch rate", StepStatus.FAILED),
        ("Fetch rate", StepStatus.SUCCEEDED),
    ]
    assert_queues_empty(harness)


def test_cancel_refuses_the_queued_job_and_runs_the_cleanup(harness: Harness) -> None:
    """Issue 12, item 6: the charge job is refused, the refund runs, the run ends cancelled."""
    run_id = harness.service.start("refundable_order", {"cents": 5})
    harness.deliver("orchestrator")  # the pass queues the charge job

    requested = harness.service.cancel(run_id, "out of stock")
    assert requested.status is RunStatus.RUNNING  # remote: one pass queued to deliver it
    harness.pump()

    run = harness.run(run_id)
    assert run.status is RunStatus.CANCELLED
    assert run.error is not None
    assert run.error.message == "out of stock"
    assert app.calls == {"refund": 1}
    assert [(k, s) for k, _, s in history(harness, run_id)] == [
        ("Charge", StepStatus.CANCELLED),
        ("Refund", StepStatus.SUCCEEDED),
    ]
    assert_queues_empty(harness)

"""Remote mode through the real Lambda handlers, with SQS and EventBridge Scheduler in moto.

One moto server runs per test process (:func:`moto_endpoint`); every test starts from a reset
one, with fake credentials and ``AWS_ENDPOINT_URL`` pointing at it, so every boto3 client (the
ones the handlers make included) talks to moto. :class:`Harness` creates the queues (each with a
dead-letter queue and a redrive policy) and a schedule group, builds the process's runtime on a
:class:`~lambda_flow.testing.TimeSkippingClock`, imports the handler modules afterwards (so they
pick that runtime up), and plays the part of Lambda's SQS event source: it receives messages from
moto, builds the event Lambda would, calls ``handler(event, context)``, deletes what succeeded and
lets the reported failures come back.

Time: the engine runs on the skipping clock, moto on the wall clock. moto honours
``DelaySeconds`` in real time, so :meth:`Harness.pump` fast-forwards a delayed message itself:
the recording SQS client noted when (on the engine's clock) it was sent and with what delay;
the pump advances the clock to that instant plus the delay and clears the delay on moto's copy
(moto's backend runs in this process), as the real queue would once the delay passed. The
message then arrives through ``ReceiveMessage`` like any other. Failed messages are made visible
again at once (their visibility timeout is skipped, not the engine's clock). EventBridge
Scheduler never fires in moto (nor in LocalStack): :meth:`Harness.fire_schedule` reads a
schedule back and sends its target input to its target queue, as Scheduler would.

Test modules register the fixtures by assigning them (a non-root conftest may not use
``pytest_plugins``)::

    from tests.e2e import aws

    moto_server = aws.moto_server
    harness = aws.harness
"""

from __future__ import annotations

import atexit
import functools
import importlib
import json
import logging
import os
import re
import socket
import sys
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import pytest

from lambda_flow import Run
from lambda_flow.aws.observability import NAMESPACE, PowertoolsObserver
from lambda_flow.aws.runtime import Runtime, get_runtime, reset_runtimes
from lambda_flow.testing import TimeSkippingClock
from tests.e2e import app as test_app
from tests.events import load_event

ACCOUNT = "123456789012"  # moto's default account
REGION = "us-east-1"
APP = "tests.e2e.app:flow"
MAX_RECEIVES = 3
"""The queues' ``maxReceiveCount`` and ``LAMBDA_FLOW_MAX_RECEIVES``."""
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/lambda-flow-scheduler"
SCHEDULE_GROUP = "lambda-flow-wakeups"
VISIBILITY_TIMEOUT = 60

HANDLERS = ("orchestrator", "step_worker", "sweeper")
"""The handler modules every harness imports; triggers are loaded by the tests that use them."""
QUEUE_OF = {"orchestrator": "orchestrator", "step_worker": "step"}
"""The queue each queue handler consumes (by its key in :attr:`Harness.queues`)."""

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}


# -- the moto server ----------------------------------------------------------------------------
@functools.cache
def moto_endpoint() -> str:
    """Start the process's one moto server (on a free local port) and return its URL.

    A module-level singleton rather than a session fixture alone: fixtures imported into
    several test modules would otherwise start one server per module.
    """
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per API call
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    atexit.register(server.stop)
    return f"http://127.0.0.1:{port}"


def reset_moto(endpoint: str) -> None:
    """Forget every queue, message and schedule."""
    url = f"{endpoint}/moto-api/reset"
    if not url.startswith("http://127.0.0.1:"):
        raise ValueError(f"not the local moto server: {endpoint}")
    request = urllib.request.Request(url, method="POST")  # noqa: S310 - checked just above
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        if response.status != 200:
            raise RuntimeError(f"moto reset answered {response.status}")


def aws_environment(endpoint: str) -> dict[str, str]:
    """Fake credentials, the region, and every boto3 client pointed at moto."""
    no_proxy = ",".join(filter(None, ["127.0.0.1", "localhost", os.environ.get("NO_PROXY")]))
    return {**FAKE_CREDENTIALS, "AWS_ENDPOINT_URL": endpoint, "NO_PROXY": no_proxy}


def _expire_delay(queue_url: str, message_id: str) -> bool:
    """Clear the delay of a message in moto (in-process backend): it is due now."""
    from moto.backends import get_backend

    queue = get_backend("sqs")[ACCOUNT][REGION].queues[queue_url.rsplit("/", 1)[1]]
    for message in queue._messages:
        if message.id == message_id:
            message.delayed_until = 0
            return True
    return False


def _expire_visibility(queue_url: str, receipt_handle: str) -> None:
    """End a received message's visibility timeout now (moto compares with a strict ``>`` in
    milliseconds, so ``ChangeMessageVisibility(0)`` can leave it hidden for another instant)."""
    from moto.backends import get_backend

    queue = get_backend("sqs")[ACCOUNT][REGION].queues[queue_url.rsplit("/", 1)[1]]
    for message in queue._messages:
        if message.had_receipt_handle(receipt_handle):
            message.visible_at = 0


# -- queues -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Queue:
    """An SQS queue with its dead-letter queue."""

    url: str
    arn: str
    dlq_url: str
    dlq_arn: str


def create_queue(sqs: Any, name: str, *, max_receives: int = MAX_RECEIVES) -> Queue:
    """Create ``name`` and ``name-dlq``, with a redrive policy after ``max_receives``."""
    dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = _queue_arn(sqs, dlq_url)
    policy = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receives)}
    url = sqs.create_queue(
        QueueName=name,
        Attributes={
            "RedrivePolicy": json.dumps(policy),
            "VisibilityTimeout": str(VISIBILITY_TIMEOUT),
        },
    )["QueueUrl"]
    return Queue(url=url, arn=_queue_arn(sqs, url), dlq_url=dlq_url, dlq_arn=dlq_arn)


def _queue_arn(sqs: Any, url: str) -> str:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return str(attributes["Attributes"]["QueueArn"])


# -- recording what the application sends ---------------------------------------------------------
@dataclass(slots=True)
class SentMessage:
    """One message the application handed to SQS (or meant to: see ``dropped``)."""

    queue_url: str
    body: str
    delay_seconds: int
    sent_at: datetime
    """On the engine's clock."""
    message_id: str | None
    """SQS's id; None when the send was dropped."""
    dropped: bool = False

    @property
    def due(self) -> datetime:
        return self.sent_at + timedelta(seconds=self.delay_seconds)


class RecordingSqs:
    """A boto3 SQS client that records every API call and every message, then forwards it.

    ``drop_batches = n`` makes the next ``n`` ``SendMessageBatch`` calls vanish without reaching
    SQS, as if the process died between committing the steps and sending their jobs.
    """

    def __init__(self, client: Any, clock: TimeSkippingClock) -> None:
        self._client = client
        self._clock = clock
        self.calls: list[str] = []
        """Every API call by boto3 method name, in order."""
        self.sent: list[SentMessage] = []
        self.drop_batches = 0

    @property
    def exceptions(self) -> Any:
        return self._client.exceptions

    def send_message(self, **kwargs: Any) -> Any:
        self.calls.append("send_message")
        response = self._client.send_message(**kwargs)
        self.sent.append(
            SentMessage(
                queue_url=kwargs["QueueUrl"],
                body=kwargs["MessageBody"],
                delay_seconds=int(kwargs.get("DelaySeconds", 0)),
                sent_at=self._clock.now(),
                message_id=response["MessageId"],
            )
        )
        return response

    def send_message_batch(self, **kwargs: Any) -> Any:
        self.calls.append("send_message_batch")
        entries = kwargs["Entries"]
        if self.drop_batches:
            self.drop_batches -= 1
            for entry in entries:
                self.sent.append(
                    SentMessage(
                        queue_url=kwargs["QueueUrl"],
                        body=entry["MessageBody"],
                        delay_seconds=int(entry.get("DelaySeconds", 0)),
                        sent_at=self._clock.now(),
                        message_id=None,
                        dropped=True,
                    )
                )
            return {"Successful": [], "Failed": []}
        response = self._client.send_message_batch(**kwargs)
        ids = {ok["Id"]: ok["MessageId"] for ok in response.get("Successful", [])}
        for entry in entries:
            self.sent.append(
                SentMessage(
                    queue_url=kwargs["QueueUrl"],
                    body=entry["MessageBody"],
                    delay_seconds=int(entry.get("DelaySeconds", 0)),
                    sent_at=self._clock.now(),
                    message_id=ids.get(entry["Id"]),
                )
            )
        return response

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute) or name not in self._client.meta.method_to_api_mapping:
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return attribute(*args, **kwargs)

        return call

    def delivered(self) -> list[SentMessage]:
        """Messages that reached SQS."""
        return [m for m in self.sent if not m.dropped]


# -- Lambda's side: contexts and events -----------------------------------------------------------
@dataclass(slots=True)
class LambdaContext:
    """The attributes Powertools reads from a Lambda context."""

    function_name: str
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    memory_limit_in_mb: int = 512
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = "2026/01/01/[$LATEST]0123456789abcdef"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


def lambda_context(function: str) -> LambdaContext:
    """A fresh context (new request id) for one invocation of ``function``."""
    name = f"lambda-flow-{function.replace('_', '-')}"
    return LambdaContext(function_name=name, log_group_name=f"/aws/lambda/{name}")


def sqs_event(messages: Sequence[Mapping[str, Any]], queue_arn: str) -> dict[str, Any]:
    """The event Lambda's SQS event source builds from received messages.

    Shaped like ``events/sqs_orchestrator.json`` (``sam local generate-event sqs
    receive-message``); every field comes from the message as SQS returned it.
    """
    template = load_event("sqs_orchestrator")["Records"][0]
    records = []
    for message in messages:
        record = dict(template)
        record.update(
            messageId=message["MessageId"],
            receiptHandle=message["ReceiptHandle"],
            body=message["Body"],
            attributes=dict(message.get("Attributes", {})),
            messageAttributes={
                name: {
                    "stringValue": value.get("StringValue"),
                    "binaryValue": value.get("BinaryValue"),
                    "stringListValues": [],
                    "binaryListValues": [],
                    "dataType": value["DataType"],
                }
                for name, value in message.get("MessageAttributes", {}).items()
            },
            md5OfBody=message["MD5OfBody"],
            eventSourceARN=queue_arn,
            awsRegion=REGION,
        )
        records.append(record)
    return {"Records": records}


# -- the harness --------------------------------------------------------------------------------
@dataclass(slots=True)
class Invocation:
    """One call of a queue handler, and what it cost."""

    function: str
    """The handler module's name (``orchestrator``, ``step_worker``, ``queue_start``...)."""
    bodies: list[str]
    message_ids: list[str]
    failures: list[str]
    """Message ids the handler reported in ``batchItemFailures`` (all of them if it raised)."""
    error: BaseException | None
    round_trips: int
    """SQL statements the runtime's store sent during the call."""
    sqs_sent: int
    """Messages the application sent to SQS during the call."""
    sqs_calls: int
    """SQS API calls the application made during the call (scheduler calls not included)."""
    started_at: datetime
    """On the engine's clock."""


def load_handler(name: str) -> ModuleType:
    """Import ``lambda_flow.handlers.<name>`` afresh: its module-level setup runs again (a cold
    start)."""
    module = f"lambda_flow.handlers.{name}"
    sys.modules.pop(module, None)
    return importlib.import_module(module)


class Harness:
    """Queues, a schedule group, the runtime and the handlers of one test (see the module doc).

    Build it with :func:`open_harness`; ``close()`` forgets the runtime.
    """

    def __init__(
        self,
        *,
        runtime: Runtime,
        clock: TimeSkippingClock,
        sqs: Any,
        scheduler: Any,
        recorder: RecordingSqs,
        orchestrator_queue: Queue,
        step_queue: Queue,
        schedule_group: str,
    ) -> None:
        self.runtime = runtime
        self.service = runtime.service
        self.clock = clock
        self.sqs = sqs
        """A client of the test's own, not recorded."""
        self.scheduler = scheduler
        self.recorder = recorder
        self.queues: dict[str, Queue] = {
            "orchestrator": orchestrator_queue,
            "step": step_queue,
        }
        self.schedule_group = schedule_group
        self.handlers: dict[str, ModuleType] = {name: load_handler(name) for name in HANDLERS}
        self.invocations: list[Invocation] = []
        self.in_flight: list[tuple[Queue, dict[str, Any]]] = []
        """Messages handed to a handler that died (a BaseException); still in flight in SQS."""
        self._received: set[str] = set()

    # -- reading state ---------------------------------------------------------------------------
    def run(self, run_id: str) -> Run:
        run = self.service.get_run(run_id)
        assert run is not None, run_id
        return run

    def count(self, function: str) -> int:
        """Invocations of one handler so far."""
        return sum(1 for i in self.invocations if i.function == function)

    def load(self, name: str) -> ModuleType:
        """Import ``lambda_flow.handlers.<name>`` (a cold start) for this harness to invoke."""
        self.handlers[name] = load_handler(name)
        return self.handlers[name]

    def add_queue(self, key: str, name: str) -> Queue:
        """Create another queue (with its DLQ and redrive policy) as ``queues[key]``."""
        self.queues[key] = create_queue(self.sqs, name)
        return self.queues[key]

    def receive(self, queue: str, *, max_messages: int = 10) -> list[dict[str, Any]]:
        """Receive up to ``max_messages`` from a queue (a key of ``queues``, or a URL)."""
        url = self.queues[queue].url if queue in self.queues else queue
        response = self.sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=max_messages,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
            VisibilityTimeout=VISIBILITY_TIMEOUT,
        )
        messages: list[dict[str, Any]] = response.get("Messages", [])
        return messages

    def queue_attributes(self, url: str) -> dict[str, int]:
        attributes = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
        return {k: int(v) for k, v in attributes["Attributes"].items() if k.startswith("Approx")}

    # -- Lambda's event source -----------------------------------------------------------------
    def invoke(
        self,
        function: str,
        messages: Sequence[dict[str, Any]],
        *,
        queue: str | None = None,
        settle: bool = True,
    ) -> Invocation:
        """Call a queue handler with the event for ``messages`` from ``queue``, as Lambda would.

        ``queue`` defaults to the one the orchestrator or step worker consumes. With ``settle``
        the messages not reported as failures are deleted and the failures made visible again.
        A handler that dies with a BaseException (a simulated crash) leaves its messages in
        flight (``in_flight``) and the exception propagates.
        """
        source = self.queues[queue or QUEUE_OF[function]]
        self._note_received(messages)
        event = sqs_event(messages, source.arn)
        stats = self.runtime.store.stats
        before = (stats.round_trips, len(self.recorder.sent), len(self.recorder.calls))
        started = self.clock.now()
        error: BaseException | None = None
        failures: list[str] = []
        try:
            response = self.handlers[function].handler(event, lambda_context(function))
            failures = [f["itemIdentifier"] for f in response.get("batchItemFailures", [])]
        except Exception as exc:  # the whole batch failed: every message comes back
            error = exc
            failures = [m["MessageId"] for m in messages]
        except BaseException as exc:  # the process died
            self.in_flight.extend((source, dict(m)) for m in messages)
            self._record(function, messages, failures=[], error=exc, before=before, started=started)
            raise
        invocation = self._record(
            function, messages, failures=failures, error=error, before=before, started=started
        )
        if settle:
            self.settle(source, messages, failures)
        return invocation

    def _record(
        self,
        function: str,
        messages: Sequence[dict[str, Any]],
        *,
        failures: list[str],
        error: BaseException | None,
        before: tuple[int, int, int],
        started: datetime,
    ) -> Invocation:
        trips, sent, calls = before
        invocation = Invocation(
            function=function,
            bodies=[m["Body"] for m in messages],
            message_ids=[m["MessageId"] for m in messages],
            failures=failures,
            error=error,
            round_trips=self.runtime.store.stats.round_trips - trips,
            sqs_sent=len(self.recorder.sent) - sent,
            sqs_calls=len(self.recorder.calls) - calls,
            started_at=started,
        )
        self.invocations.append(invocation)
        return invocation

    def settle(self, queue: Queue, messages: Sequence[dict[str, Any]], failures: list[str]) -> None:
        """Delete what succeeded; make the failures visible again (their timeout skipped)."""
        url = queue.url
        done = [m for m in messages if m["MessageId"] not in failures]
        if done:
            self.sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)
                ],
            )
        for message in messages:
            if message["MessageId"] in failures:
                _expire_visibility(url, message["ReceiptHandle"])

    def lose_in_flight(self) -> int:
        """Delete the messages a dead handler left in flight: the worst case, they are lost."""
        lost = len(self.in_flight)
        for queue, message in self.in_flight:
            self.sqs.delete_message(QueueUrl=queue.url, ReceiptHandle=message["ReceiptHandle"])
        self.in_flight.clear()
        return lost

    def _note_received(self, messages: Sequence[Mapping[str, Any]]) -> None:
        """A delayed message arrives at its due time at the earliest: catch the clock up."""
        by_id = {m.message_id: m for m in self.recorder.sent if m.message_id}
        for message in messages:
            self._received.add(message["MessageId"])
            sent = by_id.get(message["MessageId"])
            if sent is not None and sent.due > self.clock.now():
                self.clock.advance(sent.due - self.clock.now())

    def deliver(
        self, function: str, *, times: int = 1, queue: str | None = None
    ) -> Invocation | None:
        """Receive one batch from the queue ``function`` consumes (or ``queue``) and hand it to
        the handler ``times`` times; None when the queue had nothing to deliver."""
        source = queue or QUEUE_OF[function]
        messages = self.receive(source)
        if not messages:
            return None
        invocation = None
        for attempt in range(times):
            invocation = self.invoke(function, messages, queue=source, settle=attempt == times - 1)
        return invocation

    def pump(self, *, limit: int = 100, skip_time: bool = True, times: int = 1) -> list[Invocation]:
        """Feed both queues to their handlers until neither has a message.

        With ``skip_time``, when both are empty the clock jumps to the next delayed message,
        which is then delivered. ``times=2`` hands every batch to its handler twice (SQS's
        at-least-once delivery). Returns the invocations made.
        """
        made: list[Invocation] = []
        for _ in range(limit):
            invocation = self.deliver("orchestrator", times=times) or self.deliver(
                "step_worker", times=times
            )
            if invocation is not None:
                made.extend(self.invocations[-times:])
                continue
            if not skip_time or not self.release_next_delayed():
                return made
        raise AssertionError(f"the queues did not drain in {limit} deliveries")

    def pending_delayed(self) -> list[SentMessage]:
        """Delayed messages in SQS that no handler has received yet, earliest due first."""
        pending = [
            m
            for m in self.recorder.delivered()
            if m.delay_seconds and m.message_id not in self._received
        ]
        return sorted(pending, key=lambda m: m.due)

    def release_next_delayed(self) -> SentMessage | None:
        """Skip the clock to the next delayed message's due time and make it receivable."""
        for message in self.pending_delayed():
            if message.message_id is not None and _expire_delay(
                message.queue_url, message.message_id
            ):
                if message.due > self.clock.now():
                    self.clock.advance(message.due - self.clock.now())
                return message
            self._received.add(message.message_id or "")  # deleted meanwhile (a reset)
        return None

    # -- EventBridge Scheduler and the sweeper ---------------------------------------------------
    def schedules(self) -> list[dict[str, Any]]:
        """Every schedule in the group, read back in full."""
        names = [
            s["Name"]
            for page in self.scheduler.get_paginator("list_schedules").paginate(
                GroupName=self.schedule_group
            )
            for s in page["Schedules"]
        ]
        return [self.scheduler.get_schedule(Name=n, GroupName=self.schedule_group) for n in names]

    def fire_schedule(self, schedule: Mapping[str, Any]) -> str:
        """Do what Scheduler does at an ``at(...)`` time: send the target input to the target
        queue, then delete the schedule (``ActionAfterCompletion=DELETE``). The clock first
        moves to the schedule's time. Returns the sent message's id."""
        match = re.fullmatch(r"at\((.+)\)", schedule["ScheduleExpression"])
        assert match, schedule["ScheduleExpression"]
        when = datetime.fromisoformat(match.group(1)).replace(tzinfo=UTC)
        if when > self.clock.now():
            self.clock.advance(when - self.clock.now())
        target = schedule["Target"]
        url = next(q.url for q in self.queues.values() if q.arn == target["Arn"])
        message_id = str(
            self.sqs.send_message(QueueUrl=url, MessageBody=target["Input"])["MessageId"]
        )
        if schedule.get("ActionAfterCompletion") == "DELETE":
            self.scheduler.delete_schedule(Name=schedule["Name"], GroupName=self.schedule_group)
        return message_id

    def sweep(self) -> dict[str, Any]:
        """Invoke the sweeper as its EventBridge rate rule would."""
        result: dict[str, Any] = self.handlers["sweeper"].handler(
            load_event("schedule"), lambda_context("sweeper")
        )
        return result

    def close(self) -> None:
        reset_runtimes()
        for name in HANDLERS:
            sys.modules.pop(f"lambda_flow.handlers.{name}", None)


def handler_environment(
    orchestrator: Queue, step: Queue, database_url: str, schema: str
) -> dict[str, str]:
    """What the queue functions' ``Environment.Variables`` hold in the SAM template."""
    return {
        "LAMBDA_FLOW_APP": APP,
        "LAMBDA_FLOW_DATABASE_URL": database_url,
        "LAMBDA_FLOW_SCHEMA": schema,
        "LAMBDA_FLOW_ORCHESTRATOR_QUEUE_URL": orchestrator.url,
        "LAMBDA_FLOW_STEP_QUEUE_URL": step.url,
        "LAMBDA_FLOW_SCHEDULE_GROUP": SCHEDULE_GROUP,
        "LAMBDA_FLOW_SCHEDULER_ROLE_ARN": ROLE_ARN,
        "LAMBDA_FLOW_MAX_RECEIVES": str(MAX_RECEIVES),
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "LambdaFlowTests",
        "POWERTOOLS_SERVICE_NAME": "lambda-flow-tests",
    }


UNSET_FOR_HANDLERS = (
    "LAMBDA_FLOW_DATABASE_SECRET_ARN",
    "LAMBDA_FLOW_TRIGGER_WORKFLOW",
    "LAMBDA_FLOW_STEP_TIMEOUT_SECONDS",
    "LAMBDA_FLOW_MAX_BODY_BYTES",
    "LAMBDA_FLOW_ALLOW_ANONYMOUS",
    "LAMBDA_FLOW_RETENTION_DAYS",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_PROFILE",
)


def open_harness(
    *,
    endpoint: str,
    database_url: str,
    schema: str,
    clock: TimeSkippingClock,
    setenv: Callable[[str, str], None],
    delenv: Callable[[str], None],
) -> Harness:
    """Reset moto, create the queues and schedule group, build the runtime, import the handlers.

    ``setenv``/``delenv`` change the environment (a pytest monkeypatch's, or ``os.environ``'s).
    """
    import boto3
    from aws_lambda_powertools import Logger, Metrics, Tracer

    for name, value in aws_environment(endpoint).items():
        setenv(name, value)
    for name in UNSET_FOR_HANDLERS:
        delenv(name)
    reset_moto(endpoint)
    sqs = boto3.client("sqs")
    scheduler = boto3.client("scheduler")
    orchestrator = create_queue(sqs, "lambda-flow-orchestrator")
    step = create_queue(sqs, "lambda-flow-steps")
    scheduler.create_schedule_group(Name=SCHEDULE_GROUP)
    for name, value in handler_environment(orchestrator, step, database_url, schema).items():
        setenv(name, value)
    test_app.reset()
    reset_runtimes()
    recorder = RecordingSqs(boto3.client("sqs"), clock)
    # First the runtime, on the skipping clock; the handler modules then find it in the cache.
    # Its observer reports through Powertools as the handlers' own would (metrics are shared by
    # every Metrics instance, so each handler's ``log_metrics`` flushes them).
    service_name = "lambda-flow-tests"
    observer = PowertoolsObserver(
        Logger(service=service_name),
        Tracer(service=service_name),
        Metrics(namespace=NAMESPACE, service=service_name),
    )
    runtime = get_runtime(clock=clock, sqs_client=recorder, observer=observer)
    return Harness(
        runtime=runtime,
        clock=clock,
        sqs=sqs,
        scheduler=scheduler,
        recorder=recorder,
        orchestrator_queue=orchestrator,
        step_queue=step,
        schedule_group=SCHEDULE_GROUP,
    )


# -- fixtures -----------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def moto_server() -> str:
    """The URL of the process's moto server."""
    return moto_endpoint()


@pytest.fixture
def harness(
    moto_server: str,
    database_url: str,
    schema: str,
    clock: TimeSkippingClock,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Harness]:
    """A reset moto with fresh queues, the runtime on ``clock``, and the handlers imported."""

    def delenv(name: str) -> None:
        monkeypatch.delenv(name, raising=False)

    built = open_harness(
        endpoint=moto_server,
        database_url=database_url,
        schema=schema,
        clock=clock,
        setenv=monkeypatch.setenv,
        delenv=delenv,
    )
    yield built
    built.close()

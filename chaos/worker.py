"""One chaos worker process: ``python -m chaos.worker ROLE``.

Plays Lambda's part for the real handler modules, as their event source mappings would:

- ``runtime``: polls the orchestrator and step queues in moto in turn, builds the SQS event
  Lambda builds, calls ``lambda_flow.handlers.orchestrator.handler`` or ``step_worker.handler``,
  deletes what succeeded and leaves the reported failures to come back after the visibility
  timeout;
- ``sweeper``: calls ``lambda_flow.handlers.sweeper.handler`` every ``CHAOS_SWEEP_EVERY``
  seconds, as its rate rule would;
- ``api``: serves ``lambda_flow.handlers.api.handler`` over HTTP on ``CHAOS_API_PORT`` (API
  Gateway v2 events, anonymous callers allowed).

An ``--engine`` checkout from before the handlers moved into the package has them in a top-level
``handlers/`` folder; the workers find them there too.

The handlers' settings come from the environment (``LAMBDA_FLOW_*``, see
``lambda_flow/aws/config.py``). Knobs of the harness (all optional): ``CHAOS_LEASE_TTL`` and
``CHAOS_UNSENT_AFTER`` (seconds: the pass lease and the sweeper's presumed-unsent age, scaled
down with the rest of the clock), ``CHAOS_DUPLICATE=1`` (re-send every handled message once,
shuffled and delayed, and shuffle every batch), plus the faults of :mod:`chaos._faults`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
import random
import signal
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType, ModuleType
from typing import Any

from chaos._engine import ENV_ENGINE_ROOT, use_engine
from chaos._faults import Probe, count_orchestrator_sends, instrument

REGION = "us-east-1"
ACCOUNT = "123456789012"
WAIT_SECONDS = 1
"""Long polling of one ReceiveMessage call."""
DUPLICATE_ATTRIBUTE = "chaos-duplicate"

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
logger = logging.getLogger("chaos.worker")


@dataclasses.dataclass(slots=True)
class LambdaContext:
    """The attributes Powertools reads from a Lambda context."""

    function_name: str
    aws_request_id: str = dataclasses.field(default_factory=lambda: str(uuid.uuid4()))
    memory_limit_in_mb: int = 512
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = "chaos"

    @property
    def invoked_function_arn(self) -> str:
        """The function's ARN."""
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        """Plenty: the harness has no function timeout."""
        return 300_000


def sqs_event(messages: Sequence[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """The event Lambda's SQS event source builds from received messages."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": dict(m.get("Attributes", {})),
                "messageAttributes": {
                    name: {
                        "stringValue": value.get("StringValue"),
                        "binaryValue": value.get("BinaryValue"),
                        "stringListValues": [],
                        "binaryListValues": [],
                        "dataType": value["DataType"],
                    }
                    for name, value in m.get("MessageAttributes", {}).items()
                },
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": REGION,
            }
            for m in messages
        ]
    }


def _seconds(name: str) -> float | None:
    value = os.environ.get(name)
    return float(value) if value else None


def _load(name: str) -> ModuleType:
    import importlib

    try:
        return importlib.import_module(f"lambda_flow.handlers.{name}")
    except ModuleNotFoundError as exc:  # an older engine: handlers/ beside lambda_flow/
        if exc.name not in ("lambda_flow.handlers", f"lambda_flow.handlers.{name}"):
            raise
        return importlib.import_module(f"handlers.{name}")


def _tune(runtime: Any) -> None:
    """Scale the pass lease down with the rest of the harness's clock."""
    lease = _seconds("CHAOS_LEASE_TTL")
    if lease is not None:
        service = runtime.service
        service.engine = dataclasses.replace(service.engine, lease_ttl=timedelta(seconds=lease))


# -- the SQS event source -------------------------------------------------------------------------
@dataclasses.dataclass(slots=True)
class Source:
    """One queue and the handler its event source mapping invokes."""

    function: str
    url: str
    arn: str
    handler: Handler


class QueuePoller:
    """Receives batches from each source in turn and hands them to its handler."""

    def __init__(self, sqs: Any, sources: list[Source], probe: Probe) -> None:
        self.sqs = sqs
        self.sources = sources
        self.probe = probe
        self.duplicate = os.environ.get("CHAOS_DUPLICATE") == "1"
        self.batch = int(os.environ.get("CHAOS_BATCH", "10"))
        self.random = random.Random()

    def serve_forever(self) -> None:
        """Poll until the process is killed or terminated."""
        while True:
            for source in self.sources:
                self.poll(source)

    def poll(self, source: Source) -> None:
        """Handle one batch of ``source``, if it has one."""
        try:
            response = self.sqs.receive_message(
                QueueUrl=source.url,
                MaxNumberOfMessages=self.batch,
                WaitTimeSeconds=WAIT_SECONDS,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
        except Exception as exc:  # noqa: BLE001 - moto busy: try again, as Lambda's poller would
            logger.warning("receive failed: %s", exc)
            time.sleep(0.2)
            return
        messages: list[dict[str, Any]] = response.get("Messages", [])
        if not messages:
            return
        if self.duplicate:
            self.random.shuffle(messages)
        failures = self.invoke(source, messages)
        self.probe.current = source.function
        self.settle(source, messages, failures)
        if self.duplicate:
            self.reflect(source, messages)
        self.probe.current = ""
        self.probe.flush()

    def invoke(self, source: Source, messages: list[dict[str, Any]]) -> set[str]:
        """Call the handler; return the ids of the messages that failed."""
        self.probe.current = source.function
        self.probe.count(f"invocations:{source.function}")
        self.probe.count(f"messages:{source.function}", len(messages))
        try:
            response = source.handler(
                sqs_event(messages, source.arn), LambdaContext(f"chaos-{source.function}")
            )
        except Exception as exc:  # noqa: BLE001 - the whole batch failed: every message returns
            logger.warning("handler %s raised: %s", source.function, exc)
            self.probe.count(f"handler_errors:{source.function}")
            return {m["MessageId"] for m in messages}
        finally:
            self.probe.current = ""
        failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
        self.probe.count(f"failed_messages:{source.function}", len(failed))
        return failed

    def settle(self, source: Source, messages: list[dict[str, Any]], failed: set[str]) -> None:
        """Delete the successes (the failures come back after their visibility timeout)."""
        done = [m for m in messages if m["MessageId"] not in failed]
        if not done:
            return
        self.probe.call("delete", "before")
        try:
            self.sqs.delete_message_batch(
                QueueUrl=source.url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)
                ],
            )
        except Exception as exc:  # noqa: BLE001 - not deleted: SQS delivers them again
            logger.warning("delete failed: %s", exc)
        self.probe.call("delete", "after")

    def reflect(self, source: Source, messages: list[dict[str, Any]]) -> None:
        """Send every original message once more, in random order and with a random delay."""
        originals = [
            m for m in messages if DUPLICATE_ATTRIBUTE not in m.get("MessageAttributes", {})
        ]
        self.random.shuffle(originals)
        for message in originals:
            try:
                self.sqs.send_message(
                    QueueUrl=source.url,
                    MessageBody=message["Body"],
                    DelaySeconds=self.random.randint(0, 2),
                    MessageAttributes={
                        DUPLICATE_ATTRIBUTE: {"DataType": "String", "StringValue": "1"}
                    },
                )
                self.probe.count(f"duplicates:{source.function}")
            except Exception as exc:  # noqa: BLE001 - a duplicate less
                logger.warning("duplicate not sent: %s", exc)


def _queue_arn(sqs: Any, url: str) -> str:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return str(attributes["Attributes"]["QueueArn"])


def serve_queues(probe: Probe) -> None:
    """The ``runtime`` role: both queue handlers in one process."""
    import boto3

    orchestrator, step_worker = _load("orchestrator"), _load("step_worker")
    runtime = orchestrator.runtime
    _tune(runtime)
    instrument(probe, runtime.store, runtime.queue)
    count_orchestrator_sends(probe, runtime.queue)
    sqs = boto3.client("sqs")
    sources = []
    for function, module, variable in (
        ("orchestrator", orchestrator, "LAMBDA_FLOW_ORCHESTRATOR_QUEUE_URL"),
        ("step_worker", step_worker, "LAMBDA_FLOW_STEP_QUEUE_URL"),
    ):
        url = os.environ[variable]
        sources.append(Source(function, url, _queue_arn(sqs, url), module.handler))
    QueuePoller(sqs, sources, probe).serve_forever()


# -- the sweeper's rate rule -----------------------------------------------------------------------
SCHEDULED_EVENT = {
    "version": "0",
    "id": "chaos-sweep",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "account": ACCOUNT,
    "time": "2026-01-01T00:00:00Z",
    "region": REGION,
    "resources": [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/lambda-flow-sweeper"],
    "detail": {},
}


def _scale_sweeper(module: ModuleType, unsent_after: timedelta) -> None:
    """Make the sweeper handler presume jobs unsent after ``unsent_after`` (2 min by default).

    The handler module calls a module-level ``_sweep`` (or, before the handlers were regrouped,
    ``_dispatcher.sweep``); either is replaced in this process only.
    """
    namespace = vars(module)
    if "_sweep" in namespace:
        namespace["_sweep"] = functools.partial(namespace["_sweep"], unsent_after=unsent_after)
    else:
        dispatcher = namespace["_dispatcher"]
        dispatcher.sweep = functools.partial(
            type(dispatcher).sweep, dispatcher, unsent_after=unsent_after
        )


def serve_sweeper(probe: Probe) -> None:
    """The ``sweeper`` role: one sweep every ``CHAOS_SWEEP_EVERY`` seconds."""
    sweeper = _load("sweeper")
    runtime = sweeper.runtime
    _tune(runtime)
    instrument(probe, runtime.store, runtime.queue)
    count_orchestrator_sends(probe, runtime.queue)
    unsent = _seconds("CHAOS_UNSENT_AFTER")
    if unsent is not None:
        _scale_sweeper(sweeper, timedelta(seconds=unsent))
    every = _seconds("CHAOS_SWEEP_EVERY") or 2.0
    while True:
        probe.current = "sweeper"
        probe.count("invocations:sweeper")
        try:
            sweeper.handler(dict(SCHEDULED_EVENT), LambdaContext("chaos-sweeper"))
        except Exception as exc:  # noqa: BLE001 - the next rate tick tries again
            logger.warning("sweep failed: %s", exc)
            probe.count("handler_errors:sweeper")
        probe.current = ""
        probe.flush()
        time.sleep(every)


# -- the HTTP API ----------------------------------------------------------------------------------
def _api_request_handler(handler: Handler, probe: Probe) -> type[BaseHTTPRequestHandler]:
    from lambda_flow.local.dev import api_gateway_event

    class ApiShim(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            try:
                length = max(int(self.headers.get("content-length") or 0), 0)
            except ValueError:
                self._answer(400, b'{"error": "bad Content-Length"}', {})
                return
            body = self.rfile.read(length) if length else b""
            event = api_gateway_event(
                self.command, self.path, dict(self.headers.items()), body, identity=None
            )
            probe.current = "api"
            try:
                response = handler(event, LambdaContext("chaos-api"))
            except Exception as exc:  # noqa: BLE001 - what Lambda would answer: a 502
                logger.warning("api handler raised: %s", exc)
                response = {"statusCode": 502, "body": json.dumps({"error": str(exc)})}
            status = int(response.get("statusCode", 200))
            probe.count(f"api_status:{status}")
            headers = {str(k): str(v) for k, v in (response.get("headers") or {}).items()}
            self._answer(status, str(response.get("body") or "").encode(), headers)
            probe.flush()

        def _answer(self, status: int, data: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for name, value in headers.items():
                if name.lower() != "content-length":
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve  # noqa: N815

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the harness counts answers instead."""

    return ApiShim


def serve_api(probe: Probe) -> None:
    """The ``api`` role: ``lambda_flow.handlers.api.handler`` behind a loopback HTTP server."""
    api = _load("api")
    api.get_app()  # builds the runtime now, as a cold start in Lambda does
    runtime = api._built.runtime
    if runtime is not None:
        _tune(runtime)
        instrument(probe, runtime.store, runtime.queue)
        if runtime.queue is not None:
            count_orchestrator_sends(probe, runtime.queue)
    port = int(os.environ["CHAOS_API_PORT"])
    server = ThreadingHTTPServer(("127.0.0.1", port), _api_request_handler(api.handler, probe))
    server.daemon_threads = True
    server.serve_forever()


ROLES: dict[str, Callable[[Probe], None]] = {
    "runtime": serve_queues,
    "sweeper": serve_sweeper,
    "api": serve_api,
}


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one role until terminated."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or args[0] not in ROLES:
        print(f"usage: python -m chaos.worker {{{','.join(ROLES)}}}", file=sys.stderr)
        return 2
    use_engine(os.environ.get(ENV_ENGINE_ROOT))
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    signal.signal(signal.SIGTERM, _terminate)
    probe = Probe.from_environment(args[0])
    try:
        ROLES[args[0]](probe)
    finally:
        probe.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())

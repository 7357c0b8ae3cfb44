"""``lambda-flow dev``: the whole serverless app in one process, without Docker or AWS.

The API routes are served on a loopback port through the same powertools resolver the Api
function runs (each HTTP request becomes an API Gateway v2 event); the orchestrator and step
queues are local queues with delays, visibility timeouts and redrive (or real SQS queues when
``AWS_ENDPOINT_URL`` points at LocalStack or a moto server), drained into the same batch
handlers the Orchestrator and StepWorker functions run; timers are delayed messages; the sweeper
runs on an interval.

Like Lambda, which runs many invocations of a function at once, each queue is drained by a pool
of threads (``orchestrators``, ``step_workers``), each taking one message at a time with a handler
of its own: gathered RPC steps run side by side, as they would on AWS.
"""

from __future__ import annotations

import base64
import contextlib
import importlib.util
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import Message
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ..core import ConfigurationError, SystemClock
from ..engine import Flow
from ..service import WorkflowService
from ..store.postgres import PostgresStore
from ..transport.local import LocalQueue, QueueName
from ..worker import Dispatcher
from . import DEFAULT_ORCHESTRATORS, DEFAULT_STEP_WORKERS

logger = logging.getLogger("lambda_flow")

LOCAL_IDENTITY = {
    "accountId": "000000000000",
    "callerId": "LOCALDEVELOPER",
    "userArn": "arn:aws:iam::000000000000:user/local-developer",
    "userId": "LOCALDEVELOPER",
}
"""The IAM caller every local request carries (API Gateway's IAM auth, as it would pass it)."""

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


LONG_POLL_SECONDS = 1.0
"""The longest an idle local pump blocks in one receive (a message or :meth:`DevRuntime.stop`
ends it sooner), like SQS's ``WaitTimeSeconds``."""

MAX_BODY_BYTES = 256 * 1024
"""The largest request body the local API takes (the dev server refuses larger ones unread)."""
API_METHODS = ("GET", "POST")
"""The methods the API's routes use; the dev server answers any other with 405."""


FUNCTION_TIMEOUTS: Mapping[str, float] = {
    "Api": 30.0,
    "Orchestrator": 120.0,
    "StepWorker": 300.0,
    "Sweeper": 60.0,
    "QueueStart": 30.0,
    "ScheduleStart": 30.0,
}
"""Each function's ``Timeout`` in ``template.yaml`` (seconds): a local invocation's deadline."""
DEFAULT_FUNCTION_TIMEOUT = 30.0
"""The template's ``Globals`` ``Timeout``, for a function not named above."""


@dataclass(frozen=True, slots=True)
class LocalContext:
    """A Lambda context object good enough for powertools and the handlers."""

    function_name: str
    memory_limit_in_mb: int = 512
    aws_request_id: str = ""
    invoked_function_arn: str = ""
    log_group_name: str = "/aws/lambda/local"
    log_stream_name: str = "local"
    deadline: float = 0.0

    @classmethod
    def for_function(cls, name: str, timeout: float | None = None) -> LocalContext:
        """A fresh context for one invocation of ``name`` that may run ``timeout`` seconds.

        By default the function's ``Timeout`` in ``template.yaml`` (:data:`FUNCTION_TIMEOUTS`):
        a step worker chains a run's steps only while most of its timeout is left, as on AWS.
        """
        if timeout is None:
            timeout = FUNCTION_TIMEOUTS.get(name, DEFAULT_FUNCTION_TIMEOUT)
        return cls(
            function_name=name,
            aws_request_id=str(uuid.uuid4()),
            invoked_function_arn=f"arn:aws:lambda:local:000000000000:function:{name}",
            deadline=time.time() + timeout,
        )

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the invocation's deadline (0 once past it)."""
        return max(int((self.deadline - time.time()) * 1000), 0)


def api_gateway_event(
    method: str,
    target: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    source_ip: str = "127.0.0.1",
    identity: Mapping[str, str] | None = LOCAL_IDENTITY,
) -> dict[str, Any]:
    """An API Gateway HTTP API (payload v2) event for one HTTP request."""
    url = urlsplit(target)
    lowered = {k.lower(): v for k, v in headers.items()}
    query: dict[str, str] = {}
    for key, value in parse_qsl(url.query, keep_blank_values=True):
        query[key] = f"{query[key]},{value}" if key in query else value
    try:
        text, encoded = body.decode("utf-8"), False
    except UnicodeDecodeError:
        text, encoded = base64.b64encode(body).decode(), True
    now = datetime.now(UTC)
    context: dict[str, Any] = {
        "accountId": "000000000000",
        "apiId": "local",
        "domainName": lowered.get("host", "127.0.0.1"),
        "domainPrefix": "local",
        "http": {
            "method": method.upper(),
            "path": url.path,
            "protocol": "HTTP/1.1",
            "sourceIp": source_ip,
            "userAgent": lowered.get("user-agent", ""),
        },
        "requestId": str(uuid.uuid4()),
        "routeKey": "$default",
        "stage": "$default",
        "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "timeEpoch": int(now.timestamp() * 1000),
    }
    if identity is not None:
        context["authorizer"] = {"iam": dict(identity)}
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": url.path,
        "rawQueryString": url.query,
        "headers": lowered,
        "queryStringParameters": query or None,
        "requestContext": context,
        "body": text or None,
        "isBase64Encoded": encoded,
    }


@dataclass(frozen=True, slots=True)
class _Refusal:
    """Why the dev server refuses a request before reading its body."""

    status: HTTPStatus
    type: str
    message: str


def _declared_length(headers: Message, max_body_bytes: int) -> int | _Refusal:
    """The body length a request announces (0 when none), or why it is refused."""
    if headers.get("transfer-encoding"):
        return _Refusal(
            HTTPStatus.LENGTH_REQUIRED,
            "LengthRequired",
            "send the body with a Content-Length (chunked bodies are not supported)",
        )
    declared = {v.strip() for v in headers.get_all("content-length") or []}
    if not declared:
        return 0
    text = declared.pop()
    if declared or not (text.isascii() and text.isdigit()):
        return _Refusal(
            HTTPStatus.BAD_REQUEST,
            "InvalidContentLength",
            "Content-Length must be one whole number of bytes",
        )
    length = int(text)
    if length > max_body_bytes:
        return _Refusal(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            "PayloadTooLarge",
            f"the request body is larger than {max_body_bytes} bytes",
        )
    return length


def _http_handler(
    api: Handler,
    identity: Mapping[str, str] | None,
    *,
    max_body_bytes: int = MAX_BODY_BYTES,
    read_timeout: float = 10.0,
) -> type[BaseHTTPRequestHandler]:
    class ApiRequestHandler(BaseHTTPRequestHandler):
        server_version = "lambda-flow-dev"
        timeout = read_timeout  # a client that sends less body than it announced is cut off

        def _answer(
            self,
            status: int,
            body: bytes,
            headers: Mapping[str, str] | None = None,
            cookies: Sequence[str] = (),
        ) -> None:
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            for cookie in cookies:  # payload v2 answers carry Set-Cookie values apart
                self.send_header("Set-Cookie", cookie)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _refuse(
            self, status: HTTPStatus, type: str, message: str, headers: Mapping[str, str] = {}
        ) -> None:
            """An error answer in the API's shape, decided here; the connection then closes."""
            body = {"error": {"type": type, "message": message, "details": []}}
            self.close_connection = True
            self._answer(
                status,
                json.dumps(body).encode(),
                {"Content-Type": "application/json", "Connection": "close", **headers},
            )

        def _body(self) -> bytes | None:
            """The request body, or None once a refusal was sent for it."""
            length = _declared_length(self.headers, max_body_bytes)
            if isinstance(length, _Refusal):
                self._refuse(length.status, length.type, length.message)
                return None
            try:
                body = self.rfile.read(length) if length else b""
            except TimeoutError:
                body = b""
            if len(body) < length:
                self._refuse(
                    HTTPStatus.BAD_REQUEST,
                    "InvalidContentLength",
                    f"the body ended before its Content-Length ({length} bytes)",
                )
                return None
            return body

        def _serve(self) -> None:
            body = self._body()
            if body is None:
                return
            event = api_gateway_event(
                self.command,
                self.path,
                dict(self.headers.items()),
                body,
                source_ip=self.client_address[0],
                identity=identity,
            )
            response = api(event, LocalContext.for_function("Api"))
            payload = response.get("body") or ""
            data = (
                base64.b64decode(payload)
                if response.get("isBase64Encoded")
                else str(payload).encode("utf-8")
            )
            headers = {name: str(value) for name, value in (response.get("headers") or {}).items()}
            cookies = [str(c) for c in response.get("cookies") or []]
            self._answer(int(response.get("statusCode", 200)), data, headers, cookies)

        def _not_allowed(self) -> None:
            self._refuse(
                HTTPStatus.METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                f"this API does not take {self.command}: use {', '.join(API_METHODS)}",
                {"Allow": ", ".join(API_METHODS)},
            )

        def __getattr__(self, name: str) -> Any:
            # http.server answers 501 for a method it finds no do_<METHOD> for; here a method
            # the API does not take is the client's mistake: 405.
            if name.startswith("do_"):
                return self._not_allowed
            raise AttributeError(name)

        do_GET = do_POST = _serve  # noqa: N815 - http.server's naming

        def log_message(self, format: str, *args: Any) -> None:
            logger.info("http request", extra={"request": format % args})

    return ApiRequestHandler


class _LocalPump:
    """Drains one local queue into a batch handler, acking what the handler did not fail.

    One pump per thread: a handler (its powertools ``BatchProcessor``) serves one batch at a
    time, as one Lambda execution environment does. An idle pump blocks in the queue's
    receive (as a long poll) and is woken by the next message sent to its queue, or when a
    delayed one becomes due: no polling, no sleep between a send and its delivery.
    """

    def __init__(
        self,
        queue: LocalQueue,
        name: QueueName,
        handler: Handler,
        function: str,
        *,
        batch: int = 1,
        long_poll: float = LONG_POLL_SECONDS,
    ) -> None:
        self.queue = queue
        self.name: QueueName = name
        self.handler = handler
        self.function = function
        self.batch = batch
        self.long_poll = long_poll

    def pump_once(self) -> int:
        """Deliver one batch (waiting up to ``long_poll`` for one); the messages delivered."""
        messages = self.queue.receive_batch(self.name, self.batch, wait=self.long_poll)
        if not messages:
            return 0
        event = self.queue.sqs_event(messages)
        response = self.handler(event, LocalContext.for_function(self.function))
        failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
        for message in messages:
            if message.message_id not in failed:
                self.queue.delete(message.receipt)
        return len(messages)


class _SqsPump:
    """Drains a real SQS queue (LocalStack, a moto server) into a batch handler (one per thread)."""

    def __init__(
        self, client: Any, url: str, arn: str, handler: Handler, function: str, *, batch: int = 1
    ) -> None:
        self.client = client
        self.url = url
        self.arn = arn
        self.handler = handler
        self.function = function
        self.batch = batch

    def pump_once(self) -> int:
        reply = self.client.receive_message(
            QueueUrl=self.url,
            MaxNumberOfMessages=self.batch,
            WaitTimeSeconds=1,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = reply.get("Messages", [])
        if not messages:
            return 0
        event = {
            "Records": [
                {
                    "messageId": m["MessageId"],
                    "receiptHandle": m["ReceiptHandle"],
                    "body": m["Body"],
                    "attributes": m.get("Attributes", {}),
                    "messageAttributes": m.get("MessageAttributes", {}),
                    "md5OfBody": m.get("MD5OfBody", ""),
                    "eventSource": "aws:sqs",
                    "eventSourceARN": self.arn,
                    "awsRegion": self.client.meta.region_name,
                }
                for m in messages
            ]
        }
        response = self.handler(event, LocalContext.for_function(self.function))
        failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            self.client.delete_message_batch(
                QueueUrl=self.url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)
                ],
            )
        return len(messages)


class DevRuntime:
    """The API, the queues, the workers and the sweeper of one app, in this process.

    Args:
        flow: the application.
        database_url: Postgres to use (the embedded one by default).
        schema: the schema of lambda-flow's tables.
        host: the address the API listens on (loopback by default).
        port: the API's port (0 picks a free one; see :attr:`url`).
        identity: the IAM caller injected into every request (None: anonymous, which the API
            then refuses unless ``allow_anonymous``).
        allow_anonymous: let requests without a caller through.
        visibility_timeout: local queues' visibility timeout.
        max_receives: local queues' redrive ``maxReceiveCount``.
        sweep_every: how often the sweeper runs.
        sqs_client: a boto3 SQS client to use real queues (LocalStack / moto) instead of local
            ones; ``aws_queue_prefix`` names them.
        scheduler_client: with ``sqs_client``, a boto3 Scheduler client: timers beyond 15
            minutes become one-time schedules in a ``<prefix>`` group (the sweeper wakes them
            if the emulator never fires them).
        step_workers: step jobs run at once, each in a thread of its own taking one message at
            a time (as concurrent StepWorker invocations): gathered RPC steps run side by side.
        orchestrators: orchestration passes run at once (of different runs: a run's lease
            keeps its passes one at a time).
        console: serve the web console at ``/console`` (``lambda_flow.console``).
    """

    def __init__(
        self,
        flow: Flow,
        *,
        database_url: str | None = None,
        schema: str = "workflows",
        host: str = "127.0.0.1",
        port: int = 8000,
        identity: Mapping[str, str] | None = LOCAL_IDENTITY,
        allow_anonymous: bool = False,
        visibility_timeout: timedelta = timedelta(seconds=30),
        max_receives: int = 5,
        sweep_every: timedelta = timedelta(seconds=30),
        sqs_client: Any = None,
        scheduler_client: Any = None,
        aws_queue_prefix: str = "lambda-flow-dev",
        step_workers: int = DEFAULT_STEP_WORKERS,
        orchestrators: int = DEFAULT_ORCHESTRATORS,
        console: bool = True,
    ) -> None:
        from ..aws.api import build_api
        from ..store.embedded import resolve_database_url

        if step_workers < 1 or orchestrators < 1:
            raise ConfigurationError(
                f"step_workers and orchestrators must be at least 1, got {step_workers} and "
                f"{orchestrators}"
            )
        clock = SystemClock()
        # A connection for every thread that may hold one at once: each pass pins one, and
        # a step worker carries its run on; the API's requests and the sweeper share the rest.
        self.database_url = resolve_database_url(database_url)
        self.schema = schema
        self.store = PostgresStore(
            self.database_url,
            schema=schema,
            max_connections=step_workers + orchestrators + 4,
        )
        self.local_queue: LocalQueue | None = None
        """The local queues (None when ``sqs_client`` gives real ones)."""
        queue: Any
        if sqs_client is None:
            queue = self.local_queue = LocalQueue(
                clock, visibility_timeout=visibility_timeout, max_receives=max_receives
            )
        else:
            from ..transport.sqs import SqsJobQueue

            urls = _ensure_sqs_queues(
                sqs_client, aws_queue_prefix, visibility_timeout, max_receives
            )
            scheduler = None
            if scheduler_client is not None:
                from ..transport.scheduler import WakeupScheduler

                scheduler = WakeupScheduler(
                    _ensure_schedule_group(scheduler_client, aws_queue_prefix),
                    f"arn:aws:iam::000000000000:role/{aws_queue_prefix}-scheduler",
                    urls["orchestrator"][1],
                    client=scheduler_client,
                )
            queue = SqsJobQueue(
                urls["orchestrator"][0], urls["step"][0], client=sqs_client, scheduler=scheduler
            )
        self.service = WorkflowService(flow, store=self.store, queue=queue, clock=clock)
        self.dispatcher = Dispatcher(self.service)
        self.console = console
        api = build_api(
            self.service,
            flow,
            allow_anonymous=allow_anonymous,
            max_body_bytes=MAX_BODY_BYTES,
            console=console,
            # MCP at POST /mcp as on AWS with McpEnabled, when the SDK is installed (the
            # `local` extra brings it): agents reach the same runs as the API and the console
            mcp=importlib.util.find_spec("mcp") is not None,
        )
        self.pumps: list[_LocalPump | _SqsPump] = []
        """One per draining thread: ``orchestrators`` of them, then ``step_workers``."""
        for function, count in (("Orchestrator", orchestrators), ("StepWorker", step_workers)):
            for _ in range(count):
                handler = self._handler(function, max_receives)
                if self.local_queue is not None:
                    name: QueueName = "orchestrator" if function == "Orchestrator" else "step"
                    self.pumps.append(_LocalPump(self.local_queue, name, handler, function))
                else:
                    url, arn = urls["orchestrator" if function == "Orchestrator" else "step"]
                    self.pumps.append(_SqsPump(sqs_client, url, arn, handler, function))
        self.sweep_every = sweep_every
        self._server = ThreadingHTTPServer((host, port), _http_handler(api.resolve, identity))
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def _handler(self, function: str, max_receives: int) -> Handler:
        """A fresh batch handler of ``function`` (each draining thread needs its own)."""
        from ..aws.workers import orchestrator_handler, step_worker_handler

        make = orchestrator_handler if function == "Orchestrator" else step_worker_handler
        return make(self.service, max_receives=max_receives)

    @property
    def url(self) -> str:
        """The API's base URL."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        """Serve the API and drain the queues in background threads."""
        self._threads = [
            threading.Thread(target=self._server.serve_forever, name="lf-api", daemon=True),
            *(
                threading.Thread(
                    target=self._drain, args=(pump,), name=f"lf-{pump.function}-{i}", daemon=True
                )
                for i, pump in enumerate(self.pumps)
            ),
            threading.Thread(target=self._sweep, name="lf-sweeper", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        logger.info("dev runtime started", extra={"url": self.url})

    def stop(self) -> None:
        """Stop serving and draining; wait (10 s at most) for the threads; close connections."""
        self._stop.set()
        self._server.shutdown()
        if self.local_queue is not None:
            self.local_queue.wake()
        deadline = time.monotonic() + 10
        for thread in self._threads:
            thread.join(timeout=max(deadline - time.monotonic(), 0))
        self._server.server_close()
        self.store.close()

    def _drain(self, pump: _LocalPump | _SqsPump) -> None:
        while not self._stop.is_set():
            try:
                pump.pump_once()  # blocks (a long poll) while its queue is empty
            except Exception:
                logger.exception("queue pump failed", extra={"function": pump.function})
                self._stop.wait(1.0)

    def _sweep(self) -> None:
        while not self._stop.wait(self.sweep_every.total_seconds()):
            try:
                self.dispatcher.sweep()
            except Exception:
                logger.exception("sweep failed")

    def serve_until_stopped(self, queues: str) -> None:
        """Start, say where the API is, and run until Ctrl-C or SIGTERM; then stop cleanly.

        SIGTERM stops it as Ctrl-C does: a process started in the background (``make test &``)
        inherits SIGINT ignored, and only SIGTERM can still reach it.
        """
        import signal

        def stopped(signum: int, frame: object) -> None:
            raise _Stopped  # like KeyboardInterrupt: it unwinds the wait below, whatever it is

        from .dev_endpoint import DevEndpoint, published

        previous = signal.signal(signal.SIGTERM, stopped)
        try:
            self.start()
            # Other commands (start, resume) find this runtime and hand their runs to it.
            endpoint = DevEndpoint(self.url, os.getpid(), self.database_url, self.schema)
            with published(endpoint):
                print(f"lambda-flow dev: API on {self.url} ({queues}; Ctrl-C stops)", flush=True)
                if self.console:
                    print(f"lambda-flow dev: console on {self.url}/console", flush=True)
                threading.Event().wait()
        except (KeyboardInterrupt, _Stopped):
            pass
        finally:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second one must not cut stop()
            try:
                self.stop()
            finally:
                signal.signal(signal.SIGTERM, previous)
        print("lambda-flow dev: stopped", flush=True)

    def __enter__(self) -> DevRuntime:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Stopped(BaseException):
    """SIGTERM arrived: unwinds :meth:`DevRuntime.serve_until_stopped`'s wait."""


def _ensure_sqs_queues(
    client: Any, prefix: str, visibility: timedelta, max_receives: int
) -> dict[str, tuple[str, str]]:
    """Create (or find) the orchestrator and step queues with DLQs; ``{name: (url, arn)}``."""
    found: dict[str, tuple[str, str]] = {}
    for name in ("orchestrator", "step"):
        dlq_url = client.create_queue(QueueName=f"{prefix}-{name}-dlq")["QueueUrl"]
        dlq_arn = client.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        url = client.create_queue(
            QueueName=f"{prefix}-{name}",
            Attributes={
                "VisibilityTimeout": str(int(visibility.total_seconds())),
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receives)}
                ),
            },
        )["QueueUrl"]
        arn = client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        found[name] = (url, arn)
    return found


def _ensure_schedule_group(client: Any, name: str) -> str:
    with contextlib.suppress(client.exceptions.ConflictException):  # from an earlier start
        client.create_schedule_group(Name=name)
    return name


def aws_clients_from_environment() -> tuple[Any, Any]:
    """Boto3 SQS and Scheduler clients for ``AWS_ENDPOINT_URL`` (moto, LocalStack).

    ``(None, None)`` when it is unset. With ``LAMBDA_FLOW_LOCALSTACK=1``, localstack-client's
    session is used (it knows LocalStack's endpoints and test credentials).
    """
    if os.environ.get("LAMBDA_FLOW_LOCALSTACK", "").lower() in {"1", "true", "yes"}:
        import localstack_client.session

        session = localstack_client.session.Session()
        return session.client("sqs"), session.client("scheduler")
    if not os.environ.get("AWS_ENDPOINT_URL"):
        return None, None
    import boto3

    return boto3.client("sqs"), boto3.client("scheduler")

"""One runtime per warm Lambda process: settings, the app, a connection pool, the queues.

Built on the first invocation (or at import time of a handler module) and reused by every
invocation after it, so connections and clients survive across warm starts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..core import Clock
from ..engine import Flow, Observer, load_flow
from ..service import WorkflowService
from ..store.postgres import PostgresStore
from ..transport._aws import aws_client, reset_aws_session
from ..transport.scheduler import WakeupScheduler
from ..transport.sqs import SqsJobQueue
from .config import AwsSettings, database_url_from_secret

_SQS_URL = re.compile(
    r"^https://sqs\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/(\d{12})/([\w-]+(?:\.fifo)?)$"
)


@dataclass(slots=True)
class Runtime:
    """Everything a handler needs, built once per process."""

    settings: AwsSettings
    flow: Flow
    store: PostgresStore
    queue: SqsJobQueue | None
    service: WorkflowService


_runtimes: dict[AwsSettings, Runtime] = {}


def queue_arn(url: str, sqs: Any) -> str:
    """The ARN of the queue at ``url``: read off a standard URL, else asked of SQS."""
    match = _SQS_URL.match(url)
    if match:
        region, account, name = match.groups()
        partition = "aws-cn" if url.split("/")[2].endswith(".cn") else "aws"
        return f"arn:{partition}:sqs:{region}:{account}:{name}"
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return str(attributes["Attributes"]["QueueArn"])


def get_runtime(
    *,
    require_queues: bool = True,
    sqs_client: Any = None,
    scheduler_client: Any = None,
    secrets_client: Any = None,
    observer: Observer | None = None,
    clock: Clock | None = None,
    **overrides: Any,
) -> Runtime:
    """The process's runtime for these settings (from ``overrides`` and the environment).

    The first call for given settings builds it; later calls return the same one (the clients,
    observer and clock of the first call stay: tests build it first with a time-skipping clock
    and moto clients, then import the handler modules).

    Raises:
        ConfigurationError: a setting is missing or malformed (named in the message).
    """
    settings = AwsSettings.load(require_queues=require_queues, **overrides)
    cached = _runtimes.get(settings)
    if cached is not None:
        return cached
    flow = load_flow(settings.app)
    url = settings.database_url or database_url_from_secret(
        settings.database_secret_arn or "", client=secrets_client
    )
    store = PostgresStore(url, schema=settings.schema, min_connections=1, max_connections=2)
    queue = None
    if settings.orchestrator_queue_url and settings.step_queue_url:
        if sqs_client is None:
            sqs_client = aws_client("sqs")
        scheduler = None
        if settings.schedule_group and settings.scheduler_role_arn:
            scheduler = WakeupScheduler(
                settings.schedule_group,
                settings.scheduler_role_arn,
                queue_arn(settings.orchestrator_queue_url, sqs_client),
                client=scheduler_client,
            )
        queue = SqsJobQueue(
            settings.orchestrator_queue_url,
            settings.step_queue_url,
            client=sqs_client,
            scheduler=scheduler,
        )
    runtime = Runtime(
        settings=settings,
        flow=flow,
        store=store,
        queue=queue,
        service=WorkflowService(flow, store=store, queue=queue, observer=observer, clock=clock),
    )
    _runtimes[settings] = runtime
    return runtime


def reset_runtimes() -> None:
    """Close and forget every cached runtime (tests use this between cases)."""
    for runtime in _runtimes.values():
        runtime.store.close()
    _runtimes.clear()
    reset_aws_session()

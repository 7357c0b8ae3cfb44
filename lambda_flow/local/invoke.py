"""``lambda-flow invoke``: one function, one event, the way ``sam local invoke`` runs it.

The function's handler is built from the same factories its ``handlers/`` module uses, on the
local database, with local queues standing in for SQS: the handler's answer is returned, and the
messages it sent are listed (they are not processed, exactly as a single invocation would leave
them on the real queues).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..core import ConfigurationError, SystemClock
from ..engine import Flow
from ..service import WorkflowService
from ..store.postgres import PostgresStore
from ..transport.local import WORK_QUEUES, LocalQueue
from .dev import LOCAL_IDENTITY, LocalContext

FUNCTIONS = ("Api", "Orchestrator", "StepWorker", "Sweeper", "QueueStart", "ScheduleStart")
"""The template's function names that ``invoke`` knows."""


@dataclass(frozen=True, slots=True)
class Invocation:
    """What one invocation returned and left behind on the queues."""

    response: Any
    queued: list[dict[str, Any]] = field(default_factory=list)
    """Messages sent during the invocation: ``{"queue", "body", "delay_seconds"}``."""


def invoke(
    function: str,
    event: Any,
    *,
    flow: Flow,
    database_url: str,
    schema: str = "workflows",
    workflow: str | None = None,
) -> Invocation:
    """Run the handler of ``function`` (one of :data:`FUNCTIONS`) on ``event``.

    Args:
        function: the template's name of the function.
        event: the event the handler gets, as ``sam local invoke -e`` would pass it.
        flow: the application.
        database_url: the Postgres the handler uses.
        schema: the schema of lambda-flow's tables.
        workflow: the workflow QueueStart and ScheduleStart start.

    Raises:
        ConfigurationError: an unknown function, or a trigger without a workflow.
    """
    if function not in FUNCTIONS:
        raise ConfigurationError(
            f"unknown function {function!r}: expected one of {', '.join(FUNCTIONS)}"
        )
    clock = SystemClock()
    queue = LocalQueue(clock)
    store = PostgresStore(database_url, schema=schema)
    try:
        service = WorkflowService(flow, store=store, queue=queue, clock=clock)
        handler = _handler(function, service, flow, workflow)
        response = handler(event, LocalContext.for_function(function))
        queued = [
            {
                "queue": message.queue,
                "body": message.body,
                # Rounded up, as lambda-flow rounds SQS DelaySeconds.
                "delay_seconds": max(
                    math.ceil((message.deliver_at - message.sent_at).total_seconds()), 0
                ),
            }
            for name in WORK_QUEUES
            for message in queue.messages
            if message.queue == name
        ]
        return Invocation(response=response, queued=queued)
    finally:
        store.close()


def _handler(
    function: str, service: WorkflowService, flow: Flow, workflow: str | None
) -> Callable[[Any, Any], Any]:
    from ..aws import workers
    from ..aws.api import build_api

    if function == "Api":
        api = build_api(service, flow)

        def resolve(event: Any, context: Any) -> Any:
            # API Gateway's IAM authorizer would have put a caller there; sam local does too.
            context_ = event.setdefault("requestContext", {})
            context_.setdefault("authorizer", {"iam": dict(LOCAL_IDENTITY)})
            return api.resolve(event, context)

        return resolve
    if function == "Orchestrator":
        return workers.orchestrator_handler(service)
    if function == "StepWorker":
        return workers.step_worker_handler(service)
    if function == "Sweeper":
        sweep = workers.sweeper(service)

        def swept(event: Any, context: Any) -> Any:
            # What handlers/sweeper.py answers (without its metrics).
            report = sweep()
            return {"runs": report.runs, "step_jobs": len(report.step_jobs)}

        return swept
    if not workflow:
        raise ConfigurationError(
            f"{function} starts a workflow: name it with --workflow "
            "(LAMBDA_FLOW_TRIGGER_WORKFLOW in the template)"
        )
    if function == "QueueStart":
        return workers.queue_trigger_handler(service, workflow)
    return workers.schedule_trigger_handler(service, workflow)

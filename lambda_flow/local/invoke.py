"""``lambda-flow invoke``: one function, one event, the way ``sam local invoke`` runs it.

The function's handler is built from the same factories its ``handlers/`` module uses, on the
local database, with local queues standing in for SQS: the handler's answer is returned, and the
messages it sent are listed (they are not processed, exactly as a single invocation would leave
them on the real queues).

Two things make the sample events in ``events/`` work out of the box:

- An event may carry a ``"lambda_flow_sample_run": {"workflow": ..., "input": ...}`` entry
  (removed before the handler sees the event). When the run the event names does not exist in
  this database, ``invoke`` starts that run as a stand-in and puts its id in the event (for a
  step worker's event, the stand-in's first step job too); a note on stderr says so.
- ``POST /workflows/{name}/run`` waits for the run to end, and in a single invocation nobody
  drains the queues: the Api function runs that route inline, so the run is driven inside the
  invocation (as far as its ``timeout`` allows), exactly as ``lambda-flow run`` would.
"""

from __future__ import annotations

import json
import math
import re
import sys
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

SAMPLE_RUN_KEY = "lambda_flow_sample_run"
"""An event's entry naming the stand-in run to start when the run it names does not exist."""

_RUN_ID = re.compile(r'"run_id"\s*:\s*"([^"]+)"')


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
        sample = event.pop(SAMPLE_RUN_KEY, None) if isinstance(event, dict) else None
        if sample is not None:
            event = _with_sample_run(event, function, service, sample)
            queue.messages.clear()  # only what the invocation itself sends is reported
        if function == "Api" and _is_run_route(event):
            service = WorkflowService(flow, store=store, clock=clock)  # inline: see above
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


def _is_run_route(event: Any) -> bool:
    route = event.get("routeKey", "") if isinstance(event, dict) else ""
    return isinstance(route, str) and route.startswith("POST ") and route.endswith("/run")


def _named_run(event: dict[str, Any], function: str) -> str | None:
    """The run id an event of ``function`` names, if any."""
    if function in ("Orchestrator", "StepWorker"):
        records = event.get("Records") or [{}]
        found = _RUN_ID.search(str(records[0].get("body", "")))
        return found.group(1) if found else None
    if function == "Api":
        run_id = (event.get("pathParameters") or {}).get("run_id")
        return str(run_id) if run_id else None
    return None


def _with_sample_run(
    event: dict[str, Any], function: str, service: WorkflowService, sample: Any
) -> dict[str, Any]:
    """``event`` naming a stand-in run when the run it names does not exist (see the module)."""
    named = _named_run(event, function)
    if named is None or service.get_run(named) is not None:
        return event
    if not isinstance(sample, dict) or not isinstance(sample.get("workflow"), str):
        raise ConfigurationError(
            f"{SAMPLE_RUN_KEY} must be an object with a 'workflow' name and an 'input'"
        )
    run_id = service.start(sample["workflow"], sample.get("input"))
    text = json.dumps(event).replace(named, run_id)
    note = f"the event's run {named} is not in this database: using stand-in run {run_id}"
    if function == "StepWorker":
        service.orchestrate(run_id)  # its first pass schedules the first step job
        jobs = [m.body for m in getattr(service.queue, "messages", []) if m.queue == "step"]
        if jobs:
            replaced = json.loads(text)
            replaced["Records"][0]["body"] = jobs[0]
            text = json.dumps(replaced)
            note += f" (step job {jobs[0]})"
    print(f"invoke: {note}", file=sys.stderr)
    result: dict[str, Any] = json.loads(text)
    return result


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
            return {
                "runs": report.runs,
                "step_jobs": len(report.step_jobs),
                "deleted_runs": report.deleted_runs,
            }

        return swept
    if not workflow:
        raise ConfigurationError(
            f"{function} starts a workflow: name it with --workflow "
            "(LAMBDA_FLOW_TRIGGER_WORKFLOW in the template)"
        )
    if function == "QueueStart":
        return workers.queue_trigger_handler(service, workflow)
    return workers.schedule_trigger_handler(service, workflow)

"""SQS batch handlers: the orchestrator, the step worker, and starting workflows from a queue.

Each record is handled on its own with powertools' ``BatchProcessor``; a failing record (a
malformed body, an unknown run, a database error) is reported in ``batchItemFailures`` and only
it comes back. On the queue's last receive (``LAMBDA_FLOW_MAX_RECEIVES``, matching the redrive
policy's ``maxReceiveCount``) a failing message that names a run fails that run with the reason,
so the run shows why its message went to the dead-letter queue.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from .._dispatch import Dispatcher
from .._errors import InvalidInput, LambdaFlowError, RunNotFound
from .._models import ErrorInfo
from .._service import WorkflowService
from ..transport.base import message_run_id, parse_run_message

logger = logging.getLogger("lambda_flow")

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


def _dead_letter(service: WorkflowService, record: SQSRecord, exc: Exception, limit: int) -> None:
    """On the last receive, record on the run why its message is going to the DLQ."""
    receives = int(record.attributes.approximate_receive_count or 0)
    if receives < limit:
        return
    run_id = message_run_id(record.body)
    if run_id is None:
        return
    error = ErrorInfo(
        type="DeadLetter",
        message=f"message {record.message_id} failed {receives} times and went to the "
        f"dead-letter queue: {type(exc).__name__}: {exc}",
    )
    if service.store.fail_run(run_id, error, service.clock.now()):
        logger.error("run failed: its message went to the DLQ", extra={"run_id": run_id})


def _batch_handler(
    handle: Callable[[SQSRecord], None],
    service: WorkflowService,
    max_receives: int,
    *,
    dead_letter_runs: bool = True,
) -> Handler:
    """``dead_letter_runs``: the messages are engine jobs naming runs (not workflow input), so a
    message's last failure fails the run it names."""
    # A batch whose every record fails is reported record by record too, not raised: the
    # event source mapping then retries exactly those, and the function does not count an error.
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

    def record_handler(record: SQSRecord) -> None:
        try:
            handle(record)
        except Exception as exc:
            logger.warning(
                "message failed",
                extra={"message_id": record.message_id, "error": f"{type(exc).__name__}: {exc}"},
            )
            if dead_letter_runs:
                _dead_letter(service, record, exc, max_receives)
            raise

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return dict(
            process_partial_response(
                event=event, record_handler=record_handler, processor=processor, context=context
            )
        )

    return handler


def orchestrator_handler(service: WorkflowService, *, max_receives: int = 5) -> Handler:
    """Handles ``{"run_id"}`` messages: orchestration passes, until the run parks or ends."""
    dispatcher = Dispatcher(service)

    def handle(record: SQSRecord) -> None:
        if dispatcher.run_message(record.body) is None:
            run_id = parse_run_message(record.body)
            if service.get_run(run_id) is None:
                raise RunNotFound(run_id)

    return _batch_handler(handle, service, max_receives)


def step_worker_handler(
    service: WorkflowService,
    *,
    max_receives: int = 5,
    step_timeout: timedelta = timedelta(minutes=5),
) -> Handler:
    """Handles ``{"run_id", "step_key", "attempt"}`` messages: one RPC step attempt each, then
    the orchestration continues in the same invocation when the run's lease is free."""
    dispatcher = Dispatcher(service, step_timeout=step_timeout)

    def handle(record: SQSRecord) -> None:
        from .._worker import JobResult

        if dispatcher.step_message(record.body) is JobResult.SKIPPED:
            run_id = message_run_id(record.body)
            if run_id is not None and service.get_run(run_id) is None:
                raise RunNotFound(run_id)

    return _batch_handler(handle, service, max_receives)


def queue_trigger_handler(
    service: WorkflowService, workflow: str, *, max_receives: int = 5
) -> Handler:
    """Starts ``workflow`` once per SQS message, its JSON body as the input.

    Idempotent on the SQS message id, so a redelivered message never starts a second run.
    Input that fails validation fails the record (and, after the queue's max receives, it lands
    in that queue's DLQ) without writing anything.
    """
    service.flow.get_workflow(workflow)  # fail at cold start on an unknown name

    def handle(record: SQSRecord) -> None:
        import json

        try:
            data = json.loads(record.body)
        except ValueError as exc:
            raise InvalidInput(
                f"workflow {workflow!r}", [{"loc": ["body"], "msg": f"not JSON: {exc}"}]
            ) from None
        run_id = service.start(workflow, data, idempotency_key=f"sqs:{record.message_id}")
        logger.info(
            "run started from queue",
            extra={"run_id": run_id, "workflow": workflow, "message_id": record.message_id},
        )

    # Trigger bodies are workflow input: a "run_id" in one names no run of ours.
    return _batch_handler(handle, service, max_receives, dead_letter_runs=False)


def schedule_trigger_handler(service: WorkflowService, workflow: str) -> Handler:
    """Starts ``workflow`` from an EventBridge schedule or rule event.

    The input is the event's ``detail`` (or, for a Scheduler target with a custom input, the event
    itself); the event ``id`` makes the start idempotent when EventBridge delivers twice.
    """
    service.flow.get_workflow(workflow)

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        if not isinstance(event, dict):
            raise InvalidInput(
                f"workflow {workflow!r}", [{"loc": [], "msg": "event is not an object"}]
            )
        data = event.get("detail", event) if "detail-type" in event else event
        key = event.get("id")
        run_id = service.start(
            workflow, data or {}, idempotency_key=f"event:{key}" if key else None
        )
        logger.info("run started from schedule", extra={"run_id": run_id, "workflow": workflow})
        return {"run_id": run_id}

    return handler


__all__ = [
    "LambdaFlowError",
    "orchestrator_handler",
    "queue_trigger_handler",
    "schedule_trigger_handler",
    "step_worker_handler",
]

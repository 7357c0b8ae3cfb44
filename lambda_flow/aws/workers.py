"""SQS batch handlers: the orchestrator, the step worker, and starting workflows from a queue.

Each record is handled on its own (``_sqs_batch``); a failing record (a malformed body, an
unknown run, a database error) is reported in ``batchItemFailures`` and only it comes back. On
the queue's last receive (``LAMBDA_FLOW_MAX_RECEIVES``, matching the redrive policy's
``maxReceiveCount``) a failing message that is the engine's own message for a run's current work
(a pass of a running run, the step attempt now scheduled or running) fails that run with the
reason, so the run shows why its message went to the dead-letter queue. Any other message (junk,
a stale attempt, a body that merely names a run) goes to the DLQ alone and leaves the run as it
is.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from ..core import (
    ErrorInfo,
    InvalidInput,
    InvalidMessage,
    LambdaFlowError,
    RunNotFound,
    StepStatus,
    StoreUnavailable,
)
from ..service import WorkflowService
from ..transport.base import message_run_id, parse_run_message, parse_step_message
from ..worker import Dispatcher, JobResult, SweepReport
from ._sqs_batch import SQSRecord, process_partial_response

logger = logging.getLogger("lambda_flow")

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


CurrentWork = Callable[[WorkflowService, SQSRecord], "str | None"]
"""The run a message is the engine's message for the current work of, or None."""


def _current_pass(service: WorkflowService, record: SQSRecord) -> str | None:
    try:
        return parse_run_message(record.body)
    except InvalidMessage:
        return None


def _current_step(service: WorkflowService, record: SQSRecord) -> str | None:
    try:
        job = parse_step_message(record.body)
    except InvalidMessage:
        return None
    for step in service.store.get_steps(job.run_id):
        if step.key == job.step_key:
            outstanding = step.status in (StepStatus.SCHEDULED, StepStatus.RUNNING)
            return job.run_id if outstanding and step.attempt == job.attempt else None
    return None


def _dead_letter(
    service: WorkflowService,
    record: SQSRecord,
    exc: Exception,
    limit: int,
    current_work: CurrentWork,
) -> None:
    """On the last receive, record on the run why its message is going to the DLQ.

    Only when the message is the engine's own for that run's current work.
    """
    receives = int(record.attributes.approximate_receive_count or 0)
    if receives < limit:
        return
    if isinstance(exc, StoreUnavailable):
        # An outage is not the run's fault: the message goes, the run stays; the sweeper
        # re-drives it once the database is back (invariant 6, docs/architecture.md).
        logger.error("message went to the DLQ during a database outage; no run changed")
        return
    run_id = current_work(service, record)
    if run_id is None:
        logger.warning(
            "message going to the DLQ names no current work; no run changed",
            extra={"message_id": record.message_id},
        )
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
    current_work: CurrentWork | None = None,
    invocation: _Invocation | None = None,
) -> Handler:
    """An SQS batch handler over ``handle``, reporting failed records one by one.

    With ``current_work``, the messages are engine jobs (not workflow input): a message's last
    failure fails the run it is the current work of. ``invocation`` is told each invocation's
    Lambda context before its records are handled.
    """

    def record_handler(record: SQSRecord) -> None:
        try:
            handle(record)
        except Exception as exc:
            logger.warning(
                "message failed",
                extra={"message_id": record.message_id, "error": f"{type(exc).__name__}: {exc}"},
            )
            if current_work is not None:
                _dead_letter(service, record, exc, max_receives, current_work)
            raise

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        if invocation is not None:
            invocation.context = context
        # A batch whose every record fails is reported record by record too, not raised: the
        # event source mapping then retries exactly those, and the function counts no error.
        return dict(process_partial_response(event, record_handler))

    return handler


class _Invocation:
    """The Lambda invocation under way: how long it may still run."""

    context: Any = None

    def remaining(self) -> timedelta:
        """Lambda's remaining time (a day outside Lambda: no bound of its own)."""
        remaining = getattr(self.context, "get_remaining_time_in_millis", None)
        if not callable(remaining):
            return timedelta(days=1)
        return timedelta(milliseconds=remaining())


def orchestrator_handler(service: WorkflowService, *, max_receives: int = 5) -> Handler:
    """Handles ``{"run_id"}`` messages: orchestration passes, until the run parks or ends."""
    dispatcher = Dispatcher(service)

    def handle(record: SQSRecord) -> None:
        if dispatcher.run_message(record.body) is None:
            run_id = parse_run_message(record.body)
            if service.get_run(run_id) is None:
                raise RunNotFound(run_id)

    return _batch_handler(handle, service, max_receives, current_work=_current_pass)


def step_worker_handler(
    service: WorkflowService,
    *,
    max_receives: int = 5,
    step_timeout: timedelta = timedelta(minutes=5),
) -> Handler:
    """Handle step messages ``{"run_id", "step_key", "attempt"}``: one RPC step attempt each.

    The orchestration continues in the same invocation when the run's lease is free, and so
    does a sequential run's next step (chained) while the invocation has more than
    ``step_timeout`` (plus a margin) of its time left.
    """
    dispatcher = Dispatcher(service, step_timeout=step_timeout)
    invocation = _Invocation()

    def handle(record: SQSRecord) -> None:
        # The worker runs the run's next step itself when its pass schedules just that one,
        # while the invocation has time for a whole claim left (then the queue takes over).
        result = dispatcher.step_message(record.body, remaining=invocation.remaining)
        if result is JobResult.SKIPPED:
            run_id = message_run_id(record.body)
            if run_id is not None and service.get_run(run_id) is None:
                raise RunNotFound(run_id)

    return _batch_handler(
        handle, service, max_receives, current_work=_current_step, invocation=invocation
    )


RETENTION_BATCHES = 5
"""Retention batches one sweep deletes at most, so a sweep stays short."""
RETENTION_BATCH_SIZE = 500
"""Finished runs per retention batch (one short statement each)."""


def sweeper(service: WorkflowService, *, retention_days: int = 0) -> Callable[..., SweepReport]:
    """What the sweeper function does on each tick of its schedule.

    It re-drives due timers, expired leases, results no pass has seen, step jobs never sent and
    runs that lost their way. With ``retention_days`` (``LAMBDA_FLOW_RETENTION_DAYS``), it also
    deletes finished runs that ended more than that many days ago, at most
    ``RETENTION_BATCHES`` x ``RETENTION_BATCH_SIZE`` a sweep; running and suspended runs never.
    """
    dispatcher = Dispatcher(service)
    retention = timedelta(days=retention_days) if retention_days > 0 else None

    def sweep(**ages: Any) -> SweepReport:
        """One sweep; ``ages`` override ``Dispatcher.sweep``'s (``unsent_after=``...)."""
        return dispatcher.sweep(
            retention=retention,
            retention_batches=RETENTION_BATCHES,
            retention_batch_size=RETENTION_BATCH_SIZE,
            **ages,
        )

    return sweep


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
    return _batch_handler(handle, service, max_receives)


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
    "sweeper",
]

"""Lambda entry point: start ``LAMBDA_FLOW_TRIGGER_WORKFLOW`` once per SQS message.

The message body is the input; the message id makes the start idempotent.
"""

from __future__ import annotations

from typing import Any

from ..aws.config import trigger_workflow
from ..aws.workers import queue_trigger_handler
from . import cold_start_done
from ._common import setup

logger, tracer, metrics, runtime = setup("queue-start")
_handle = queue_trigger_handler(
    runtime.service, trigger_workflow(), max_receives=runtime.settings.max_receives
)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Start one run per message of one SQS batch."""
    return _handle(event, context)


cold_start_done()  # the collector back on (lambda_flow.handlers)

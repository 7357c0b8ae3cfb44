"""Lambda entry point: start ``LAMBDA_FLOW_TRIGGER_WORKFLOW`` from an EventBridge schedule.

The event's ``detail`` or the schedule's input is the workflow input.
"""

from __future__ import annotations

from typing import Any

from handlers._common import setup
from lambda_flow.aws.config import trigger_workflow
from lambda_flow.aws.workers import schedule_trigger_handler

logger, tracer, metrics, runtime = setup("schedule-start")
_handle = schedule_trigger_handler(runtime.service, trigger_workflow())


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Start a run for one schedule event."""
    return _handle(event, context)

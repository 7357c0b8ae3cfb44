"""Lambda entry point: start ``LAMBDA_FLOW_TRIGGER_WORKFLOW`` from an EventBridge schedule.

The event's ``detail`` or the schedule's input is the workflow input.
"""

from __future__ import annotations

from typing import Any

from ..aws.config import trigger_workflow
from ..aws.workers import schedule_trigger_handler
from . import cold_start_done
from ._common import setup

logger, tracer, metrics, runtime = setup("schedule-start")
_handle = schedule_trigger_handler(runtime.service, trigger_workflow())


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Start a run for one schedule event."""
    return _handle(event, context)


cold_start_done()  # the collector back on (lambda_flow.handlers)

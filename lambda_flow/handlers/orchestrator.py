"""Lambda entry point: orchestration passes for ``{"run_id"}`` messages (SQS batch)."""

from __future__ import annotations

from typing import Any

from ..aws.workers import orchestrator_handler
from . import cold_start_done
from ._common import setup

logger, tracer, metrics, runtime = setup("orchestrator")
_handle = orchestrator_handler(runtime.service, max_receives=runtime.settings.max_receives)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Handle one SQS batch of orchestration messages."""
    return _handle(event, context)


cold_start_done()  # the collector back on (lambda_flow.handlers)

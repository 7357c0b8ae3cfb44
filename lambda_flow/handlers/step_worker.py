"""Lambda entry point: one RPC step attempt per ``{"run_id", "step_key", "attempt"}`` message.

Messages come in SQS batches; the orchestration continues in the same invocation when it can.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from ..aws.workers import step_worker_handler
from . import cold_start_done
from ._common import setup

logger, tracer, metrics, runtime = setup("step-worker")
_handle = step_worker_handler(
    runtime.service,
    max_receives=runtime.settings.max_receives,
    step_timeout=timedelta(seconds=runtime.settings.step_timeout_seconds),
)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Handle one SQS batch of step messages."""
    return _handle(event, context)


cold_start_done()  # the collector back on (lambda_flow.handlers)

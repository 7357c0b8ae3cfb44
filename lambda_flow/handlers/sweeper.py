"""Lambda entry point (EventBridge rate rule): the sweeper.

Each tick re-drives due timers, expired leases, step jobs never sent and runs that lost their way,
and with ``LAMBDA_FLOW_RETENTION_DAYS`` deletes finished runs older than that, in bounded batches.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from ..aws.workers import sweeper
from . import cold_start_done
from ._common import setup

logger, tracer, metrics, runtime = setup("sweeper")
_sweep = sweeper(runtime.service, retention_days=runtime.settings.retention_days)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Sweep once and report what was re-driven (and how many finished runs were deleted)."""
    report = _sweep()
    metrics.add_metric(name="SweptRuns", unit=MetricUnit.Count, value=len(report.runs))
    metrics.add_metric(name="SweptStepJobs", unit=MetricUnit.Count, value=len(report.step_jobs))
    metrics.add_metric(name="DeletedRuns", unit=MetricUnit.Count, value=report.deleted_runs)
    return {
        "runs": report.runs,
        "step_jobs": len(report.step_jobs),
        "deleted_runs": report.deleted_runs,
    }


cold_start_done()  # the collector back on (lambda_flow.handlers)

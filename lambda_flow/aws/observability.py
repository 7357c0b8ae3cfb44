"""Powertools for logs, traces and metrics: an :class:`~lambda_flow.engine._observe.Observer`.

Structured logs carry ``run_id``, ``workflow`` and ``step`` keys; each step attempt gets an X-Ray
subsegment; EMF metrics count steps succeeded, failed and retried, runs completed and failed,
and record run duration.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from ..core import ErrorInfo, RunStatus, StepKind, StepStatus
from ..engine import StepInfo, run_fields, step_fields

NAMESPACE = "LambdaFlow"


class PowertoolsObserver:
    """Reports engine events through a powertools ``Logger``, ``Tracer`` and ``Metrics``."""

    def __init__(self, logger: Any, tracer: Any, metrics: Any) -> None:
        self.logger = logger
        self.tracer = tracer
        self.metrics = metrics

    @contextlib.contextmanager
    def step(self, info: StepInfo, kind: StepKind) -> Iterator[None]:
        keys = {"run_id": info.run_id, "workflow": info.workflow, "step": info.step_id}
        self.logger.append_keys(**keys)
        try:
            with self.tracer.provider.in_subsegment(name=f"## step {info.step_id}") as segment:
                segment.put_annotation(key="run_id", value=info.run_id)
                segment.put_annotation(key="workflow", value=info.workflow)
                segment.put_annotation(key="step", value=info.step_id)
                segment.put_annotation(key="attempt", value=info.attempt)
                yield
        finally:
            self.logger.remove_keys(["step"])

    def step_finished(
        self,
        info: StepInfo,
        kind: StepKind,
        status: StepStatus,
        *,
        retrying: bool,
        error: ErrorInfo | None = None,
    ) -> None:
        from aws_lambda_powertools.metrics import MetricUnit

        name = (
            "StepSucceeded"
            if status is StepStatus.SUCCEEDED
            else ("StepRetried" if retrying else "StepFailed")
        )
        self.metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
        self.logger.info(
            "step attempt finished",
            extra=step_fields(info, kind, status, retrying=retrying, error=error),
        )

    def run_finished(
        self, run_id: str, workflow: str, status: RunStatus, duration_seconds: float
    ) -> None:
        from aws_lambda_powertools.metrics import MetricUnit

        if status is RunStatus.COMPLETED:
            self.metrics.add_metric(name="RunCompleted", unit=MetricUnit.Count, value=1)
        elif status is RunStatus.FAILED:
            self.metrics.add_metric(name="RunFailed", unit=MetricUnit.Count, value=1)
        if status.is_terminal:
            self.metrics.add_metric(
                name="RunDuration", unit=MetricUnit.Seconds, value=duration_seconds
            )
        self.logger.info(
            "run finished", extra=run_fields(run_id, workflow, status, duration_seconds)
        )

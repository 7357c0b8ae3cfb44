"""Long timers with EventBridge Scheduler: a one-time ``at(...)`` schedule per wake-up."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from .base import run_message

logger = logging.getLogger("lambda_flow")


def schedule_name(run_id: str, when: datetime) -> str:
    """Deterministic, so creating the same wake-up twice is harmless (a conflict we ignore)."""
    return f"lf-{run_id}-{int(when.timestamp())}"


class WakeupScheduler:
    """Creates one-time schedules that put ``{"run_id"}`` on the orchestrator queue.

    Args:
        group: the schedule group (``LAMBDA_FLOW_SCHEDULE_GROUP``).
        role_arn: the role Scheduler assumes to send to the queue
            (``LAMBDA_FLOW_SCHEDULER_ROLE_ARN``).
        queue_arn: the orchestrator queue's ARN (the target).
        client: a ``scheduler`` client, botocore's or boto3's (a botocore one is made when
            omitted).
    """

    def __init__(self, group: str, role_arn: str, queue_arn: str, *, client: Any = None) -> None:
        if client is None:
            from ._aws import aws_client

            client = aws_client("scheduler")
        self.group = group
        self.role_arn = role_arn
        self.queue_arn = queue_arn
        self.client = client

    def schedule_wakeup(self, run_id: str, when: datetime) -> str:
        """Create the schedule (idempotently) and return its name."""
        name = schedule_name(run_id, when)
        at = when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
        try:
            self.client.create_schedule(
                Name=name,
                GroupName=self.group,
                ScheduleExpression=f"at({at})",
                ScheduleExpressionTimezone="UTC",
                FlexibleTimeWindow={"Mode": "OFF"},
                ActionAfterCompletion="DELETE",
                Target={
                    "Arn": self.queue_arn,
                    "RoleArn": self.role_arn,
                    "Input": run_message(run_id),
                },
            )
        except self.client.exceptions.ConflictException:
            logger.info("wake-up already scheduled", extra={"run_id": run_id, "schedule": name})
        return name

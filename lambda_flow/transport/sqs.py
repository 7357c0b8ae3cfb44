"""Jobs over SQS: ids only, payloads stay in Postgres so SQS size limits never matter.

Timers up to 15 minutes use ``DelaySeconds``; longer ones an EventBridge Scheduler one-time
schedule (see :mod:`lambda_flow.transport.scheduler`) or, without one, a chain of 15-minute
delays (a pass woken early just waits again).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from .base import StepJob, run_message, step_message

if TYPE_CHECKING:
    from .scheduler import WakeupScheduler

logger = logging.getLogger("lambda_flow")

MAX_SQS_DELAY = timedelta(minutes=15)
_BATCH = 10  # SendMessageBatch's limit


class SqsJobQueue:
    """The :class:`~lambda_flow.transport.base.JobQueue` of remote mode on AWS.

    Args:
        orchestrator_queue_url: where orchestration passes are requested.
        step_queue_url: where RPC step attempts are requested.
        client: an SQS client, botocore's or boto3's (a botocore one is made when omitted).
        scheduler: creates EventBridge schedules for timers beyond 15 minutes.
    """

    def __init__(
        self,
        orchestrator_queue_url: str,
        step_queue_url: str,
        *,
        client: Any = None,
        scheduler: WakeupScheduler | None = None,
    ) -> None:
        if client is None:
            from ._aws import aws_client

            client = aws_client("sqs")
        self.orchestrator_queue_url = orchestrator_queue_url
        self.step_queue_url = step_queue_url
        self.client = client
        self.scheduler = scheduler
        self.sent = 0
        """Messages sent by this queue (SendMessage entries, batch entries included)."""
        self.calls = 0
        """SQS API calls made by this queue."""

    def enqueue_run(self, run_id: str, *, delay: timedelta | None = None) -> None:
        seconds = 0 if delay is None else min(-(-delay // timedelta(seconds=1)), 900)  # ceil
        self.calls += 1
        self.sent += 1
        self.client.send_message(
            QueueUrl=self.orchestrator_queue_url,
            MessageBody=run_message(run_id),
            DelaySeconds=max(seconds, 0),
        )

    def enqueue_steps(self, jobs: Sequence[StepJob]) -> None:
        for start in range(0, len(jobs), _BATCH):
            chunk = jobs[start : start + _BATCH]
            self.calls += 1
            self.sent += len(chunk)
            response = self.client.send_message_batch(
                QueueUrl=self.step_queue_url,
                Entries=[
                    {"Id": str(i), "MessageBody": step_message(job)} for i, job in enumerate(chunk)
                ],
            )
            for failure in response.get("Failed", []):
                # The step stays 'scheduled' in Postgres; the sweeper sends it again.
                job = chunk[int(failure["Id"])]
                logger.warning(
                    "step job not sent",
                    extra={
                        "run_id": job.run_id,
                        "step": job.step_key,
                        "code": failure.get("Code"),
                    },
                )

    def backlog(self) -> int | None:
        """The orchestrator queue's ``ApproximateNumberOfMessages`` (visible, not delayed)."""
        self.calls += 1
        try:
            attributes = self.client.get_queue_attributes(
                QueueUrl=self.orchestrator_queue_url,
                AttributeNames=["ApproximateNumberOfMessages"],
            )["Attributes"]
            return int(attributes["ApproximateNumberOfMessages"])
        except Exception as exc:  # noqa: BLE001 - not knowing only makes the sweeper eager
            logger.warning("queue backlog unknown", extra={"error": f"{type(exc).__name__}"})
            return None

    def wake_at(self, run_id: str, when: datetime, now: datetime) -> None:
        """Ask for a pass of ``run_id`` at ``when``: an SQS delay, a schedule, or a chain."""
        delay = when - now
        if delay <= MAX_SQS_DELAY or self.scheduler is None:
            self.enqueue_run(run_id, delay=max(delay, timedelta(0)))
        else:
            self.calls += 1
            self.scheduler.schedule_wakeup(run_id, when)

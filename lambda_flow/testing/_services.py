"""Services for a user's tests: each on a fresh schema of one test database, on one clock."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Mapping
from pathlib import Path

from ..core import Clock
from ..engine import Flow
from ..service import WorkflowService
from ..store.postgres import PostgresStore

ENV_TEST_DATABASE_URL = "LAMBDA_FLOW_TEST_DATABASE_URL"
"""A Postgres URL for tests; without it, tests get an embedded Postgres of their own."""


def resolve_test_database_url(env: Mapping[str, str] | None = None) -> str:
    """``LAMBDA_FLOW_TEST_DATABASE_URL``, else a private embedded Postgres deleted at exit.

    The embedded server keeps its data in a fresh folder outside pytest's temp tree: pytest keeps
    that tree private (0700), and the server, which runs as a user of its own, must reach it.

    Args:
        env: the environment to read (``os.environ`` when None).

    Raises:
        ConfigurationError: no URL is set and the embedded Postgres is not installed (the
            message names ``pip install 'lambda-flow[local]'``).
    """
    url = (os.environ if env is None else env).get(ENV_TEST_DATABASE_URL)
    if url:
        return url
    from ..store.embedded import embedded_database_url

    data_dir = Path(tempfile.mkdtemp(prefix="lambda-flow-pg-")) / "data"
    return embedded_database_url(data_dir, delete_on_exit=True)


class ServiceFactory:
    """Makes services for tests: one per call, each on a fresh schema, all on one clock.

    Each is a :class:`~lambda_flow.WorkflowService` for the :class:`~lambda_flow.Flow` given;
    :meth:`close` closes their stores and drops their schemas.

    The ``lf_service`` fixture of the pytest plugin is one of these::

        def test_hello(lf_service):
            service = lf_service(flow)
            run_id = service.start("hello", {"name": "Ada"})

    Args:
        database_url: the Postgres the services store their runs in.
        clock: every service's clock (a :class:`~lambda_flow.testing.TimeSkippingClock` in
            tests, so sleeps finish at once).
    """

    def __init__(self, database_url: str, clock: Clock) -> None:
        self.database_url = database_url
        self.clock = clock
        self.services: list[WorkflowService] = []
        """Every service made so far, in order."""

    def __call__(self, flow: Flow, *, schema: str | None = None) -> WorkflowService:
        """A service for ``flow`` on a schema of its own (``schema``, or a fresh random name).

        Args:
            flow: the application's workflows and functions.
            schema: the schema's name (created, migrated and dropped at :meth:`close`); a fresh
                ``lf_test_...`` name when None.

        Returns:
            An inline-mode service: runs are driven in the calling process, on :attr:`clock`.
        """
        name = schema or f"lf_test_{uuid.uuid4().hex[:12]}"
        store = PostgresStore(self.database_url, schema=name)
        service = WorkflowService(flow, store=store, clock=self.clock)
        self.services.append(service)
        return service

    def close(self) -> None:
        """Close every service's store and drop its schema."""
        import psycopg
        from psycopg import sql

        services, self.services = self.services, []
        for service in services:
            service.store.close()
        schemas = {s.store.schema for s in services if isinstance(s.store, PostgresStore)}
        if not schemas:
            return
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            for schema in sorted(schemas):
                conn.execute(
                    sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
                )

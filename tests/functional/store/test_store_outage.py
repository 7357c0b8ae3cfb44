"""The store across a database restart and an outage, on a Postgres server of this module's own.

Issue 9, defect 4: after ``pg_ctl restart`` the pool handed out its dead connections, and each
failed the first operation that got it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest

from lambda_flow import (
    Flow,
    PostgresStore,
    RunStatus,
    StoreUnavailable,
    WorkflowContext,
    WorkflowService,
)
from lambda_flow.testing import TimeSkippingClock
from tests.conftest import PrivatePostgres

T = TypeVar("T")
NOW = TimeSkippingClock().now()


@pytest.fixture
def outage_store(private_database_url: str) -> Iterator[PostgresStore]:
    """Two pooled connections, both open (and so both dead after a restart)."""
    store = PostgresStore(
        private_database_url,
        schema=fresh_schema(),
        min_connections=2,
        max_connections=2,
        pool_timeout="500ms",
    )
    store._pool.wait()  # both connections in the pool before the restart
    yield store
    store.close()


def fresh_schema() -> str:
    return f"t_{uuid.uuid4().hex[:12]}"


def eventually(call: Callable[[], T], within: float = 20.0) -> T:
    """``call()`` once it stops raising StoreUnavailable (the pool reconnects with back-off)."""
    deadline = time.monotonic() + within
    while True:
        try:
            return call()
        except StoreUnavailable:
            if time.monotonic() > deadline:
                raise


def test_reads_and_writes_work_right_after_a_restart(
    private_postgres: PrivatePostgres, outage_store: PostgresStore
) -> None:
    run_id, _ = outage_store.create_run("wf", {"n": 1}, None, NOW)
    private_postgres.restart()

    # Every pooled connection is dead now; each call below is the first to meet one.
    run = outage_store.get_run(run_id)
    assert run is not None
    assert run.status is RunStatus.RUNNING
    assert [r.id for r in outage_store.list_runs()] == [run_id]
    assert outage_store.get_history(run_id) == []
    assert outage_store.get_steps(run_id) == []
    second, created = outage_store.create_run("wf", {"n": 2}, None, NOW)
    assert created
    assert outage_store.get_run(second) is not None


def test_a_read_whose_connection_dies_is_asked_again_and_a_write_is_not(
    private_postgres: PrivatePostgres, private_database_url: str
) -> None:
    store = PostgresStore(
        private_database_url, schema=fresh_schema(), min_connections=1, max_connections=1
    )
    try:
        run_id, _ = store.create_run("wf", None, None, NOW)
        # The race no checkout check closes: a connection that dies between its check and its
        # statement. Without the check, a restart hands the dead connection out as is.
        store._pool._check = None
        private_postgres.restart()
        run = store.get_run(run_id)  # the dead connection fails it; the second try works
        assert run is not None

        private_postgres.restart()
        with pytest.raises(StoreUnavailable, match="database is unavailable") as caught:
            store.create_run("wf", None, None, NOW)  # a write is not repeated: it may have run
        assert caught.value.__cause__ is not None
        assert [r.id for r in store.list_runs()] == [run_id]
    finally:
        store.close()


def test_every_operation_raises_store_unavailable_while_the_database_is_down(
    private_postgres: PrivatePostgres, outage_store: PostgresStore
) -> None:
    run_id, _ = outage_store.create_run("wf", None, None, NOW)
    private_postgres.stop()

    calls: list[Callable[[], Any]] = [
        lambda: outage_store.get_run(run_id),
        outage_store.list_runs,
        lambda: outage_store.get_history(run_id),
        lambda: outage_store.create_run("wf", None, None, NOW),
    ]
    for call in calls:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            call()
        assert time.monotonic() - started < 5  # the pool's timeout, not a hang

    private_postgres.restart()
    run = eventually(lambda: outage_store.get_run(run_id))
    assert run is not None


def test_a_pass_whose_connection_dies_stops_there_and_a_later_pass_finishes_the_run(
    private_postgres: PrivatePostgres, outage_store: PostgresStore
) -> None:
    flow = Flow()
    calls = {"first": 0, "second": 0}

    def first() -> str:
        calls["first"] += 1
        if calls["first"] == 1:
            private_postgres.restart()  # under the pass's pinned connection
        return "one"

    def second() -> str:
        calls["second"] += 1
        return "two"

    @flow.workflow
    async def two_steps(wf: WorkflowContext) -> list[str]:
        return [await wf.do("first", first, retries=2), await wf.do("second", second)]

    clock = TimeSkippingClock()
    service = WorkflowService(flow, store=outage_store, clock=clock)

    with pytest.raises(StoreUnavailable):
        service.start("two_steps")
    (run,) = eventually(outage_store.list_runs)
    assert run.status is RunStatus.RUNNING
    assert not [a for a in outage_store.get_history(run.id) if a.status == "succeeded"]
    assert calls == {"first": 1, "second": 0}

    clock.advance("31s")  # past the dead pass's lease
    outcome = service.orchestrate(run.id)
    assert outcome is not None
    assert outcome.status is RunStatus.COMPLETED
    assert outcome.output == ["one", "two"]
    assert calls == {"first": 2, "second": 1}  # the uncommitted step ran again, nothing else

"""Retention (issue 14, item 7): ``Store.delete_finished`` and ``WorkflowService.gc``.

Old finished runs go with their steps, attempts, batches and batch items; recent ones stay;
running, suspended and cancel-requested runs are never touched however old; concurrent callers
split the work. Time is the test's skipping clock: runs "age" by ``clock.advance``.
"""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from lambda_flow import (
    Flow,
    InvalidOption,
    PostgresStore,
    RunStatus,
    WorkflowContext,
    WorkflowService,
)
from lambda_flow.testing import TimeSkippingClock
from tests.conftest import count_rows

TABLES = ("runs", "steps", "step_attempts", "batches", "batch_items")


@pytest.fixture
def app(flow: Flow) -> Flow:
    @flow.workflow
    async def done(wf: WorkflowContext) -> str:
        await wf.do("one", lambda: 1)
        await wf.do("two", lambda: 2)
        return "ok"

    @flow.workflow
    async def broken(wf: WorkflowContext) -> None:
        await wf.do("one", lambda: 1)
        raise RuntimeError("kaput")

    @flow.workflow
    async def wait(wf: WorkflowContext) -> str:
        await wf.do("prepare", lambda: "ready")
        await wf.suspend("approve")
        return "approved"

    @flow.workflow
    async def parent(wf: WorkflowContext) -> str:
        return str(await wf.child("Child", "wait", None))

    return flow


def _status(service: WorkflowService, run_id: str) -> RunStatus | None:
    run = service.get_run(run_id)
    return None if run is None else run.status


def _rows(db: psycopg.Connection[Any], table: str, run_id: str) -> int:
    row = db.execute(f"SELECT count(*) FROM {table} WHERE run_id = %s", [run_id]).fetchone()
    assert row is not None
    return int(row[0])


def _add_batch(db: psycopg.Connection[Any], run_id: str, created_at: Any) -> None:
    """A chained map's plan (migration 0011) for ``run_id``: one batch with two items."""
    db.execute(
        "INSERT INTO batches (run_id, batch_key, target, total, concurrency, next_index, running,"
        " position_base, max_attempts, retry_delay_ms, created_at)"
        " VALUES (%s, 'map', 'f', 2, 1, 2, 0, 10, 1, 0, %s)",
        [run_id, created_at],
    )
    db.execute(
        "INSERT INTO batch_items (run_id, batch_key, idx, name, input)"
        " VALUES (%s, 'map', 0, 'a', '1'), (%s, 'map', 1, 'b', '2')",
        [run_id, run_id],
    )


def _in_flight(service: WorkflowService, store: PostgresStore) -> dict[str, str]:
    """Runs that have not finished, each with steps: suspended, running, cancel requested."""
    suspended = service.start("wait")
    running = service.start("wait")
    store.resume(running, service.clock.now())  # running again, not driven: a pass would follow
    cancelling = service.start("wait")
    store.cancel(cancelling, "stop", service.clock.now())  # asked to cancel, not yet driven
    return {"suspended": suspended, "running": running, "cancelling": cancelling}


def test_old_finished_runs_go_with_everything_they_own_and_in_flight_runs_never_do(
    app: Flow,
    service: WorkflowService,
    store: PostgresStore,
    clock: TimeSkippingClock,
    db: psycopg.Connection[Any],
) -> None:
    completed = service.start("done")
    failed = service.start("broken")
    cancelled = service.start("wait")
    service.cancel(cancelled)
    old = {"completed": completed, "failed": failed, "cancelled": cancelled}
    _add_batch(db, completed, clock.now())
    alive = _in_flight(service, store)
    _add_batch(db, alive["running"], clock.now())
    assert {k: _status(service, v) for k, v in {**old, **alive}.items()} == {
        "completed": RunStatus.COMPLETED,
        "failed": RunStatus.FAILED,
        "cancelled": RunStatus.CANCELLED,
        "suspended": RunStatus.SUSPENDED,
        "running": RunStatus.RUNNING,
        "cancelling": RunStatus.RUNNING,
    }
    alive_rows = {(k, t): _rows(db, t, v) for k, v in alive.items() for t in TABLES[1:3]}
    assert all(alive_rows.values())
    clock.advance("40d")
    recent = service.start("done")
    clock.advance("1h")

    assert service.gc("30d", dry_run=True) == 3
    assert service.gc("30d") == 3

    for run_id in old.values():
        assert service.get_run(run_id) is None
        assert [_rows(db, t, run_id) for t in TABLES[1:]] == [0, 0, 0, 0]
    assert _status(service, recent) is RunStatus.COMPLETED
    assert {(k, t): _rows(db, t, v) for k, v in alive.items() for t in TABLES[1:3]} == alive_rows
    assert _rows(db, "batch_items", alive["running"]) == 2
    # However old they get, and whatever the statuses or batch sizes asked for.
    clock.advance("3650d")
    assert service.gc("1s", batch_size=1) == 1  # the recent one, now old too
    assert count_rows(db, "runs") == 3
    assert {k: _status(service, v) for k, v in alive.items()} == {
        "suspended": RunStatus.SUSPENDED,
        "running": RunStatus.RUNNING,
        "cancelling": RunStatus.RUNNING,
    }
    assert {(k, t): _rows(db, t, v) for k, v in alive.items() for t in TABLES[1:3]} == alive_rows
    # What is left still works: the suspended run resumes to its end.
    assert service.resume(alive["suspended"]).status is RunStatus.COMPLETED


def test_the_age_is_counted_from_the_runs_end_not_its_start(
    app: Flow, service: WorkflowService, store: PostgresStore, clock: TimeSkippingClock
) -> None:
    run_id = service.start("wait")
    clock.advance("60d")
    service.resume(run_id)  # started 60 days ago, ended now
    clock.advance("1d")

    assert service.gc("30d") == 0
    assert _status(service, run_id) is RunStatus.COMPLETED
    clock.advance("30d")
    assert service.gc("30d") == 1


def test_statuses_pick_which_finished_runs_go(
    app: Flow, service: WorkflowService, clock: TimeSkippingClock
) -> None:
    completed = service.start("done")
    failed = service.start("broken")
    cancelled = service.start("wait")
    service.cancel(cancelled)
    clock.advance("31d")

    assert service.gc("30d", statuses=["failed"], dry_run=True) == 1
    assert service.gc("30d", statuses=[RunStatus.FAILED]) == 1
    assert _status(service, failed) is None
    assert service.gc("30d", statuses=["cancelled", "failed"]) == 1
    assert _status(service, cancelled) is None
    assert _status(service, completed) is RunStatus.COMPLETED


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"statuses": ["running"]}, "running runs are not finished"),
        ({"statuses": ["completed", "suspended"]}, "suspended runs are not finished"),
        ({"statuses": ["done"]}, "unknown run status 'done'"),
        ({"statuses": []}, "no status given"),
        ({"older_than": "0s"}, "older_than: must be positive"),
        ({"older_than": "-1d"}, "older_than"),
        ({"older_than": "soon"}, "older_than"),
        ({"batch_size": 0}, "batch_size"),
        ({"max_batches": 0}, "max_batches"),
    ],
)
def test_bad_arguments_are_refused_naming_the_problem_and_delete_nothing(  # noqa: PLR0917 - fixtures
    app: Flow,
    service: WorkflowService,
    clock: TimeSkippingClock,
    db: psycopg.Connection[Any],
    kwargs: dict[str, Any],
    named: str,
) -> None:
    service.start("done")
    clock.advance("31d")
    arguments: dict[str, Any] = {"older_than": "30d", **kwargs}

    with pytest.raises(InvalidOption, match=named):
        service.gc(arguments.pop("older_than"), **arguments)
    assert count_rows(db, "runs") == 1


def test_the_store_refuses_unfinished_statuses_and_a_bad_limit(
    store: PostgresStore, clock: TimeSkippingClock
) -> None:
    with pytest.raises(InvalidOption, match="suspended"):
        store.delete_finished(clock.now(), statuses=[RunStatus.SUSPENDED])
    with pytest.raises(InvalidOption, match="limit"):
        store.delete_finished(clock.now(), limit=0)


def test_batches_are_bounded(
    app: Flow,
    service: WorkflowService,
    store: PostgresStore,
    clock: TimeSkippingClock,
    db: psycopg.Connection[Any],
) -> None:
    for _ in range(7):
        service.start("done")
    clock.advance("31d")
    assert store.delete_finished(clock.now() - timedelta(days=30), limit=3) == 3
    assert count_rows(db, "runs") == 4
    assert service.gc("30d", batch_size=2, max_batches=1) == 2
    assert count_rows(db, "runs") == 2
    assert service.gc("30d", batch_size=5) == 2
    assert service.gc("30d") == 0


def test_a_child_whose_finished_parent_is_deleted_goes_on(
    app: Flow, service: WorkflowService, clock: TimeSkippingClock, db: psycopg.Connection[Any]
) -> None:
    parent = service.start("parent")
    [child] = [r.id for r in service.list_runs(parent_id=parent)]
    assert _status(service, child) is RunStatus.SUSPENDED
    # The parent ended long ago (from outside, as a dead letter ends a run): the statement
    # asked its child to cancel (migration 0010), and the child's cleanup has not run yet.
    db.execute("UPDATE runs SET status = 'completed' WHERE id = %s", [parent])
    assert _status(service, child) is RunStatus.RUNNING
    clock.advance("31d")

    assert service.gc("30d") == 1
    assert service.get_run(parent) is None
    # The child goes on to its end; its end finds no parent step to write, and fails nothing.
    ended = service.resume(child)
    assert ended.status is RunStatus.CANCELLED
    assert ended.parent_id == parent
    assert service.gc("30d") == 0  # it ended just now


def test_concurrent_callers_split_the_work_without_errors(  # noqa: PLR0917 - fixtures
    app: Flow,
    service: WorkflowService,
    database_url: str,
    schema: str,
    clock: TimeSkippingClock,
    db: psycopg.Connection[Any],
) -> None:
    ids = [str(uuid.uuid4()) for _ in range(600)]
    now = clock.now()
    db.execute(
        "INSERT INTO runs (id, workflow, status, created_at, updated_at)"
        " SELECT id, 'done', 'completed', %s, %s FROM unnest(%s::uuid[]) AS id",
        [now, now, ids],
    )
    db.execute(
        "INSERT INTO steps (run_id, step_key, position, name, kind, status, created_at,"
        " updated_at) SELECT id, 'one', 0, 'one', 'inline', 'succeeded', %s, %s"
        " FROM unnest(%s::uuid[]) AS id",
        [now, now, ids],
    )
    alive = _in_flight(service, service.store)  # type: ignore[arg-type]
    clock.advance("31d")
    stores = [PostgresStore(database_url, schema=schema, migrate=False) for _ in range(4)]
    services = [WorkflowService(service.flow, store=s, clock=clock) for s in stores]
    counts: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(len(services))

    def collect(worker: WorkflowService) -> None:
        try:
            start.wait()
            counts.append(worker.gc("30d", batch_size=25))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=collect, args=(s,)) for s in services]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for s in stores:
        s.close()

    assert errors == []
    # A caller stops at a short batch (the rest held by another), so at most what the last
    # one skipped is left; never a run twice.
    left = service.gc("30d")
    assert sum(counts) + left == 600
    assert count_rows(db, "runs") == 3
    assert count_rows(db, "steps") == sum(_rows(db, "steps", v) for v in alive.values())
    assert {k: _status(service, v) for k, v in alive.items()} == {
        "suspended": RunStatus.SUSPENDED,
        "running": RunStatus.RUNNING,
        "cancelling": RunStatus.RUNNING,
    }

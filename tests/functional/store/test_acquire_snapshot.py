"""Taking a run's lease returns its steps in the same statement (issue 14), which reads them as
of the statement's start. A writer that commits while the statement waits for the run's row (a
child's end, a callback's completion) must not be missed: the pass would see the new version
with the old steps, park, and count the run as settled, a lost wake-up. The store notices the
version moved and reads the steps again."""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg

from lambda_flow import Flow, PostgresStore, StepStatus, WorkflowContext, WorkflowService
from lambda_flow.store.base import LeasedRun


def _lock_waiters(database_url: str) -> int:
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
        ).fetchone()
    return int(row[0]) if row else 0


def test_a_lease_taken_after_waiting_for_a_writer_sees_what_it_wrote(
    flow: Flow, service: WorkflowService, store: PostgresStore, database_url: str, schema: str
) -> None:
    @flow.workflow
    async def waits(wf: WorkflowContext) -> Any:
        cb = await wf.callback("Answer")
        return await cb.result()

    run_id = service.start("waits")  # parks on the callback
    taken: list[LeasedRun | None] = []
    now = service.clock.now()

    with psycopg.connect(database_url) as writer:  # completes the callback, not yet committed
        writer.execute(f'SET search_path TO "{schema}"')
        writer.execute(
            "UPDATE steps SET status = 'succeeded', result = '42' WHERE run_id = %s"
            " AND step_key = 'Answer'",
            [run_id],
        )
        writer.execute("UPDATE runs SET version = version + 1 WHERE id = %s", [run_id])
        acquiring = threading.Thread(
            target=lambda: taken.append(store.acquire(run_id, "test", now, now.replace(year=2100)))
        )
        acquiring.start()  # its snapshot is taken; it waits for the run's row
        deadline = time.monotonic() + 10
        while _lock_waiters(database_url) == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        writer.commit()
    acquiring.join(timeout=30)

    [leased] = taken
    assert leased is not None
    answer = leased.steps["Answer"]
    assert answer.status is StepStatus.SUCCEEDED  # not the snapshot's "scheduled"
    assert answer.result == 42

"""Retention on AWS (issue 14, item 7): the sweeper handler with ``LAMBDA_FLOW_RETENTION_DAYS``.

The template's ``RetentionDays`` reaches the sweeper as that variable; each sweep deletes the
finished runs that ended more than that many days ago, in bounded batches, and never a run that
is running or suspended. Time is the harness's skipping clock (``clock.advance``), never a sleep.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from lambda_flow import ConfigurationError, RunStatus
from lambda_flow.aws import workers
from lambda_flow.aws.runtime import get_runtime, reset_runtimes
from tests.e2e import aws
from tests.e2e.aws import Harness, load_handler

moto_server = aws.moto_server
harness = aws.harness

pytestmark = pytest.mark.filterwarnings(
    # A pass that records no step attempt adds no metric; Powertools warns about the empty flush.
    "ignore:No application metrics to publish:UserWarning"
)

RETENTION = "LAMBDA_FLOW_RETENTION_DAYS"


@pytest.fixture
def db(database_url: str, schema: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        yield conn


def _with_retention(harness: Harness, monkeypatch: pytest.MonkeyPatch, days: str) -> None:
    """A cold start of the sweeper with ``LAMBDA_FLOW_RETENTION_DAYS=days`` on the harness's
    clock and recording SQS client (the runtime for these settings is built first)."""
    monkeypatch.setenv(RETENTION, days)
    get_runtime(clock=harness.clock, sqs_client=harness.recorder)
    harness.load("sweeper")


def _owned(db: psycopg.Connection[Any], run_id: str) -> list[int]:
    """The run's rows in steps, step_attempts, batches and batch_items."""
    counts = []
    for table in ("steps", "step_attempts", "batches", "batch_items"):
        row = db.execute(f"SELECT count(*) FROM {table} WHERE run_id = %s", [run_id]).fetchone()
        assert row is not None
        counts.append(int(row[0]))
    return counts


def test_the_sweeper_deletes_old_finished_runs_and_never_runs_in_flight(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, db: psycopg.Connection[Any]
) -> None:
    _with_retention(harness, monkeypatch, "30")
    service = harness.service
    paid = service.start("pay", {"cents": 5})
    billed = service.start("bill_all", 4)  # a chained map: batches and batch_items rows
    harness.pump()
    assert harness.run(paid).status is RunStatus.COMPLETED
    assert harness.run(billed).status is RunStatus.COMPLETED
    assert _owned(db, billed)[2] == 1  # its batch row (items are read as they start)
    waiting = service.start("checkout", {"timeout": "400d"})
    cancelling = service.start("checkout", {"timeout": "400d"})
    suspended = service.start("checkout", {"timeout": "400d"})
    harness.pump()
    # Asked to cancel, its cleanup pass not run yet (and never run here).
    harness.runtime.store.cancel(cancelling, "changed my mind", harness.clock.now())
    # What a suspended run is to the store (the e2e app has no wf.suspend workflow).
    db.execute("UPDATE runs SET status = 'suspended' WHERE id = %s", [suspended])
    alive = {waiting: RunStatus.RUNNING, cancelling: RunStatus.RUNNING}
    alive[suspended] = RunStatus.SUSPENDED
    owned = {run_id: _owned(db, run_id) for run_id in alive}
    assert all(counts[0] and counts[1] for counts in owned.values())

    assert harness.sweep()["deleted_runs"] == 0  # nothing is 30 days old yet
    harness.clock.advance("31d")
    recent = service.start("pay", {"cents": 7})
    harness.pump()
    swept = harness.sweep()

    assert swept["deleted_runs"] == 2
    for run_id in (paid, billed):
        assert service.get_run(run_id) is None
        assert _owned(db, run_id) == [0, 0, 0, 0]
    assert harness.run(recent).status is RunStatus.COMPLETED
    harness.clock.advance("3650d")  # however old they get
    assert harness.sweep()["deleted_runs"] == 1  # the recent one, now old too
    assert {run_id: harness.run(run_id).status for run_id in alive} == alive
    assert harness.runtime.store.cancel_request(cancelling) is not None  # still cancelling
    assert {run_id: _owned(db, run_id) for run_id in alive} == owned


def test_each_sweep_deletes_a_bounded_number_of_runs(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, db: psycopg.Connection[Any]
) -> None:
    _with_retention(harness, monkeypatch, "1")
    monkeypatch.setattr(workers, "RETENTION_BATCHES", 2)
    monkeypatch.setattr(workers, "RETENTION_BATCH_SIZE", 2)
    for cents in range(9):
        harness.service.start("pay", {"cents": cents})
    harness.pump()
    harness.clock.advance("2d")

    assert [harness.sweep()["deleted_runs"] for _ in range(4)] == [4, 4, 1, 0]


def test_without_retention_days_the_sweeper_deletes_nothing(
    harness: Harness, db: psycopg.Connection[Any]
) -> None:
    paid = harness.service.start("pay", {"cents": 5})
    harness.pump()
    harness.clock.advance("3650d")

    assert harness.sweep()["deleted_runs"] == 0
    assert harness.run(paid).status is RunStatus.COMPLETED


@pytest.mark.parametrize("value", ["thirty", "-1", "36501", "1.5"])
def test_a_malformed_retention_fails_the_sweepers_cold_start(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv(RETENTION, value)
    reset_runtimes()

    with pytest.raises(ConfigurationError, match=RETENTION):
        load_handler("sweeper")
    assert "lambda_flow.handlers.sweeper" not in sys.modules

"""Listing and counting runs by creation time, run id or idempotency key (the console's filters)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from lambda_flow import Flow, InvalidInput, RunStatus, WorkflowContext, WorkflowService
from lambda_flow.testing import TimeSkippingClock


@pytest.fixture
def runs(flow: Flow, service: WorkflowService, clock: TimeSkippingClock) -> list[str]:
    @flow.workflow
    async def done(wf: WorkflowContext) -> int:
        return 1

    @flow.workflow
    async def waits(wf: WorkflowContext) -> Any:
        return await wf.suspend("approve")

    ids = []
    for i, (name, key) in enumerate(
        [("done", "order-1"), ("done", "order-2"), ("waits", "order_3"), ("done", "ref%9")]
    ):
        ids.append(service.start(name, idempotency_key=key))
        if i < 3:
            clock.advance("1h")
    return ids  # created an hour apart, oldest first


def test_created_after_and_before_bound_the_listing(
    service: WorkflowService, runs: list[str], clock: TimeSkippingClock
) -> None:
    first = service.get_run(runs[0])
    assert first is not None
    start = first.created_at
    listed = service.list_runs(
        created_after=start + timedelta(hours=1), created_before=start + timedelta(hours=3)
    )
    assert [r.id for r in listed] == [runs[2], runs[1]]  # newest first, the bound excluded
    assert [r.id for r in service.list_runs(created_after=start)] == runs[::-1]


def test_search_finds_a_run_by_its_id_or_the_beginning_of_it(
    service: WorkflowService, runs: list[str]
) -> None:
    target = runs[2]
    assert [r.id for r in service.list_runs(search=target)] == [target]
    assert [r.id for r in service.list_runs(search=target.upper())] == [target]
    for length in (1, 8, 9, 13, 20, 35):
        found = {r.id for r in service.list_runs(search=target[:length])}
        assert target in found
        assert all(run_id.startswith(target[:length]) for run_id in found), length
    assert service.list_runs(search="zz-not-an-id") == []


def test_search_finds_a_run_by_its_idempotency_key_and_escapes_like_patterns(
    service: WorkflowService, runs: list[str]
) -> None:
    assert [r.id for r in service.list_runs(search="order-")] == [runs[1], runs[0]]
    # "_" and "%" are the key's own characters, never wildcards
    assert [r.id for r in service.list_runs(search="order_")] == [runs[2]]
    assert [r.id for r in service.list_runs(search="ref%")] == [runs[3]]
    assert service.list_runs(search="ref_") == []
    assert [r.id for r in service.list_runs(search="order-2", workflow="done")] == [runs[1]]


def test_a_search_pages_with_the_cursor(service: WorkflowService, runs: list[str]) -> None:
    first = service.list_runs(search="order", limit=2)
    assert [r.id for r in first] == [runs[2], runs[1]]
    rest = service.list_runs(search="order", limit=2, cursor=service.cursor_after(first[-1]))
    assert [r.id for r in rest] == [runs[0]]


def test_count_runs_counts_each_status_and_stops_past_the_cap(
    service: WorkflowService, runs: list[str]
) -> None:
    counts = service.count_runs()
    assert counts[RunStatus.COMPLETED] == 3
    assert counts[RunStatus.SUSPENDED] == 1
    assert set(counts) == set(RunStatus)
    assert sum(counts.values()) == 4
    assert service.count_runs(cap=2)[RunStatus.COMPLETED] == 3  # "more than 2"
    assert service.count_runs(workflow="waits") == {
        **dict.fromkeys(RunStatus, 0),
        RunStatus.SUSPENDED: 1,
    }
    assert service.count_runs(search="order-")[RunStatus.COMPLETED] == 2
    assert sum(service.count_runs(parent_id=runs[0]).values()) == 0


@pytest.mark.parametrize(
    ("filters", "field"),
    [
        ({"created_after": datetime(2026, 1, 1)}, "created_after"),  # naive
        ({"created_before": "yesterday"}, "created_before"),
        ({"search": "x" * 201}, "search"),
        ({"search": "a\x00b"}, "search"),
        ({"parent_id": "not-a-run"}, "parent_id"),
        ({"workflow": "a\x00b"}, "workflow"),
    ],
)
def test_malformed_filters_are_named(
    service: WorkflowService, filters: dict[str, Any], field: str
) -> None:
    for call in (service.list_runs, service.count_runs):
        with pytest.raises(InvalidInput) as caught:
            call(**filters)
        assert [p["loc"] for p in caught.value.errors] == [[field]]


def test_time_bounds_take_any_timezone(service: WorkflowService, runs: list[str]) -> None:
    first = service.get_run(runs[0])
    assert first is not None
    local = first.created_at.astimezone(timezone(timedelta(hours=5)))
    assert [r.id for r in service.list_runs(created_before=local + timedelta(minutes=1))] == [
        runs[0]
    ]


def test_a_key_search_ending_in_any_character_is_a_valid_range(
    flow: Flow, service: WorkflowService
) -> None:
    @flow.workflow
    async def keyed(wf: WorkflowContext) -> int:
        return 1

    for key in ("k\ud7ff-a", "k\U0010ffff-b", "kz"):
        service.start("keyed", idempotency_key=key)
    assert len(service.list_runs(search="k\ud7ff")) == 1
    assert len(service.list_runs(search="k\U0010ffff")) == 1
    assert len(service.list_runs(search="k")) == 3


def test_a_search_is_never_prepared_so_never_runs_on_a_generic_plan(
    database_url: str, schema: str, runs: list[str]
) -> None:
    from lambda_flow import PostgresStore

    store = PostgresStore(database_url, schema=schema, min_connections=1, max_connections=1)
    try:
        for _ in range(7):  # psycopg prepares a statement on its 5th run
            store.list_runs(search="order-")
            store.count_runs(search="order-")
            store.list_runs(workflow="done")
        with store._connection() as conn:
            prepared = [
                row[0]
                for row in conn.execute("SELECT statement FROM pg_prepared_statements").fetchall()
            ]
    finally:
        store.close()
    assert any("workflow = $1" in text for text in prepared)  # the plain listing is prepared
    assert not any("~>=~" in text for text in prepared)

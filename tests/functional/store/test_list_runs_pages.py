"""list_runs with every filter, paged by its cursor: the same runs, newest first, as the history
holds (the statement is shaped for its indexes, issue 14: its results must not change)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from lambda_flow import PostgresStore, RunStatus

STATUSES = ["completed", "failed", "cancelled", "running", "suspended"]
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _fill(db: psycopg.Connection[Any]) -> list[tuple[uuid.UUID, str, str, datetime, uuid.UUID]]:
    """73 runs over 3 workflows and 5 statuses, some sharing a created_at, a third children."""
    parent = uuid.uuid4()
    rows = []
    for i in range(73):
        run_id = uuid.uuid4()
        created = T0 + timedelta(seconds=i // 2)  # pairs share a timestamp: id breaks the tie
        rows.append((run_id, f"wf{i % 3}", STATUSES[i % 5], created, parent if i % 3 else None))
    db.cursor().executemany(
        "INSERT INTO runs (id, workflow, status, created_at, updated_at, parent_id)"
        " VALUES (%s, %s, %s, %s, %s, %s)",
        [(r, w, s, c, c, p) for r, w, s, c, p in rows],
    )
    return [(r, w, s, c, p or uuid.UUID(int=0)) for r, w, s, c, p in rows]


@pytest.mark.parametrize(
    "filters",
    [
        {},
        {"workflow": "wf1"},
        {"status": "completed"},
        {"status": "running"},
        {"workflow": "wf2", "status": "failed"},
        {"workflow": "wf0", "status": "suspended"},
        {"workflow": "wf9", "status": "completed"},
        {"parent": True},
        {"parent": True, "status": "cancelled"},
        {"parent": True, "workflow": "wf1", "status": "running"},
    ],
)
@pytest.mark.parametrize("summary", [False, True])
def test_every_filter_pages_through_its_runs_newest_first(
    store: PostgresStore, db: psycopg.Connection[Any], filters: dict[str, Any], summary: bool
) -> None:
    rows = _fill(db)
    parent = next(p for *_, p in rows if p.int)
    wanted = [
        str(r)
        for r, w, s, _c, p in sorted(rows, key=lambda x: (x[3], x[0]), reverse=True)
        if w == filters.get("workflow", w)
        and s == filters.get("status", s)
        and (not filters.get("parent") or p == parent)
    ]
    kw: dict[str, Any] = {k: v for k, v in filters.items() if k != "parent"}
    if "status" in kw:
        kw["status"] = RunStatus(kw["status"])
    if filters.get("parent"):
        kw["parent_id"] = str(parent)
    seen: list[str] = []
    before = None
    while True:
        page = store.list_runs(limit=4, before=before, summary=summary, **kw)
        seen += [r.id for r in page]
        if len(page) < 4:
            break
        before = (page[-1].created_at, page[-1].id)
    assert seen == wanted

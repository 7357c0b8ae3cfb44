"""The runs page's reads: the service's listing and counts, with every filter the page has."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..core import Run, RunStatus
from ..service import WorkflowService

__all__ = ["COUNT_CAP", "RunFilter", "list_runs", "status_counts"]

COUNT_CAP = 10_000
"""Counts stop past this (shown as ``10000+``), so a page costs the same at a million runs."""


@dataclass(frozen=True, slots=True)
class RunFilter:
    """What the runs page filters on (each None: no filter)."""

    workflow: str | None = None
    status: RunStatus | None = None
    parent_id: str | None = None
    created_from: datetime | None = None
    """Runs created at or after this."""
    created_to: datetime | None = None
    """Runs created before this."""
    text: str | None = None
    """A run id or an idempotency key, whole or its beginning."""


def list_runs(
    service: WorkflowService, flt: RunFilter, *, limit: int, cursor: str | None
) -> list[Run]:
    """A page of run summaries, newest first, after ``cursor``.

    Raises:
        InvalidInput: a malformed cursor, parent id or search.
    """
    return service.list_runs(
        workflow=flt.workflow,
        status=flt.status,
        parent_id=flt.parent_id,
        created_after=flt.created_from,
        created_before=flt.created_to,
        search=flt.text,
        limit=limit,
        cursor=cursor,
        summary=True,
    )


def status_counts(service: WorkflowService, flt: RunFilter) -> dict[RunStatus, int]:
    """How many runs match ``flt`` (its status aside) in each status, each capped."""
    return service.count_runs(
        workflow=flt.workflow,
        parent_id=flt.parent_id,
        created_after=flt.created_from,
        created_before=flt.created_to,
        search=flt.text,
        cap=COUNT_CAP,
    )

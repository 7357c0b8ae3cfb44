"""What the HTTP API lists and its client reads back: run summaries, pages, workflows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from ._models import ErrorInfo, Run, RunStatus

__all__ = ["RunPage", "RunSummary", "WorkflowInfo"]

SUMMARY_MESSAGE_CHARS = 1000
"""A summary's error message is cut to this many characters (``GET /runs/{id}`` has it all)."""


class RunSummary(BaseModel):
    """A run without its input and output, as listings show it."""

    model_config = ConfigDict(frozen=True)

    id: str
    """The run id (a UUID string)."""
    workflow: str
    """The workflow's registered name."""
    status: RunStatus
    error: ErrorInfo | None = None
    """Why the run failed, or the cancel reason (the message cut to 1000 characters, without
    a traceback)."""
    created_at: datetime
    updated_at: datetime
    wake_at: datetime | None = None
    """When a timer (sleep or retry delay) next wakes the run, if one is set."""
    parent_id: str | None = None
    """For a child run: the run that started it."""

    @classmethod
    def of(cls, run: Run) -> RunSummary:
        """The summary of ``run``: no input, output or idempotency key; a short error."""
        error = run.error
        if error is not None:
            error = ErrorInfo(
                type=error.type,
                message=error.message[:SUMMARY_MESSAGE_CHARS],
                step_key=error.step_key,
            )
        return cls(
            id=run.id,
            workflow=run.workflow,
            status=run.status,
            error=error,
            created_at=run.created_at,
            updated_at=run.updated_at,
            wake_at=run.wake_at,
            parent_id=run.parent_id,
        )


class RunPage(BaseModel):
    """One page of runs, newest first."""

    model_config = ConfigDict(frozen=True)

    runs: list[RunSummary]
    next_cursor: str | None = None
    """Pass as ``cursor`` for the next page; null once the listing has no more runs."""


class WorkflowInfo(BaseModel):
    """A registered workflow, with what it takes and returns."""

    model_config = ConfigDict(frozen=True)

    name: str
    """The name to start it by."""
    description: str | None = None
    """The ``description`` it was registered with, else its docstring."""
    tags: list[str] = []
    """The ``tags`` it was registered with."""
    input_schema: dict[str, Any]
    """JSON Schema of its input (``{}``: any JSON)."""
    output_schema: dict[str, Any]
    """JSON Schema of its output (``{}``: any JSON)."""

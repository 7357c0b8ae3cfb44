"""The API's request and response bodies, as pydantic models (they shape the OpenAPI too)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ...core import ErrorInfo, PendingItem, Run, RunPage, RunStatus, StepAttempt, WorkflowInfo

__all__ = [
    "ApiError",
    "ApiErrorResponse",
    "CancelRequest",
    "RunFinished",
    "RunHistoryView",
    "RunInProgress",
    "RunPage",
    "RunStarted",
    "RunView",
    "WorkflowList",
]


class ApiError(BaseModel):
    """What went wrong, in every error answer."""

    type: str
    """A stable word for the kind of error, e.g. ``InvalidInput`` or ``RunNotFound``."""
    message: str
    """A sentence for people."""
    details: list[dict[str, Any]] = []
    """What failed (``loc``, ``msg``, ``type``): pydantic's field errors for a 422, the body's
    problem for a 400; empty otherwise."""


class ApiErrorResponse(BaseModel):
    """The body of every error answer."""

    error: ApiError


class RunView(BaseModel):
    """A run as the API shows it."""

    id: str
    workflow: str
    status: RunStatus
    input: Any = None
    """The validated input, as stored."""
    output: Any = None
    """The workflow's return value, once completed."""
    error: ErrorInfo | None = None
    """Why the run failed, or the cancel reason."""
    created_at: datetime
    updated_at: datetime
    wake_at: datetime | None = None
    """When a sleep or retry delay next wakes the run."""
    pending: list[PendingItem] = []
    """What the run waits on: callbacks (with their ids), sleeps, suspensions, conditions."""
    forked_from: dict[str, str] | None = None
    """For a forked run: ``{"run_id": ..., "step_key": ...}`` it was forked at."""
    parent_id: str | None = None
    """For a child run: the run that started it (``wf.child``, ``wf.start_child``)."""

    @classmethod
    def of(cls, run: Run) -> RunView:
        """The view of ``run`` (its idempotency key stays private)."""
        return cls.model_validate(run.model_dump(exclude={"idempotency_key"}))


class RunStarted(BaseModel):
    """A run was stored (and queued, or run here in inline mode)."""

    run_id: str


class RunInProgress(BaseModel):
    """``/run`` gave up waiting: the run is still running, or suspended."""

    run_id: str
    status: RunStatus


class RunFinished(BaseModel):
    """``/run`` saw the run end."""

    run_id: str
    status: RunStatus
    output: Any = None
    """The workflow's return value (completed runs)."""
    error: ErrorInfo | None = None
    """Why it failed, or the cancel reason."""


class RunHistoryView(BaseModel):
    """Every attempt of every step of a run, oldest first."""

    run_id: str
    history: list[StepAttempt]


class CancelRequest(BaseModel):
    """The optional body of ``POST /runs/{run_id}/cancel``."""

    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=1000)
    """Why the run is cancelled; shown as the run's error message."""
    cleanup_timeout: str | None = Field(default=None, max_length=32)
    """How long the body may clean up after the cancellation, e.g. ``'10min'`` (default: until
    it ends)."""


class ResumeRequest(BaseModel):
    """The optional body of ``POST /runs/{run_id}/resume``."""

    model_config = ConfigDict(extra="forbid")

    payload: Any = None
    """What the awaited ``wf.suspend`` returns (an approval's decision, say)."""


class ForkRequest(BaseModel):
    """The body of ``POST /runs/{run_id}/fork``."""

    model_config = ConfigDict(extra="forbid")

    from_step: str = Field(min_length=1, max_length=1000)
    """The key of the first step the new run runs again (the steps before it are reused)."""
    input: Any = None
    """The new run's input; the forked run's when not given."""


class FailCallbackRequest(BaseModel):
    """The body of ``POST /callbacks/{callback_id}/fail``."""

    model_config = ConfigDict(extra="forbid")

    error: str = Field(min_length=1, max_length=10000)
    """The failure's message: the awaiting code's ``CallbackFailed.error_message``."""
    type: str | None = Field(default=None, min_length=1, max_length=200)
    """The failure's type (``error_type``); ``CallbackFailed`` when not given."""


class CallbackAnswer(BaseModel):
    """A callback took a completion, failure or heartbeat (the same answer when repeated)."""

    callback_id: str
    status: str
    """``succeeded``, ``failed`` or ``heartbeat``."""


class WorkflowList(BaseModel):
    """Every workflow the application registers, by name."""

    workflows: list[WorkflowInfo]

"""Runs, steps and their states: the records users read back from the service."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict


class RunStatus(StrEnum):
    """Where a run is in its life."""

    RUNNING = "running"
    SUSPENDED = "suspended"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        """True once the run can no longer change."""
        return self in _TERMINAL


_TERMINAL = frozenset({RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED})


class StepStatus(StrEnum):
    """Where a step (or one attempt of it) is.

    ``pending`` waits for a timer (a retry delay) or a resume; ``scheduled`` is queued for a
    worker or is a sleep waiting for its time; ``running`` is claimed by a worker;
    ``cancelled`` was still waiting when its run ended without it (cancelled, or failed from
    outside).
    """

    PENDING = "pending"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class StepKind(StrEnum):
    """What a step does."""

    RPC = "rpc"
    INLINE = "inline"
    SLEEP = "sleep"
    SUSPEND = "suspend"
    CALLBACK = "callback"
    """``wf.callback``: waits for a completion from outside (``complete_callback``)."""
    CONDITION = "condition"
    """``wf.wait_for_condition``: one attempt per check, the state as its result."""
    PATCH = "patch"
    """``wf.patched``: a marker that the run reached a patch on code that has it."""
    SCOPE = "scope"
    """``wf.scope``, ``wf.map``, ``wf.parallel``: the result of a finished scope (its steps are
    keyed under ``<key>/``)."""
    CHILD = "child"
    """``wf.child``, ``wf.start_child``: waits for a child run; its result is the child's output."""


class ErrorInfo(BaseModel):
    """Why a run or an attempt failed. ``str(error)`` reads ``"Type: message"``."""

    model_config = ConfigDict(frozen=True)

    type: str
    """The exception class name, e.g. ``ConnectionError`` or ``StepFailed``."""
    message: str
    """The exception's message."""
    step_key: str | None = None
    """The step the error came from, when it came from one."""
    traceback: str | None = None
    """The formatted traceback of an exception raised by a step's own code, after the
    ``Flow``'s ``redact`` hook; None for errors the engine made (and for run errors)."""

    def __str__(self) -> str:
        return f"{self.type}: {self.message}"

    @classmethod
    def from_exception(
        cls, exc: BaseException, step_key: str | None = None, *, traceback: str | None = None
    ) -> ErrorInfo:
        """Describe an exception; its traceback (which may hold secrets) only when given."""
        key = step_key if step_key is not None else getattr(exc, "step_key", None)
        return cls(type=type(exc).__name__, message=str(exc), step_key=key, traceback=traceback)


class PendingItem(BaseModel):
    """One thing a run waits on (see :attr:`Run.pending`)."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["callback", "sleep", "suspend", "condition", "child"]
    """What it is: a callback to complete, a sleep, a suspension to resume, a condition's next
    check, a child run."""
    step_key: str
    name: str
    callback_id: str | None = None
    """The id to complete a callback with (``complete_callback``); None for other kinds."""
    deadline: datetime | None = None
    """When it ends on its own: a sleep's or next check's time, a callback's timeout."""


class Run(BaseModel):
    """One execution of a workflow."""

    model_config = ConfigDict(frozen=True)

    id: str
    """The run id (a UUID string)."""
    workflow: str
    """The workflow's registered name."""
    status: RunStatus
    input: Any
    """The validated input, as stored (JSON)."""
    output: Any = None
    """The workflow's return value, as stored (JSON), once completed."""
    error: ErrorInfo | None = None
    """Why the run failed, or the cancel reason."""
    created_at: datetime
    updated_at: datetime
    wake_at: datetime | None = None
    """When a timer (sleep or retry delay) next wakes the run, if one is set."""
    idempotency_key: str | None = None
    """The key the run was started with, if any."""
    pending: list[PendingItem] = []
    """What the run waits on now, oldest first (read by ``get_run``; empty in listings)."""
    forked_from: dict[str, str] | None = None
    """For a run started by ``fork``: ``{"run_id": ..., "step_key": ...}`` it was forked at."""
    parent_id: str | None = None
    """For a child run (``wf.child``, ``wf.start_child``): the id of the run that started it."""


class StepAttempt(BaseModel):
    """One attempt of one step, as the history shows it (oldest first)."""

    model_config = ConfigDict(frozen=True)

    step_key: str
    """The step's key: its name plus ``#n`` for the n-th repeat of that name in a run."""
    step_name: str
    kind: StepKind
    status: StepStatus
    attempt: int
    """1 for the first attempt, 2 for the first retry, ..."""
    result: Any = None
    error: ErrorInfo | None = None
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def duration_ms(self) -> float | None:
        """How long the attempt took, when it has both ends."""
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds() * 1000


class Caller(BaseModel):
    """Who is calling, as the API Gateway authorizer established it."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["iam", "jwt", "lambda", "anonymous"]
    """How the caller was authenticated."""
    principal: str | None = None
    """The IAM user or role ARN, or the JWT ``sub``."""
    claims: dict[str, Any] = {}
    """JWT claims or Lambda authorizer context, as API Gateway passed them."""


class AccessRequest(BaseModel):
    """What a workflow's ``authorize`` hook is asked to allow."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    caller: Caller
    action: Literal["start", "read", "resume", "cancel", "callback"]
    workflow: str
    input: Any = None
    """The validated input (``start`` only)."""
    run_id: str | None = None
    """The run acted on (not for ``start``)."""

"""Hooks for logs, traces and metrics around steps and runs.

The engine calls an :class:`Observer`; the default one only logs through the standard library.
``lambda_flow.aws.observability`` plugs in powertools (structured logs, X-Ray subsegments, EMF).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Protocol

from ..core import ErrorInfo, RunStatus, StepKind, StepStatus
from ._context import StepInfo

logger = logging.getLogger("lambda_flow")


class Observer(Protocol):
    """What the engine reports while it works."""

    def step(self, info: StepInfo, kind: StepKind) -> contextlib.AbstractContextManager[None]:
        """Wraps one attempt of one step (a trace span)."""
        ...

    def step_finished(
        self,
        info: StepInfo,
        kind: StepKind,
        status: StepStatus,
        *,
        retrying: bool,
        error: ErrorInfo | None = None,
    ) -> None:
        """One attempt ended: succeeded, or failed (``retrying`` when another is due).

        ``error`` is what a failed attempt stored (redacted, with the step's traceback).
        """
        ...

    def run_finished(
        self, run_id: str, workflow: str, status: RunStatus, duration_seconds: float
    ) -> None:
        """A run reached a final status (or suspended)."""
        ...


def step_fields(
    info: StepInfo,
    kind: StepKind,
    status: StepStatus,
    *,
    retrying: bool,
    error: ErrorInfo | None = None,
) -> dict[str, object]:
    """The structured fields of a "step attempt finished" record.

    A failed attempt adds ``error_type`` and ``error_message``, and ``traceback`` when its
    stored error has one (all as stored: after the ``redact`` hook).
    """
    fields: dict[str, object] = {
        "run_id": info.run_id,
        "workflow": info.workflow,
        "step": info.step_id,
        "attempt": info.attempt,
        "kind": kind.value,
        "status": status.value,
        "retrying": retrying,
    }
    if error is not None:
        fields["error_type"] = error.type
        fields["error_message"] = error.message
        if error.traceback is not None:
            fields["traceback"] = error.traceback
    return fields


def run_fields(
    run_id: str, workflow: str, status: RunStatus, duration_seconds: float
) -> dict[str, object]:
    """The structured fields of a "run finished" record."""
    return {
        "run_id": run_id,
        "workflow": workflow,
        "status": status.value,
        "duration_seconds": round(duration_seconds, 3),
    }


class LoggingObserver:
    """Structured records on the ``lambda_flow`` logger; no traces or metrics."""

    @contextlib.contextmanager
    def step(self, info: StepInfo, kind: StepKind) -> Iterator[None]:
        yield

    def step_finished(
        self,
        info: StepInfo,
        kind: StepKind,
        status: StepStatus,
        *,
        retrying: bool,
        error: ErrorInfo | None = None,
    ) -> None:
        """A failed attempt is a warning with its error; a success is an info record."""
        level = logging.INFO if status is StepStatus.SUCCEEDED else logging.WARNING
        if logger.isEnabledFor(level):
            fields = step_fields(info, kind, status, retrying=retrying, error=error)
            logger.log(level, "step attempt finished", extra=fields)

    def run_finished(
        self, run_id: str, workflow: str, status: RunStatus, duration_seconds: float
    ) -> None:
        logger.info("run finished", extra=run_fields(run_id, workflow, status, duration_seconds))

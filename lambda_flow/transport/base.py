"""The queue interface: what remote mode needs to move work between stateless processes."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from ..core import InvalidMessage


@dataclass(frozen=True, slots=True)
class StepJob:
    """A message asking a worker to run one attempt of one RPC step (ids only)."""

    run_id: str
    step_key: str
    attempt: int


class JobQueue(Protocol):
    """Moves ids between processes; payloads stay in the store.

    With a queue configured, ``WorkflowService`` runs in remote mode: ``start()`` stores the run
    and queues its first orchestration job, then returns.
    """

    def enqueue_run(self, run_id: str, *, delay: timedelta | None = None) -> None:
        """Ask for an orchestration pass of ``run_id`` (after ``delay``, if given)."""
        ...

    def enqueue_steps(self, jobs: Sequence[StepJob]) -> None:
        """Ask workers to run these step attempts."""
        ...

    def wake_at(self, run_id: str, when: datetime, now: datetime) -> None:
        """Ask for a pass of ``run_id`` at ``when`` (a timer: sleep or retry delay)."""
        ...

    def backlog(self) -> int | None:
        """About how many orchestration requests wait to be handled now (due, not taken).

        None when the queue cannot tell. The sweeper holds back while there is a backlog: a run
        that looks stuck most likely has its message waiting in it.
        """
        ...


# -- encoders and decoders of the two messages, side by side --------------------------------
def run_message(run_id: str) -> str:
    """The orchestrator queue's message body for a pass of ``run_id``."""
    return json.dumps({"run_id": run_id}, separators=(",", ":"))


def step_message(job: StepJob) -> str:
    """The step queue's message body for one attempt of one step."""
    return json.dumps(
        {"run_id": job.run_id, "step_key": job.step_key, "attempt": job.attempt},
        separators=(",", ":"),
    )


def _body(raw: str | bytes | Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(raw, Mapping):
        return raw
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise InvalidMessage(f"message body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise InvalidMessage("message body must be a JSON object")
    return body


def _run_id(body: Mapping[str, Any]) -> str:
    value = body.get("run_id")
    if not isinstance(value, str):
        raise InvalidMessage("message has no run_id")
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise InvalidMessage(f"run_id {value!r} is not a UUID") from None


def parse_run_message(raw: str | bytes | Mapping[str, Any]) -> str:
    """The run id of an orchestrator message ``{"run_id": ...}``.

    Raises:
        InvalidMessage: naming what is wrong with the message.
    """
    return _run_id(_body(raw))


def parse_step_message(raw: str | bytes | Mapping[str, Any]) -> StepJob:
    """The job of a step message ``{"run_id", "step_key", "attempt"}``.

    Raises:
        InvalidMessage: naming what is wrong with the message.
    """
    body = _body(raw)
    run_id = _run_id(body)
    step_key = body.get("step_key")
    attempt = body.get("attempt")
    if not isinstance(step_key, str) or not step_key:
        raise InvalidMessage("message has no step_key")
    if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
        raise InvalidMessage(f"attempt must be a whole number >= 1, got {attempt!r}")
    return StepJob(run_id=run_id, step_key=step_key, attempt=attempt)


def message_run_id(raw: str | bytes | Mapping[str, Any]) -> str | None:
    """The run a message names, if it names one validly (for dead-letter bookkeeping)."""
    try:
        return _run_id(_body(raw))
    except InvalidMessage:
        return None

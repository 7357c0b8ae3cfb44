"""Recorded run histories: export a run's steps as JSON, and replay them against the code.

Replaying runs nothing: recorded steps return their stored results, and the replay stops where
the history ends. If the code asks for a different step than the one recorded, it raises the
same :class:`NonDeterminismError` a live run would fail with. Keep a few exported histories with
your tests and replay them in CI to catch a change that would break runs already in flight.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, cast

from ..core import (
    InvalidInput,
    NonDeterminismError,
    RunNotFound,
    RunStatus,
    SystemClock,
    run_sync,
)
from ..store.base import LeasedRun, RunLease, RunOutcome, StepRecord, Store
from ._driver import Driver
from ._engine import Engine
from ._flow import Flow
from ._replay import OrchestrationPass

FORMAT = "lambda-flow-history/1"


def export_run(store: Store, run_id: str) -> dict[str, Any]:
    """A run and every one of its steps as JSON-safe data (see :data:`FORMAT`).

    Raises:
        RunNotFound: unknown run.
    """
    run = store.get_run(run_id)
    if run is None:
        raise RunNotFound(run_id)
    return {
        "format": FORMAT,
        "run": run.model_dump(mode="json", exclude={"idempotency_key"}),
        "steps": [s.to_json() for s in store.get_steps(run_id)],
    }


class _NoWrites:
    """The store of a replay: a replay that tries to write has gone past its history."""

    def write_steps(self, *args: Any) -> int:
        raise RuntimeError("a replay must not write steps")

    def finish_pass(
        self, lease: RunLease, outcome: RunOutcome, writes: Any, now: datetime, **_: Any
    ) -> int:
        return lease.token + 1

    def renew(self, *args: Any) -> None:
        return None


class _ReplayDriver(Driver):
    """The driver of a replay, which runs nothing.

    A replay stops where its history ends, before any step could be run or sent.
    """

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a replay runs nothing")

    rpc_step = send_steps = after_pass = hand_on = dispatch = start_and_wait = _refuse
    start_child = wake = _refuse


def _steps(history: Mapping[str, Any]) -> dict[str, StepRecord]:
    try:
        records = [StepRecord.from_json(s) for s in history["steps"]]
        return {record.key: record for record in records}
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInput(
            "history", [{"loc": ["steps"], "msg": f"malformed step record: {exc!r}"}]
        ) from None


def replay_history(flow: Flow, history: Mapping[str, Any]) -> RunStatus:
    """Replay an exported history against ``flow``'s code, running nothing.

    Returns where the replay got to: ``completed`` (or ``failed``/``cancelled``) when the code
    finishes within the history, ``running``/``suspended`` when the history ends first.

    Raises:
        NonDeterminismError: the code asks for a different step than the history holds.
        InvalidInput: the history is not one :func:`export_run` wrote.
        WorkflowNotFound: the history's workflow is not in ``flow``.
    """
    if not isinstance(history, Mapping) or history.get("format") != FORMAT:
        raise InvalidInput("history", [{"loc": ["format"], "msg": f"expected {FORMAT!r}"}])
    run = history.get("run") or {}
    definition = flow.get_workflow(str(run.get("workflow")))
    leased = LeasedRun(
        lease=RunLease(run_id=str(run.get("id")), owner="replay", token=0),
        workflow=definition.name,
        input=run.get("input"),
        created_at=datetime.fromisoformat(run["created_at"]) if "created_at" in run else
        SystemClock().now(),
        steps=_steps(history),
        # A run cancelled from outside replays with its cancellation delivered, as it ran.
        cancel_requested=run.get("status") == "cancelled",
        cancel_reason=(run.get("error") or {}).get("message"),
    )  # fmt: skip
    engine = Engine(
        flow=flow,
        store=cast(Store, _NoWrites()),
        clock=SystemClock(),
        owner="replay",
        driver=_ReplayDriver(),
        replay_only=True,
    )
    orchestration = OrchestrationPass(engine, definition, leased)
    outcome = run_sync(orchestration.run())
    if outcome is None:  # pragma: no cover - nothing can take the lease of a replay
        raise RuntimeError("replay lost its lease")
    if outcome.error is not None and outcome.error.type == NonDeterminismError.__name__:
        raise NonDeterminismError(leased.lease.run_id, outcome.error.step_key or "", _why(outcome))
    _check_same_end(run, outcome, orchestration.beyond_history, leased.lease.run_id)
    skipped = orchestration.skipped
    if skipped is not None and not outcome.status.is_terminal:
        # Where the code waits now, every step recorded before must have been asked for
        # again: a recorded step it no longer reaches means it dropped (or moved) a step.
        key, record = skipped
        raise NonDeterminismError(
            leased.lease.run_id,
            key,
            f"the code waits without reaching recorded {record.kind.value} step {key!r}",
        )
    return outcome.status


_ENDED_FROM_OUTSIDE = frozenset({"DeadLetter", "WorkflowNotFound", "RunDeadlineExceeded"})
"""Error types of runs failed by something other than their code: such a history may end
before the code does."""


def _check_same_end(
    run: Mapping[str, Any], outcome: RunOutcome, beyond: str | None, run_id: str
) -> None:
    """A run that ended by its own code must end at the same point when replayed.

    Raises:
        NonDeterminismError: the recorded run completed (or failed) where the code now goes on
            to a new step, or ends differently.
    """
    recorded = run.get("status")
    error = run.get("error") or {}
    ended_by_code = recorded == RunStatus.COMPLETED or (
        recorded == RunStatus.FAILED and error.get("type") not in _ENDED_FROM_OUTSIDE
    )
    if not ended_by_code or outcome.status == recorded:
        return
    if beyond is not None:
        why = f"the recorded run {recorded} before this step; the code now goes on to it"
    else:
        why = f"the recorded run {recorded}; the code now ends {outcome.status.value}"
    raise NonDeterminismError(run_id, beyond or "", why)


def _why(outcome: RunOutcome) -> str:
    message = outcome.error.message if outcome.error else ""
    # The message already reads "non-determinism in run R at step 'K': why"; keep the why.
    return message.split(": ", 1)[1] if ": " in message else message


__all__ = ["FORMAT", "export_run", "replay_history"]

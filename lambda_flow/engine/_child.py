"""``wf.child`` and ``wf.start_child``: a run of another workflow, started and awaited by this one.

The child is a run of its own (its own history, lease and passes) whose ``parent_id`` names this
run. The parent records one step of kind ``child`` (``scheduled`` while the child runs) and
creates the child in the same statement; the child's id is derived from the parent's id and
the step's key, so a replay (or a retry after a crash) never starts a second child. When the
child ends, however it ends, a trigger hands its outcome to that step in the statement that
ends it (migration 0010) and the engine hands the parent on: one message in remote mode.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ..core import ChildFailed, ErrorInfo, LambdaFlowError

if TYPE_CHECKING:
    from ..core import Codec
    from ..store.base import StepRecord
    from ._flow import Flow, WorkflowDef
    from ._replay import OrchestrationPass

T = TypeVar("T")

_CHILD_IDS = uuid.UUID("6f0c8c1e-4b7e-5d6a-9a53-1a3f6c0e2b71")
"""The namespace of child run ids (uuid5 of the parent's id and the step's key)."""


def child_run_id(parent_id: str, step_key: str) -> str:
    """The id of the child run that step ``step_key`` of run ``parent_id`` starts."""
    return str(uuid.uuid5(_CHILD_IDS, f"{parent_id}/{step_key}"))


def child_workflow(flow: Flow, workflow: str | Callable[..., Any]) -> WorkflowDef:
    """The registered workflow a child runs, by name or by reference.

    Raises:
        WorkflowNotFound: no workflow has that name.
        LambdaFlowError: a function that is not a registered workflow.
    """
    if isinstance(workflow, str):
        return flow.get_workflow(workflow)
    for definition in flow.workflows.values():
        if definition.fn is workflow:
            return definition
    name = getattr(workflow, "__name__", repr(workflow))
    raise LambdaFlowError(
        f"{name} is not a registered workflow: register it with @flow.workflow, or pass its name"
    )


class ChildRun(Generic[T]):
    """A child run started by ``wf.start_child``: its id now, its output later.

    ``await handle.result()`` waits for the child to end (the parent parks meanwhile, using no
    compute) and returns its output; a failed, cancelled or timed-out child raises
    :class:`~lambda_flow.ChildFailed`.
    """

    __slots__ = ("_codec", "_pass", "_record", "run_id")

    def __init__(
        self, orchestration: OrchestrationPass, record: StepRecord, run_id: str, codec: Codec
    ) -> None:
        self._pass = orchestration
        self._record = record
        self._codec = codec
        self.run_id = run_id
        """The child run's id (stable across replays): ``get_run``, ``list_runs``, the API."""

    def __repr__(self) -> str:
        return f"ChildRun({self._record.key!r}, run_id={self.run_id!r})"

    @property
    def step_key(self) -> str:
        """The parent's step that waits for this child."""
        return self._record.key

    async def result(self) -> T:
        """The child's output, typed by its workflow's return annotation.

        Raises:
            ChildFailed: the child failed, was cancelled or went past ``timeout``.
            WorkflowCancelled: the parent was cancelled while it waited here.
        """
        loaded: T = self._codec.load(await self._pass.child_result(self))
        return loaded


def child_failed(record: StepRecord, child_id: str) -> ChildFailed:
    """What a failed child step raises on every replay."""
    error = record.error or ErrorInfo(type="Error", message="unknown failure")
    return ChildFailed(record.key, record.attempt, error.type, error.message, child_id)

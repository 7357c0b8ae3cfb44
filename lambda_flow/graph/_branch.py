"""What runs as a graph node's step: the user's function, with :func:`branch` available to it.

Each node is registered in the Flow as a function of its own (``graph:{graph}:{node}``) that
calls the node's function and returns ``{"output": ..., "branch": ...}``. Step workers look
functions up by name, so a node runs the same way inline and on a remote worker.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..core import LambdaFlowError
from ..engine import current_step

if TYPE_CHECKING:
    from ..engine import FunctionDef


@dataclass(slots=True)
class _BranchChoice:
    """The branch key a running node picked (None until it picks one)."""

    key: str | None = None


_choice: ContextVar[_BranchChoice | None] = ContextVar("lambda_flow_graph_branch", default=None)


def branch(key: str) -> None:
    """Pick which entry of this node's ``next`` dict to follow once the node finishes.

    Call it from the function a graph node runs. A key that matches no entry (or no call at
    all) ends that path of the graph; a node whose ``next`` is not a dict ignores it. The last
    call wins. The same function can also be a step of an ``async def`` workflow, where the
    call does nothing.

    Raises:
        LambdaFlowError: called outside any step (in a workflow body, say).
        TypeError: ``key`` is not a string.
    """
    if not isinstance(key, str):
        raise TypeError(f"branch() takes a string key, got {type(key).__name__}")
    choice = _choice.get()
    if choice is not None:
        choice.key = key
    elif current_step() is None:
        raise LambdaFlowError("branch() can only be called inside the function of a graph node")


@contextmanager
def choosing_branch() -> Iterator[_BranchChoice]:
    """Let the code inside pick a branch with :func:`branch`; yields what it picked."""
    choice = _BranchChoice()
    token = _choice.set(choice)
    try:
        yield choice
    finally:
        _choice.reset(token)


def node_step(function: FunctionDef) -> Callable[[Any], Awaitable[dict[str, Any]]]:
    """The step function of a node running ``function``."""

    async def run_node(data: Any) -> dict[str, Any]:
        with choosing_branch() as choice:
            output = await function.invoke(data)
        return {"output": output, "branch": choice.key}

    run_node.__qualname__ = run_node.__name__ = f"graph_node_{function.name}"
    return run_node

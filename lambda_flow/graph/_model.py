"""What a graph workflow is made of: nodes, ``ref()`` markers, node options and graph errors."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypedDict

from ..core import Duration, LambdaFlowError
from ..engine import Completion

NODE_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
"""Node ids are plain names, so they read well as step keys and Mermaid ids."""
RUN_INPUT = ("trigger", "input")
"""The names ``ref()`` accepts for the run's input; no node may use them."""


class GraphDefinitionError(LambdaFlowError, ValueError):
    """A graph was defined wrongly; raised by ``flow.graph(...)``, so nothing is registered.

    Attributes:
        graph: the graph's name.
        node: the node the problem is about, when it is about one.
    """

    def __init__(self, graph: str, message: str, *, node: str | None = None) -> None:
        where = f"graph {graph!r}" + (f", node {node!r}" if node is not None else "")
        super().__init__(f"{where}: {message}")
        self.graph = graph
        self.node = node


class GraphInputError(LambdaFlowError):
    """A node's input could not be built during a run: a ``ref()`` path is not in the output.

    Attributes:
        node: the node whose input was being built.
        ref: the marker that could not be resolved.
    """

    def __init__(self, node: str, ref: Ref, problem: str) -> None:
        super().__init__(f"input of node {node!r}: {ref!r}: {problem}")
        self.node = node
        self.ref = ref


@dataclass(frozen=True, slots=True)
class Ref:
    """A marker for "this part of that node's output", filled in when the node is about to run.

    Build it with :func:`ref`. It can stand anywhere in a node's input (inside dicts and
    lists) but cannot be computed with: put computations in a node.
    """

    node: str
    """A node id, or ``"trigger"`` / ``"input"`` for the run's input."""
    path: tuple[str, ...] = ()
    """Keys (and list indexes) to follow from the top of that output."""

    def __repr__(self) -> str:
        if not self.path:
            return f"ref({self.node!r})"
        return f"ref({self.node!r}, {'.'.join(self.path)!r})"

    def __format__(self, spec: str) -> str:
        raise TypeError(
            f"{self!r} cannot be formatted into a string: use it as a whole value in the "
            "input and build strings inside a node"
        )


def ref(node: str, path: str | None = None) -> Ref:
    """Point at a finished node's output (or at the run's input) from a node's ``input``.

    Args:
        node: a node id, or ``"trigger"`` (alias ``"input"``) for the run's input.
        path: dotted keys into that value, e.g. ``"profile.email"`` or ``"items.0.id"``;
            None for the whole value.

    Returns:
        A marker that the graph replaces with the value when the node runs. A node that did not
        run in this run (a branch not taken) reads as None.

    Example:
        config={"send_welcome": {"input": lambda ref: {"to": ref("create_profile", "email")}}}
    """
    if not isinstance(node, str) or not node:
        raise TypeError(f"ref() needs a node id (a non-empty string), got {node!r}")
    if path is None:
        return Ref(node)
    if not isinstance(path, str):
        raise TypeError(f"ref({node!r}, ...): the path must be a dotted string, got {path!r}")
    parts = tuple(path.split("."))
    if not all(parts):
        raise ValueError(f"ref({node!r}, {path!r}): the path has an empty segment")
    return Ref(node, parts)


RefFunction = Callable[..., Ref]
"""The ``ref`` an ``input`` callable receives: ``ref(node_id, path=None)``."""


class NodeConfig(TypedDict, total=False):
    """The options of one node in ``flow.graph(config={node_id: {...}})``."""

    next: str | Sequence[str] | Mapping[str, str | Sequence[str]]
    """What runs after this node: a node id, a list of ids (run in parallel), or a dict from
    branch key (chosen with :func:`lambda_flow.branch`) to an id or a list of ids."""
    input: Any
    """A callable taking ``ref`` and returning the node's input, or that value itself. It is
    evaluated once, when the graph is defined; its ``ref()`` markers are filled in at run time.
    Without it an entry node gets the run's input, a node with one predecessor gets that
    node's output, and a join gets ``{predecessor: output}`` of the predecessors that ran."""
    retries: int
    """Attempts after the first one (total attempts = retries + 1)."""
    retry_delay: Duration
    """Wait between attempts: a ``timedelta``, ``'1s'``, ``'5min'``, or milliseconds."""
    on_error: str
    """A node to run (as compensation) when this node fails after its retries; it receives
    ``{"error": {"message", "type", "node", "attempts"}, "input": <this node's input>}``."""
    map: bool
    """Run the node's function once per item of its input (which must be a list), as
    ``wf.map``: each item is a step keyed ``<node>/<index>`` and ``retries``/``retry_delay``
    apply to each item. The node's output is the list of the items' outputs, in index order.
    Without ``completion`` the node fails (error type ``BatchFailed``) if any item failed."""
    max_concurrency: int
    """With ``map``: the most items in flight at once (1 or more; default: no limit)."""
    completion: Completion
    """With ``map``: when to stop starting items (see :class:`lambda_flow.Completion`). The node
    then fails only when failures exceed the tolerance; otherwise its output holds None where an
    item failed or never started."""


class _NoInput:
    """The ``input`` of a node that has none (distinct from an input of None)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NO_INPUT"


NO_INPUT: Any = _NoInput()


@dataclass(frozen=True, slots=True)
class GraphNode:
    """One node of a defined graph, with its edges resolved and checked."""

    id: str
    function: str
    """The registered name of the function the node runs."""
    targets: tuple[str, ...]
    """Every node ``next`` may lead to, in the order given (each once)."""
    branches: Mapping[str, tuple[str, ...]] | None
    """``next`` as given when it is a dict (branch key to targets); None otherwise."""
    input: Any
    """The input template (may hold :class:`Ref` markers), or ``NO_INPUT``."""
    retries: int
    retry_delay: timedelta
    on_error: str | None
    predecessors: tuple[str, ...]
    """Nodes with a ``next`` edge to this one, in definition order."""
    compensates: tuple[str, ...]
    """Nodes whose ``on_error`` this is: a compensation node runs only for them."""
    refs: tuple[Ref, ...]
    """Every marker in the input template."""
    map: bool = False
    """Whether the node runs its function once per item of its (list) input."""
    max_concurrency: int | None = None
    """For a map node: the most items in flight at once (None: no limit)."""
    completion: Completion | None = None
    """For a map node: when to stop starting items (None: run all, fail if any failed)."""

    @property
    def is_entry(self) -> bool:
        """True for a node that starts when the run does (no incoming edge of any kind)."""
        return not self.predecessors and not self.compensates

    def chosen(self, branch: str | None) -> tuple[str, ...]:
        """The nodes this node activates once it finished having picked ``branch``."""
        if self.branches is None:
            return self.targets
        return self.branches.get(branch, ()) if branch is not None else ()


@dataclass(frozen=True, slots=True)
class Graph:
    """A graph workflow as defined and checked; ``flow.graph(...)`` returns it."""

    name: str
    description: str | None
    nodes: Mapping[str, GraphNode]
    """Every node, in definition order."""
    order: tuple[str, ...]
    """Node ids in a topological order (a node after all its predecessors)."""

    @property
    def entries(self) -> tuple[str, ...]:
        """The nodes that start when a run starts."""
        return tuple(n.id for n in self.nodes.values() if n.is_entry)

    def function_name(self, node: str) -> str:
        """The name under which the node's step function is registered in the Flow."""
        return f"graph:{self.name}:{node}"

    def mermaid(self) -> str:
        """The graph as a Mermaid flowchart (what ``lambda-flow graph NAME --mermaid`` prints)."""
        from ._mermaid import to_mermaid

        return to_mermaid(self)

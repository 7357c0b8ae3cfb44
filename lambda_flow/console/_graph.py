"""A graph workflow drawn server-side: a layered layout as SVG geometry, nodes coloured by state.

Mermaid renders in the browser with a ~3 MB script; vendoring it would weigh more than the rest
of the wheel, and its script needs inline styles that a strict Content-Security-Policy refuses.
A graph workflow is a DAG whose nodes already come in topological order (``Graph.order``), so
a layered layout (each node one layer below its deepest predecessor) is a few lines, exact, and
testable; the Mermaid source is still offered on the page as text (``Graph.mermaid()``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..graph import Graph

__all__ = ["GraphDrawing", "draw_graph"]

NODE_WIDTH = 170
NODE_HEIGHT = 40
GAP_X = 30
GAP_Y = 56
MARGIN = 12


@dataclass(frozen=True, slots=True)
class DrawnNode:
    """A node's box."""

    id: str
    label: str
    state: str
    """The node's step status (``succeeded``, ``failed``, ``running``...), or ``waiting``."""
    x: float
    y: float
    map: bool


@dataclass(frozen=True, slots=True)
class DrawnEdge:
    """An edge from the bottom of one box to the top of another."""

    x1: float
    y1: float
    x2: float
    y2: float
    label: str | None
    compensation: bool


@dataclass(frozen=True, slots=True)
class GraphDrawing:
    """What the template draws."""

    nodes: list[DrawnNode]
    edges: list[DrawnEdge]
    width: float
    height: float
    node_width: int = NODE_WIDTH
    node_height: int = NODE_HEIGHT
    mermaid: str = ""


def _layers(graph: Graph) -> dict[str, int]:
    """Each node's layer: one below its deepest predecessor or the node it compensates."""
    layer: dict[str, int] = {}
    for node_id in graph.order:
        node = graph.nodes[node_id]
        above = [layer[p] for p in (*node.predecessors, *node.compensates) if p in layer]
        layer[node_id] = max(above, default=-1) + 1
    for node_id in graph.nodes:  # not in order (should not happen): put it on top
        layer.setdefault(node_id, 0)
    return layer


def draw_graph(graph: Graph, states: Mapping[str, str] | None = None) -> GraphDrawing:
    """Lay ``graph`` out; ``states`` maps a node id to its step's status (a run's graph)."""
    states = states or {}
    layer = _layers(graph)
    rows: dict[int, list[str]] = {}
    for node_id in graph.nodes:
        rows.setdefault(layer[node_id], []).append(node_id)
    widest = max((len(ids) for ids in rows.values()), default=1)
    width = 2 * MARGIN + widest * NODE_WIDTH + (widest - 1) * GAP_X
    place: dict[str, tuple[float, float]] = {}
    for depth, ids in rows.items():
        used = len(ids) * NODE_WIDTH + (len(ids) - 1) * GAP_X
        left = (width - used) / 2
        for i, node_id in enumerate(ids):
            top = MARGIN + depth * (NODE_HEIGHT + GAP_Y)
            place[node_id] = (left + i * (NODE_WIDTH + GAP_X), top)
    nodes = [
        DrawnNode(
            id=node.id,
            label=node.id if node.function == node.id else f"{node.id}: {node.function}",
            state=states.get(node.id, "waiting"),
            x=place[node.id][0],
            y=place[node.id][1],
            map=node.map,
        )
        for node in graph.nodes.values()
    ]
    edges: list[DrawnEdge] = []

    def edge(source: str, target: str, label: str | None, compensation: bool = False) -> None:
        (sx, sy), (tx, ty) = place[source], place[target]
        edges.append(
            DrawnEdge(
                x1=sx + NODE_WIDTH / 2,
                y1=sy + NODE_HEIGHT,
                x2=tx + NODE_WIDTH / 2,
                y2=ty - 2,
                label=label,
                compensation=compensation,
            )
        )

    for node in graph.nodes.values():
        if node.branches is None:
            for target in node.targets:
                edge(node.id, target, None)
        else:
            for key, targets in node.branches.items():
                for target in targets:
                    edge(node.id, target, key)
        if node.on_error is not None:
            edge(node.id, node.on_error, "on_error", compensation=True)
    height = 2 * MARGIN + (max(rows, default=0) + 1) * (NODE_HEIGHT + GAP_Y) - GAP_Y
    return GraphDrawing(
        nodes=nodes, edges=edges, width=width, height=height, mermaid=graph.mermaid()
    )

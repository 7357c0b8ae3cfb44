"""A graph as a Mermaid flowchart: nodes in definition order, then their edges.

``a --> b`` is a ``next`` edge, ``a -->|key| b`` a branch, ``a -.->|on_error| h`` a compensation.
A map node is drawn as a subroutine box (``[[...]]``) whose label ends with `` (map)``.
"""

from __future__ import annotations

import re

from ._model import Graph

_KEYWORDS = frozenset({"end", "graph", "flowchart", "subgraph", "direction", "click", "style"})
_PLAIN_LABEL = re.compile(r"[A-Za-z0-9_ .-]+")


def to_mermaid(graph: Graph) -> str:
    """The Mermaid ``flowchart TD`` text of ``graph`` (no trailing newline)."""
    ids = _mermaid_ids(graph)
    lines = ["flowchart TD"]
    for node in graph.nodes.values():
        label = node.id if node.function == node.id else f"{node.id}: {node.function}"
        if node.map:
            lines.append(f'    {ids[node.id]}[["{_escape(label)} (map)"]]')
        else:
            lines.append(f'    {ids[node.id]}["{_escape(label)}"]')
    for node in graph.nodes.values():
        source = ids[node.id]
        if node.branches is None:
            lines += [f"    {source} --> {ids[target]}" for target in node.targets]
        else:
            for key, targets in node.branches.items():
                edge = f"-->|{_edge_label(key)}|"
                lines += [f"    {source} {edge} {ids[target]}" for target in targets]
        if node.on_error is not None:
            lines.append(f"    {source} -.->|on_error| {ids[node.on_error]}")
    return "\n".join(lines)


def _mermaid_ids(graph: Graph) -> dict[str, str]:
    """Node ids as Mermaid ids: the same, except where Mermaid would misread them.

    ``-`` (which Mermaid may read as part of a link) becomes ``_``, and words Mermaid reserves
    get a ``_`` suffix.
    """
    ids: dict[str, str] = {}
    for node_id in graph.nodes:
        alias = node_id.replace("-", "_")
        while (
            alias.lower() in _KEYWORDS
            or alias in ids.values()
            or (alias != node_id and alias in graph.nodes)
        ):
            alias += "_"
        ids[node_id] = alias
    return ids


def _escape(text: str) -> str:
    return text.replace('"', "#quot;").replace("|", "#124;")


def _edge_label(key: str) -> str:
    return key if _PLAIN_LABEL.fullmatch(key) else f'"{_escape(key)}"'

"""The ``graph`` command: a graph workflow's nodes and edges, as a table or a Mermaid flowchart."""

from __future__ import annotations

from ..graph import Flow as GraphFlow
from ..graph import Graph, GraphNode
from ._output import table
from ._session import EXIT_OK, AddCommand, CommandError, Session


def _find_graph(session: Session) -> Graph:
    flow = session.app()
    name = session.args.name
    graphs = flow.graphs if isinstance(flow, GraphFlow) else {}
    graph = graphs.get(name)
    if graph is None:
        if name in flow.workflows:
            raise CommandError(f"workflow {name!r} is not a graph workflow")
        known = ", ".join(sorted(graphs)) or "none"
        raise CommandError(f"unknown graph {name!r} (graphs in the app: {known})")
    return graph


def _next(node: GraphNode) -> str:
    if node.branches is None:
        return ", ".join(node.targets)
    return " ".join(f"{k}={','.join(t) or '-'}" for k, t in node.branches.items())


def _cmd_graph(session: Session) -> int:
    graph = _find_graph(session)
    if session.args.mermaid:
        print(graph.mermaid())
        return EXIT_OK
    rows = [
        [node.id, node.function, _next(node), node.on_error or ""] for node in graph.nodes.values()
    ]
    print(table(["NODE", "FUNCTION", "NEXT", "ON_ERROR"], rows))
    return EXIT_OK


def add_graph(command: AddCommand) -> None:
    """Add ``graph NAME [--mermaid]``."""
    graph = command("graph", _cmd_graph, "show a graph workflow's nodes and edges")
    graph.add_argument("name", metavar="NAME")
    graph.add_argument("--mermaid", action="store_true", help="print a Mermaid flowchart")

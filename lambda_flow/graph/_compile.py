"""Compile a checked graph onto the engine: one function per node, one workflow for the graph."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..engine import RetryPolicy, WorkflowContext
from ._branch import node_step
from ._model import Graph, GraphDefinitionError, NodeConfig
from ._run import GraphRun
from ._validate import build_graph

if TYPE_CHECKING:
    from ..core import AccessRequest
    from ..engine import Flow


def define_graph(
    flow: Flow,
    name: str,
    *,
    nodes: Mapping[str, str | Callable[..., Any]],
    config: Mapping[str, NodeConfig] | None = None,
    description: str | None = None,
    tags: tuple[str, ...] | list[str] = (),
    authorize: Callable[[AccessRequest], bool] | None = None,
) -> Graph:
    """Check a graph and register it in ``flow`` as a workflow called ``name``.

    Registers one function per node (``graph:{name}:{node}``, which step workers find by name)
    and a workflow whose body runs the nodes. Nothing is registered when a check fails. A map
    node's function carries the node's ``retries``/``retry_delay`` as its retry policy, since
    ``wf.map`` runs each item with the policy of the function it calls.

    Raises:
        GraphDefinitionError: naming the node (or cycle) that is wrong, or a name already taken.
    """
    graph = build_graph(flow, name, nodes, config or {}, description)
    if name in flow.workflows:
        raise GraphDefinitionError(name, "a workflow with this name is already registered")
    for node_id in graph.nodes:
        if graph.function_name(node_id) in flow.functions:
            raise GraphDefinitionError(
                name,
                f"function {graph.function_name(node_id)!r} is already registered",
                node=node_id,
            )
    for node in graph.nodes.values():
        retry = RetryPolicy.fixed(node.retries, node.retry_delay) if node.map else None
        flow.function(name=graph.function_name(node.id), retry=retry)(
            node_step(flow.get_function(node.function))
        )
    flow.workflow(name=name, description=description, tags=tags, authorize=authorize)(_body(graph))
    return graph


def _body(graph: Graph) -> Callable[[WorkflowContext, Any], Any]:
    async def run_graph(wf: WorkflowContext, data: Any) -> dict[str, Any]:
        return await GraphRun(graph, wf, data).execute()

    run_graph.__qualname__ = run_graph.__name__ = f"graph_{graph.name}"
    return run_graph

"""Graph workflows: named nodes and edges, compiled onto the same durable engine.

Example:
    flow.graph(
        "onboarding",
        nodes={"create_profile": "create_user_profile", "send_welcome": "send_email",
               "setup_defaults": "create_default_todos"},
        config={
            "create_profile": {"next": ["send_welcome", "setup_defaults"]},   # parallel
            "send_welcome": {"input": lambda ref: {"to": ref("create_profile", "email")}},
        },
    )

Each node runs as one step (key = node id) of a workflow registered under the graph's name, so
a graph run is started, replayed, retried, listed, resumed and cancelled like any other run.
A node with ``{"map": True}`` (optionally ``max_concurrency`` and ``completion``) runs its
function once per item of its list input, as ``wf.map`` (one step per item, keyed
``<node>/<index>``), and outputs the items' outputs in index order.
"""

from ._branch import branch
from ._compile import define_graph
from ._flow import Flow
from ._model import (
    Graph,
    GraphDefinitionError,
    GraphInputError,
    GraphNode,
    NodeConfig,
    Ref,
    ref,
)

__all__ = [
    "Flow",
    "Graph",
    "GraphDefinitionError",
    "GraphInputError",
    "GraphNode",
    "NodeConfig",
    "Ref",
    "branch",
    "define_graph",
    "ref",
]

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

from typing import TYPE_CHECKING, Any

from ._flow import Flow

if TYPE_CHECKING:
    from ._branch import branch
    from ._compile import define_graph
    from ._model import (
        Graph,
        GraphDefinitionError,
        GraphInputError,
        GraphNode,
        NodeConfig,
        Ref,
        ref,
    )

# Only ``Flow`` is imported with the package: the model, compiling and running of graphs are
# imported on first use of a name below (the first ``flow.graph(...)`` does), so an app of
# plain workflows never loads them.
_LAZY = {
    "branch": "._branch",
    "define_graph": "._compile",
    **dict.fromkeys(
        ("Graph", "GraphDefinitionError", "GraphInputError", "GraphNode", "NodeConfig", "Ref"),
        "._model",
    ),
    "ref": "._model",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


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

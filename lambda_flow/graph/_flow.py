"""The application's :class:`Flow`: the engine's registry, plus graph workflows.

The engine knows nothing of graphs; this subclass adds ``flow.graph(...)``, which compiles a
graph onto the engine's public names (registered functions and a workflow). ``lambda_flow.Flow``
is this class.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..core import AccessRequest
from ..engine import Flow as EngineFlow
from ..engine import RetryPolicy

if TYPE_CHECKING:
    from ._model import Graph, NodeConfig


class Flow(EngineFlow):
    """The registry of a lambda-flow application: RPC functions, workflows and graphs.

    Args:
        redact: strips secrets from stored errors (see the engine's ``Flow``).
        default_retry: the retry policy of steps that name none (see the engine's ``Flow``).
    """

    def __init__(
        self,
        *,
        redact: Callable[[str], str] | None = None,
        default_retry: RetryPolicy | None = None,
    ) -> None:
        super().__init__(redact=redact, default_retry=default_retry)
        self._graphs: dict[str, Graph] = {}

    # -- graphs ----------------------------------------------------------------------------
    def graph(
        self,
        name: str,
        *,
        nodes: Mapping[str, str | Callable[..., Any]],
        config: Mapping[str, NodeConfig] | None = None,
        description: str | None = None,
        tags: tuple[str, ...] | list[str] = (),
        authorize: Callable[[AccessRequest], bool] | None = None,
    ) -> Graph:
        """Define a graph workflow and register it as the workflow ``name``.

        ``nodes`` maps node ids to registered functions (by name or reference); ``config``
        gives nodes their ``next``, ``input``, ``retries``, ``retry_delay`` and ``on_error``, and
        map nodes (``map: True``, run once per item of a list input, as ``wf.map``) their
        ``max_concurrency`` and ``completion`` (see :class:`lambda_flow.graph.NodeConfig`). The
        graph is checked here, not when a run starts.

        Raises:
            GraphDefinitionError: naming the node (or cycle) that is wrong; nothing is registered.
        """
        from ._compile import define_graph  # compiling graphs is loaded by the first graph

        graph = define_graph(
            self,
            name,
            nodes=nodes,
            config=config,
            description=description,
            tags=tags,
            authorize=authorize,
        )
        self._graphs[graph.name] = graph
        return graph

    @property
    def graphs(self) -> Mapping[str, Graph]:
        """Registered graph workflows by name (each is also in :attr:`workflows`)."""
        return self._graphs

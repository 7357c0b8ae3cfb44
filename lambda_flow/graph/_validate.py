"""Check a graph when it is defined and turn ``nodes`` + ``config`` into a :class:`Graph`.

Every problem is reported here, naming the node, so a bad graph never reaches a run: unknown
node ids in ``next``, ``ref`` or ``on_error``, unregistered functions, cycles, no entry node,
a ``ref`` to a node that does not always finish before the node reading it, map options that
are wrong or given to a node that is not a map node.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import timedelta
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from ..core import ANY_CODEC, LambdaFlowError, parse_duration
from ..engine import Completion
from ._model import NO_INPUT, NODE_ID, RUN_INPUT, Graph, GraphDefinitionError, GraphNode, Ref, ref

if TYPE_CHECKING:
    from ..engine import Flow

CONFIG_KEYS = (
    "next",
    "input",
    "retries",
    "retry_delay",
    "on_error",
    "map",
    "max_concurrency",
    "completion",
)

Next = tuple[tuple[str, ...], Mapping[str, tuple[str, ...]] | None]


def build_graph(
    flow: Flow,
    name: str,
    nodes: Mapping[str, Any],
    config: Mapping[str, Mapping[str, Any]],
    description: str | None,
) -> Graph:
    """Check a graph definition against ``flow`` and return it resolved.

    Raises:
        GraphDefinitionError: naming the node (or the cycle) that is wrong.
    """
    if not isinstance(name, str) or not name:
        raise LambdaFlowError(f"a graph name must be a non-empty string, got {name!r}")
    checker = _Checker(name)
    checker.shape(nodes, config)
    return checker.build(flow, nodes, config, description)


class _Checker:
    """The checks of one graph definition; ``fail`` raises naming the graph."""

    def __init__(self, graph: str) -> None:
        self.graph = graph

    def fail(self, message: str, node: str | None = None) -> GraphDefinitionError:
        return GraphDefinitionError(self.graph, message, node=node)

    # -- the shape of the arguments ---------------------------------------------------------
    def shape(self, nodes: Mapping[str, Any], config: Mapping[str, Mapping[str, Any]]) -> None:
        if not isinstance(nodes, Mapping) or not nodes:
            raise self.fail("nodes must be a non-empty dict of node id to function")
        for node_id in nodes:
            if not isinstance(node_id, str) or not NODE_ID.fullmatch(node_id):
                raise self.fail(
                    f"node id {node_id!r} must start with a letter or '_' and hold only "
                    "letters, digits, '_' and '-'"
                )
            if node_id in RUN_INPUT:
                raise self.fail(f"{node_id!r} is reserved for the run's input in ref()", node_id)
        if not isinstance(config, Mapping):
            raise self.fail("config must be a dict of node id to options")
        for node_id, options in config.items():
            if node_id not in nodes:
                raise self.fail(f"config names unknown node {node_id!r}", node_id)
            if not isinstance(options, Mapping):
                raise self.fail("its config must be a dict of options", node_id)
            unknown = [k for k in options if k not in CONFIG_KEYS]
            if unknown:
                raise self.fail(
                    f"unknown option {unknown[0]!r}; options are {', '.join(CONFIG_KEYS)}",
                    node_id,
                )

    # -- resolving every node ---------------------------------------------------------------
    def build(
        self,
        flow: Flow,
        nodes: Mapping[str, Any],
        config: Mapping[str, Mapping[str, Any]],
        description: str | None,
    ) -> Graph:
        functions = {n: self._function(flow, n, target) for n, target in nodes.items()}
        edges = {n: self._next(n, config.get(n, {}).get("next"), nodes) for n in nodes}
        handlers = {n: self._on_error(n, config.get(n, {}).get("on_error"), nodes) for n in nodes}
        predecessors: dict[str, list[str]] = {n: [] for n in nodes}
        for source, (targets, _) in edges.items():
            for target in targets:
                predecessors[target].append(source)
        compensates: dict[str, list[str]] = {n: [] for n in nodes}
        for source, handler in handlers.items():
            if handler is not None:
                compensates[handler].append(source)
        for handler, sources in compensates.items():
            if sources:
                self._check_compensation(handler, sources, config.get(handler, {}), predecessors)
        mapped = {n: self._map(n, config.get(n, {}), edges[n]) for n in nodes}
        order = self._topological_order(nodes, predecessors, compensates, edges)
        ancestors = _ancestors(order, predecessors)
        built: dict[str, GraphNode] = {}
        for node_id in nodes:
            options = config.get(node_id, {})
            template, refs = self._input(node_id, options)
            for marker in refs:
                self._check_ref(node_id, marker, nodes, ancestors[node_id])
            targets, branches = edges[node_id]
            built[node_id] = GraphNode(
                id=node_id,
                function=functions[node_id],
                targets=targets,
                branches=branches,
                input=template,
                retries=self._retries(node_id, options.get("retries", 0)),
                retry_delay=self._retry_delay(node_id, options.get("retry_delay", 0)),
                on_error=handlers[node_id],
                predecessors=tuple(predecessors[node_id]),
                compensates=tuple(compensates[node_id]),
                refs=refs,
                map=mapped[node_id][0],
                max_concurrency=mapped[node_id][1],
                completion=mapped[node_id][2],
            )
        return Graph(self.graph, description, MappingProxyType(built), order)

    def _function(self, flow: Flow, node_id: str, target: Any) -> str:
        if isinstance(target, str):
            if target not in flow.functions:
                raise self.fail(
                    f"function {target!r} is not registered (register it with "
                    "@flow.function before defining the graph)",
                    node_id,
                )
            return target
        if not callable(target):
            raise self.fail(
                f"expected a function name or a registered function, got {type(target).__name__}",
                node_id,
            )
        found = flow.find_function(target)
        if found is None:
            label = getattr(target, "__name__", repr(target))
            raise self.fail(
                f"function {label!r} is not registered (register it with @flow.function "
                "before defining the graph)",
                node_id,
            )
        return found.name

    def _ids(self, node_id: str, value: Any, nodes: Mapping[str, Any], what: str) -> list[str]:
        ids = [value] if isinstance(value, str) else value
        if not isinstance(ids, Sequence) or not all(isinstance(i, str) for i in ids):
            raise self.fail(
                f"{what} must be a node id or a list of node ids, got {value!r}", node_id
            )
        for target in ids:
            if target not in nodes:
                raise self.fail(f"{what} names unknown node {target!r}", node_id)
        if len(set(ids)) != len(ids):
            raise self.fail(f"{what} lists a node more than once: {list(ids)!r}", node_id)
        return list(ids)

    def _next(self, node_id: str, value: Any, nodes: Mapping[str, Any]) -> Next:
        if value is None:
            return (), None
        if not isinstance(value, Mapping):
            return tuple(self._ids(node_id, value, nodes, "next")), None
        branches: dict[str, tuple[str, ...]] = {}
        targets: list[str] = []
        for key, ids in value.items():
            if not isinstance(key, str):
                raise self.fail(f"next: branch keys must be strings, got {key!r}", node_id)
            branches[key] = tuple(self._ids(node_id, ids, nodes, f"next[{key!r}]"))
            targets += [t for t in branches[key] if t not in targets]
        return tuple(targets), MappingProxyType(branches)

    def _on_error(self, node_id: str, value: Any, nodes: Mapping[str, Any]) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.fail(f"on_error must be a node id, got {value!r}", node_id)
        if value not in nodes:
            raise self.fail(f"on_error names unknown node {value!r}", node_id)
        if value == node_id:
            raise self.fail("on_error names the node itself", node_id)
        return value

    def _check_compensation(
        self,
        handler: str,
        sources: list[str],
        options: Mapping[str, Any],
        predecessors: Mapping[str, list[str]],
    ) -> None:
        # A compensation node runs once per failed node with a fixed input, so it stays a leaf.
        role = f"the on_error node of {', '.join(repr(s) for s in sources)}"
        if predecessors[handler]:
            raise self.fail(
                f"is {role} and also follows {predecessors[handler][0]!r}; a node is either "
                "part of the flow or a compensation",
                handler,
            )
        if options.get("map"):
            raise self.fail(
                f"is {role}, so it cannot be a map node (it gets one dict: the error and the "
                "failed node's input)",
                handler,
            )
        for option in ("next", "input", "on_error"):
            if option in options:
                raise self.fail(
                    f"is {role}, so it cannot have {option!r} (it gets the error and the failed "
                    "node's input and ends that path)",
                    handler,
                )

    def _topological_order(
        self,
        nodes: Mapping[str, Any],
        predecessors: Mapping[str, list[str]],
        compensates: Mapping[str, list[str]],
        edges: Mapping[str, Next],
    ) -> tuple[str, ...]:
        waiting = {n: len(predecessors[n]) for n in nodes}
        order = [n for n in nodes if waiting[n] == 0]
        for node_id in order:  # grows while iterating: Kahn's algorithm
            for target in edges[node_id][0]:
                waiting[target] -= 1
                if waiting[target] == 0:
                    order.append(target)
        if len(order) == len(nodes):
            # Acyclic, so some node has no predecessor, and it is no compensation node
            # (those follow a node that is not one of them): there is an entry node.
            return tuple(order)
        cycle = _find_cycle([n for n in nodes if waiting[n] > 0], predecessors, waiting)
        path = " -> ".join(cycle)
        if not any(not predecessors[n] and not compensates[n] for n in nodes):
            raise self.fail(f"no entry node: every node has an incoming edge (cycle {path})")
        raise self.fail(f"is in a cycle: {path} (graphs must be acyclic)", cycle[0])

    # -- options ----------------------------------------------------------------------------
    def _input(self, node_id: str, options: Mapping[str, Any]) -> tuple[Any, tuple[Ref, ...]]:
        if "input" not in options:
            return NO_INPUT, ()
        raw = options["input"]
        if callable(raw):
            try:
                template = raw(ref)
            except Exception as exc:  # user code: report it naming the node
                raise self.fail(
                    f"its input callable failed when the graph was defined ({type(exc).__name__}:"
                    f" {exc}); it runs once, with ref() markers, and must only place them in the "
                    "input (do computations in a node)",
                    node_id,
                ) from exc
        else:
            template = raw
        try:
            refs = tuple(_walk_refs(template))
            ANY_CODEC.dump(fill_refs(template, lambda _: None))
        except Exception as exc:  # pydantic raises several kinds
            raise self.fail(f"its input is not JSON-serializable: {exc}", node_id) from exc
        return template, refs

    def _check_ref(
        self, node_id: str, marker: Ref, nodes: Mapping[str, Any], ancestors: frozenset[str]
    ) -> None:
        if marker.node in RUN_INPUT:
            return
        if marker.node not in nodes:
            raise self.fail(f"its input has {marker!r}, which names an unknown node", node_id)
        if marker.node not in ancestors:
            raise self.fail(
                f"its input has {marker!r}, but {marker.node!r} does not always finish before "
                f"{node_id!r} (it is not upstream of it)",
                node_id,
            )

    def _map(
        self, node_id: str, options: Mapping[str, Any], edges: Next
    ) -> tuple[bool, int | None, Completion | None]:
        is_map = options.get("map", False)
        if not isinstance(is_map, bool):
            raise self.fail(f"map must be True or False, got {is_map!r}", node_id)
        if not is_map:
            for option in ("max_concurrency", "completion"):
                if option in options:
                    raise self.fail(f"{option!r} is only valid with 'map': True", node_id)
            return False, None, None
        if edges[1] is not None:
            raise self.fail(
                "a map node cannot branch: its next must be a node id or a list of node ids",
                node_id,
            )
        limit = options.get("max_concurrency")
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 1
        ):
            raise self.fail(f"max_concurrency must be a whole number >= 1, got {limit!r}", node_id)
        completion = options.get("completion")
        if completion is not None and not isinstance(completion, Completion):
            raise self.fail(
                f"completion must be a lambda_flow.Completion, got {completion!r}", node_id
            )
        return True, limit, completion

    def _retries(self, node_id: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self.fail(f"retries must be a whole number >= 0, got {value!r}", node_id)
        return value

    def _retry_delay(self, node_id: str, value: Any) -> timedelta:
        try:
            return parse_duration(value)
        except LambdaFlowError as exc:
            raise self.fail(f"retry_delay: {exc}", node_id) from None


def _walk_refs(value: Any) -> Iterator[Ref]:
    if isinstance(value, Ref):
        yield value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(key, Ref):
                raise TypeError(f"{key!r} cannot be a dict key")
            yield from _walk_refs(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _walk_refs(item)


def fill_refs(value: Any, resolve: Callable[[Ref], Any]) -> Any:
    """``value`` with every :class:`Ref` replaced by ``resolve(ref)`` (tuples become lists)."""
    if isinstance(value, Ref):
        return resolve(value)
    if isinstance(value, Mapping):
        return {key: fill_refs(item, resolve) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [fill_refs(item, resolve) for item in value]
    return value


def _ancestors(
    order: Sequence[str], predecessors: Mapping[str, list[str]]
) -> dict[str, frozenset[str]]:
    found: dict[str, frozenset[str]] = {}
    for node_id in order:
        upstream: set[str] = set()
        for parent in predecessors[node_id]:
            upstream |= found[parent] | {parent}
        found[node_id] = frozenset(upstream)
    return found


def _find_cycle(
    stuck: list[str], predecessors: Mapping[str, list[str]], waiting: Mapping[str, int]
) -> list[str]:
    """A cycle among the nodes Kahn's algorithm could not order, in edge direction."""
    # Each stuck node has a stuck predecessor: walking them backwards must come round.
    seen: list[str] = []
    node = stuck[0]
    while node not in seen:
        seen.append(node)
        node = next(p for p in predecessors[node] if waiting[p] > 0)
    loop = seen[seen.index(node) :]
    loop.reverse()
    first = min(range(len(loop)), key=lambda i: stuck.index(loop[i]))  # earliest defined
    loop = loop[first:] + loop[:first]
    return [*loop, loop[0]]

"""The body of a graph workflow: run the nodes as steps, as soon as each one is ready.

Every node runs as ``wf.do(node_id, "graph:{graph}:{node}", input)`` (a map node as
``wf.map(node_id, input, "graph:{graph}:{node}", ...)``, one step per item), so graph runs get
what workflow runs get (persistence, replay, retries, history, remote workers, chained maps).
What runs is a pure function of the recorded results, never of the order in which parallel
nodes finish, so a replay asks for the same steps whatever order they come back in:

- entry nodes start with the run; a node whose predecessors have all settled (finished, failed
  or skipped) runs when at least one finished predecessor chose it and none failed, and is
  skipped otherwise (which settles it for its own successors). A join therefore runs once,
  after every predecessor that was activated has finished.
- a failed node's ``on_error`` node runs at once with the error and the failed node's input;
  nodes downstream of the failure are skipped, independent branches run to their end, then the
  run fails with the error of the first failed node (in definition order).
- a map node fails (``BatchFailed``) when an item failed, or with a ``completion`` only when
  failures exceeded its tolerance; an input that is not a list fails it (``GraphInputError``).
- the run returns ``{node: output}`` of every finished node that activated nothing (the ends
  of the paths taken, including a branch key that matched no edge).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ..core import StepFailed
from ..engine import WorkflowContext
from ._model import NO_INPUT, RUN_INPUT, Graph, GraphInputError, GraphNode, Ref
from ._validate import fill_refs


class NodeState(StrEnum):
    """Where a node is in one run."""

    WAITING = "waiting"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"
    """Will not run in this run: no finished predecessor chose it, or one failed."""


_SETTLED = frozenset({NodeState.DONE, NodeState.FAILED, NodeState.SKIPPED})


@dataclass(frozen=True, slots=True)
class _Activation:
    """One step the graph runs: a node, or a compensation node for one failed node."""

    key: str
    """The step's name: the node id (plus the failed node's for a shared compensation)."""
    node: GraphNode
    input: Any
    rank: tuple[int, int]
    compensating: str | None = None


class GraphRun:
    """Runs one graph over one workflow context.

    Args:
        graph: the graph to run.
        wf: the run's workflow context.
        run_input: the run's (validated, JSON) input.
    """

    def __init__(self, graph: Graph, wf: WorkflowContext, run_input: Any) -> None:
        self.graph = graph
        self.wf = wf
        self.run_input = run_input
        self.state = dict.fromkeys(graph.nodes, NodeState.WAITING)
        self.inputs: dict[str, Any] = {}
        self.outputs: dict[str, Any] = {}
        self.chosen: dict[str, tuple[str, ...]] = {}
        self.failures: dict[str, StepFailed] = {}
        self._index = {node_id: i for i, node_id in enumerate(graph.nodes)}
        self._ready: list[_Activation] = []

    async def execute(self) -> dict[str, Any]:
        """Run every node that should run; return the outputs of the ends of the paths taken.

        Raises:
            StepFailed: the first failed node's error, once nothing else is running.
            GraphInputError: a node's input could not be built from the outputs.
        """
        for node_id in self.graph.nodes:
            if self.graph.nodes[node_id].is_entry:
                self._activate(self.graph.nodes[node_id])
        tasks: dict[asyncio.Task[Any], _Activation] = {}
        try:
            while True:
                for activation in self._ready:
                    tasks[asyncio.create_task(self._step(activation))] = activation
                self._ready.clear()
                if not tasks:
                    break
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                for task in sorted(done, key=lambda t: tasks[t].rank):
                    self._settle(tasks.pop(task), task)
                self._activate_settled()
        finally:
            await _stop(tasks)
        return self._result()

    async def _step(self, activation: _Activation) -> Any:
        node = activation.node
        if node.map:
            return await self._map(activation)
        return await self.wf.do(
            activation.key,
            self.graph.function_name(node.id),
            activation.input,
            retries=node.retries,
            retry_delay=node.retry_delay,
        )

    async def _map(self, activation: _Activation) -> dict[str, Any]:
        """Run a map node: one step per item, as ``wf.map``; its output is the items' outputs.

        Raises:
            StepFailed: the input is not a list (``GraphInputError``), or items failed beyond
                what the node tolerates (``BatchFailed``, naming the failed items).
        """
        node, items = activation.node, activation.input
        if not isinstance(items, list):
            raise StepFailed(
                activation.key,
                0,
                "GraphInputError",
                f"map node {node.id!r} needs a list as its input, got {type(items).__name__}",
            )
        batch = await self.wf.map(
            activation.key,
            items,
            self.graph.function_name(node.id),
            max_concurrency=node.max_concurrency,
            completion=node.completion,
        )
        failed = batch.failed()
        if failed and (
            node.completion is None or batch.completion_reason == "failure_tolerance_exceeded"
        ):
            indexes = ", ".join(str(i) for i, _ in failed[:10]) + (
                ", ..." if len(failed) > 10 else ""
            )
            first, error = failed[0]
            raise StepFailed(
                activation.key,
                1,
                "BatchFailed",
                f"{len(failed)} of {len(items)} items failed (items {indexes}); first: item "
                f"{first}: {error.type}: {error.message}",
            )
        outputs = [None if r is None else r.get("output") for r in batch.results]
        return {"output": outputs, "branch": None}

    # -- deciding what runs -----------------------------------------------------------------
    def _activate(self, node: GraphNode) -> None:
        node_input = self._input_for(node)
        self.state[node.id] = NodeState.RUNNING
        self.inputs[node.id] = node_input
        rank = (self._index[node.id], -1)
        self._ready.append(_Activation(node.id, node, node_input, rank))

    def _settle(self, activation: _Activation, task: asyncio.Task[Any]) -> None:
        node = activation.node
        try:
            result = task.result()  # anything but a step failure unwinds the run
        except StepFailed as failure:
            if activation.compensating is not None:
                return  # in the history; the run fails with the compensated node's error
            self.state[node.id] = NodeState.FAILED
            self.failures[node.id] = failure
            if node.on_error is not None:
                self._compensate(node, failure)
            return
        if activation.compensating is not None:
            return
        self.state[node.id] = NodeState.DONE
        self.outputs[node.id] = result.get("output")
        self.chosen[node.id] = node.chosen(result.get("branch"))

    def _compensate(self, failed: GraphNode, failure: StepFailed) -> None:
        handler = self.graph.nodes[str(failed.on_error)]
        shared = len(handler.compensates) > 1
        key = f"{handler.id} for {failed.id}" if shared else handler.id
        payload = {
            "error": {
                "message": failure.error_message,
                "type": failure.error_type,
                "node": failed.id,
                "attempts": failure.attempts,
            },
            "input": self.inputs[failed.id],
        }
        rank = (self._index[handler.id], self._index[failed.id])
        self._ready.append(_Activation(key, handler, payload, rank, compensating=failed.id))

    def _activate_settled(self) -> None:
        """Decide every waiting node whose predecessors have all settled.

        Nodes go in topological order, so a skip settles the nodes after it in the same sweep.
        """
        for node_id in self.graph.order:
            node = self.graph.nodes[node_id]
            if self.state[node_id] is not NodeState.WAITING or not node.predecessors:
                continue
            states = [self.state[p] for p in node.predecessors]
            if not all(s in _SETTLED for s in states):
                continue
            chosen = (
                any(node_id in self.chosen.get(p, ()) for p in node.predecessors)
                and NodeState.FAILED not in states
            )
            if chosen:
                self._activate(node)
            else:
                self.state[node_id] = NodeState.SKIPPED

    # -- inputs and the result --------------------------------------------------------------
    def _input_for(self, node: GraphNode) -> Any:
        if node.input is not NO_INPUT:
            return fill_refs(node.input, lambda marker: self._resolve(node.id, marker))
        if not node.predecessors:
            return self.run_input
        if len(node.predecessors) == 1:
            return self.outputs.get(node.predecessors[0])
        return {p: self.outputs[p] for p in node.predecessors if p in self.outputs}

    def _resolve(self, node_id: str, marker: Ref) -> Any:
        if marker.node in RUN_INPUT:
            value = self.run_input
        elif self.state[marker.node] is NodeState.DONE:
            value = self.outputs[marker.node]
        else:
            return None  # the node did not run (a branch not taken)
        for depth, key in enumerate(marker.path):
            if value is None:
                return None
            if isinstance(value, Mapping) and key in value:
                value = value[key]
            elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
                value = value[int(key)]
            else:
                where = ".".join(marker.path[:depth]) or "the top"
                raise GraphInputError(
                    node_id, marker, f"no {key!r} at {where} of {marker.node!r}'s value"
                )
        return value

    def _result(self) -> dict[str, Any]:
        if self.failures:
            first = min(self.failures, key=self._index.__getitem__)
            raise self.failures[first]
        return {
            node_id: self.outputs[node_id]
            for node_id in self.graph.nodes
            if self.state[node_id] is NodeState.DONE and not self.chosen[node_id]
        }


async def _stop(tasks: Mapping[asyncio.Task[Any], _Activation]) -> None:
    """Cancel what is still running (the run is unwinding) and wait for it to stop."""
    if not tasks:
        return
    for task in tasks:
        task.cancel()
    await asyncio.wait(tasks)
    for task in tasks:
        if not task.cancelled():
            task.exception()  # retrieved: it is the unwinding's business, not a stray warning

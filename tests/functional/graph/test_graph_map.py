"""Map nodes in graph workflows: a node run once per item of its list input, as ``wf.map``
(inline and chained in remote mode), with its failure, tolerance, retry and replay semantics."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest

from lambda_flow import (
    Completion,
    Flow,
    GraphDefinitionError,
    PostgresStore,
    RunStatus,
    StepStatus,
    WorkflowService,
)
from lambda_flow.graph import NodeConfig
from lambda_flow.testing import TimeSkippingClock, replay_history
from lambda_flow.transport.local import LocalQueue
from lambda_flow.worker import Dispatcher
from tests.functional.worker.test_remote import drain


def _run(service: WorkflowService, run_id: str) -> Any:
    run = service.get_run(run_id)
    assert run is not None
    return run


def _steps(service: WorkflowService, run_id: str) -> list[tuple[str, int, StepStatus]]:
    return sorted((h.step_key, h.attempt, h.status) for h in service.get_run_history(run_id))


@pytest.fixture
def split(flow: Flow) -> None:
    @flow.function
    def split_order(order: dict[str, Any]) -> list[int]:
        return list(order["amounts"])


# -- inline -----------------------------------------------------------------------------------
def test_a_map_node_runs_each_item_under_its_limit_and_outputs_in_index_order(
    flow: Flow, service: WorkflowService, split: None
) -> None:
    ran: Counter[int] = Counter()
    in_flight = 0
    peak = 0

    @flow.function
    async def charge(amount: int) -> str:
        nonlocal in_flight, peak
        ran[amount] += 1
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01 * (amount % 3))  # items finish out of order
        in_flight -= 1
        return f"charged {amount}"

    @flow.function
    def total(receipts: list[str]) -> int:
        return len(receipts)

    flow.graph(
        "billing",
        nodes={"split": "split_order", "charge": charge, "total": total},
        config={
            "split": {"next": "charge"},
            "charge": {"map": True, "max_concurrency": 2, "next": "total"},
            "total": {"input": lambda ref: ref("charge")},
        },
    )

    run_id = service.start("billing", {"amounts": [5, 4, 3, 2, 1, 6, 7]})

    run = _run(service, run_id)
    assert run.status is RunStatus.COMPLETED, run.error
    assert run.output == {"total": 7}
    assert ran == dict.fromkeys([1, 2, 3, 4, 5, 6, 7], 1)
    assert peak == 2  # the limit, reached
    # Each item is a step keyed <node>/<index>; the node's own step is the batch (a scope).
    history = {h.step_key: h for h in service.get_run_history(run_id)}
    assert sorted(history) == ["charge", *(f"charge/{i}" for i in range(7)), "split", "total"]
    assert history["charge/0"].result == {"output": "charged 5", "branch": None}
    assert history["charge"].kind == "scope"


def test_a_map_node_output_is_the_list_of_item_outputs(
    flow: Flow, service: WorkflowService, split: None
) -> None:
    @flow.function
    def double(n: int) -> int:
        return 2 * n

    flow.graph(
        "doubling",
        nodes={"split": "split_order", "double": double},
        config={"split": {"next": "double"}, "double": {"map": True}},
    )

    run_id = service.start("doubling", {"amounts": [3, 1, 2]})
    run = _run(service, run_id)
    assert run.status is RunStatus.COMPLETED, run.error
    assert run.output == {"double": [6, 2, 4]}

    empty = _run(service, service.start("doubling", {"amounts": []}))
    assert empty.status is RunStatus.COMPLETED, empty.error
    assert empty.output == {"double": []}


def test_a_failed_item_fails_the_node_runs_its_on_error_and_skips_what_follows(
    flow: Flow, service: WorkflowService, clock: TimeSkippingClock, split: None
) -> None:
    compensations: list[Any] = []
    attempts: Counter[int] = Counter()
    ran: list[str] = []

    @flow.function
    def charge(amount: int) -> str:
        attempts[amount] += 1
        if amount < 0:
            raise ValueError(f"cannot charge {amount}")
        if amount == 2 and attempts[amount] == 1:
            raise ConnectionError("flaky")  # the item's retry succeeds
        return f"charged {amount}"

    @flow.function
    def refund(data: dict[str, Any]) -> str:
        compensations.append(data)
        return "refunded"

    @flow.function
    def ship(data: Any) -> None:
        ran.append("ship")

    flow.graph(
        "failing",
        nodes={"split": "split_order", "charge": charge, "refund": refund, "ship": ship},
        config={
            "split": {"next": "charge"},
            "charge": {
                "map": True,
                "next": "ship",
                "retries": 1,
                "retry_delay": "5s",
                "on_error": "refund",
            },
        },
    )

    run_id = service.start("failing", {"amounts": [1, -1, 2, -3]})

    run = _run(service, run_id)
    assert run.status is RunStatus.FAILED
    assert run.error.type == "StepFailed"
    assert run.error.step_key == "charge"
    assert "BatchFailed" in run.error.message
    assert "items 1, 3" in run.error.message
    assert "ValueError: cannot charge -1" in run.error.message
    # Retries apply to each item: every item got up to two attempts.
    assert attempts == {1: 1, -1: 2, 2: 2, -3: 2}
    assert clock.slept
    assert set(clock.slept) == {timedelta(seconds=5)}
    assert ran == []
    assert len(compensations) == 1
    error = compensations[0]["error"]
    assert (error["type"], error["node"]) == ("BatchFailed", "charge")
    assert "2 of 4 items failed (items 1, 3)" in error["message"]
    assert compensations[0]["input"] == [1, -1, 2, -3]
    steps = _steps(service, run_id)
    assert ("refund", 1, StepStatus.SUCCEEDED) in steps
    assert not any(name == "ship" for name, _, _ in steps)
    assert ("charge/1", 2, StepStatus.FAILED) in steps


def test_a_completion_tolerating_failures_lets_the_graph_go_on_with_none_in_their_slots(
    flow: Flow, service: WorkflowService, split: None
) -> None:
    @flow.function
    def charge(amount: int) -> str:
        if amount < 0:
            raise ValueError(f"cannot charge {amount}")
        return f"charged {amount}"

    @flow.function
    def report(receipts: list[str | None]) -> dict[str, Any]:
        return {"receipts": receipts, "missing": receipts.count(None)}

    flow.graph(
        "tolerant",
        nodes={"split": "split_order", "charge": charge, "report": report},
        config={
            "split": {"next": "charge"},
            "charge": {
                "map": True,
                "completion": Completion(tolerated_failures=1),
                "next": "report",
            },
        },
    )

    run_id = service.start("tolerant", {"amounts": [1, -2, 3]})
    run = _run(service, run_id)
    assert run.status is RunStatus.COMPLETED, run.error
    assert run.output == {"report": {"receipts": ["charged 1", None, "charged 3"], "missing": 1}}

    # Past the tolerance, the node fails like any failed node.
    too_many = _run(service, service.start("tolerant", {"amounts": [-1, -2, 3]}))
    assert too_many.status is RunStatus.FAILED
    assert too_many.error.step_key == "charge"
    assert "BatchFailed" in too_many.error.message


def test_a_completion_stopping_early_leaves_none_for_items_never_started(
    flow: Flow, service: WorkflowService, split: None
) -> None:
    ran: list[int] = []

    @flow.function
    def charge(amount: int) -> int:
        ran.append(amount)
        return amount

    flow.graph(
        "early",
        nodes={"split": "split_order", "charge": charge},
        config={
            "split": {"next": "charge"},
            "charge": {
                "map": True,
                "max_concurrency": 1,
                "completion": Completion(min_successful=2),
            },
        },
    )

    run = _run(service, service.start("early", {"amounts": [7, 8, 9, 10]}))
    assert run.status is RunStatus.COMPLETED, run.error
    assert run.output == {"charge": [7, 8, None, None]}
    assert ran == [7, 8]


def test_a_map_node_whose_input_is_not_a_list_fails_clearly(
    flow: Flow, service: WorkflowService
) -> None:
    compensations: list[Any] = []

    @flow.function
    def charge(amount: int) -> int:
        raise AssertionError("never runs")

    @flow.function
    def alert(data: dict[str, Any]) -> None:
        compensations.append(data)

    flow.graph(
        "not_a_list",
        nodes={"charge": charge, "alert": alert},
        config={"charge": {"map": True, "on_error": "alert"}},
    )

    run = _run(service, service.start("not_a_list", {"amounts": [1]}))
    assert run.status is RunStatus.FAILED
    assert run.error.step_key == "charge"
    assert "GraphInputError" in run.error.message
    assert "map node 'charge' needs a list as its input, got dict" in run.error.message
    assert [c["error"]["type"] for c in compensations] == ["GraphInputError"]


@pytest.mark.parametrize(
    ("config", "node", "message"),
    [
        pytest.param(
            {"a": {"max_concurrency": 2}}, "a",
            "graph 'g1', node 'a': 'max_concurrency' is only valid with 'map': True",
            id="max_concurrency without map",
        ),
        pytest.param(
            {"a": {"map": False, "completion": Completion()}}, "a",
            "graph 'g1', node 'a': 'completion' is only valid with 'map': True",
            id="completion without map",
        ),
        pytest.param(
            {"a": {"map": True, "max_concurrency": 0}}, "a",
            "graph 'g1', node 'a': max_concurrency must be a whole number >= 1, got 0",
            id="max_concurrency 0",
        ),
        pytest.param(
            {"a": {"map": True, "max_concurrency": True}}, "a",
            "graph 'g1', node 'a': max_concurrency must be a whole number >= 1, got True",
            id="max_concurrency bool",
        ),
        pytest.param(
            {"a": {"map": True, "completion": {"tolerated_failures": 1}}}, "a",
            "graph 'g1', node 'a': completion must be a lambda_flow.Completion, got "
            "{'tolerated_failures': 1}",
            id="completion not a Completion",
        ),
        pytest.param(
            {"a": {"map": "yes"}}, "a",
            "graph 'g1', node 'a': map must be True or False, got 'yes'", id="map not a bool",
        ),
        pytest.param(
            {"a": {"map": True, "next": {"x": "b"}}}, "a",
            "graph 'g1', node 'a': a map node cannot branch: its next must be a node id or a "
            "list of node ids",
            id="map node with branches",
        ),
        pytest.param(
            {"a": {"on_error": "b"}, "b": {"map": True}}, "b",
            "graph 'g1', node 'b': is the on_error node of 'a', so it cannot be a map node (it "
            "gets one dict: the error and the failed node's input)",
            id="map compensation",
        ),
    ],
)  # fmt: skip
def test_map_definition_errors_name_the_node(
    config: dict[str, NodeConfig], node: str, message: str
) -> None:
    flow = Flow()
    flow.function(name="f")(lambda data=None: data)

    with pytest.raises(GraphDefinitionError) as raised:
        flow.graph("g1", nodes={"a": "f", "b": "f"}, config=config)

    assert str(raised.value) == message
    assert raised.value.node == node
    assert "g1" not in flow.workflows
    assert "graph:g1:a" not in flow.functions


def test_mermaid_draws_a_map_node_distinctly() -> None:
    flow = Flow()
    flow.function(name="f")(lambda data=None: data)
    graph = flow.graph(
        "drawn", nodes={"a": "f", "b": "f"}, config={"a": {"next": "b"}, "b": {"map": True}}
    )
    assert graph.mermaid() == "\n".join(
        ["flowchart TD", '    a["a: f"]', '    b[["b: f (map)"]]', "    a --> b"]
    )
    assert graph.nodes["b"].map
    assert not graph.nodes["a"].map


# -- replay -----------------------------------------------------------------------------------
def test_a_graph_with_a_map_node_replays_from_its_history(
    flow: Flow, service: WorkflowService, split: None
) -> None:
    @flow.function
    async def charge(amount: int) -> str:
        await asyncio.sleep(0.005 * (amount % 2))
        if amount < 0:
            raise ValueError("negative")
        return f"charged {amount}"

    @flow.function
    def audit(data: Any) -> str:
        return "audited"

    flow.graph(
        "replayed",
        nodes={"split": "split_order", "charge": charge, "audit": audit, "done": audit},
        config={
            "split": {"next": ["charge", "audit"]},
            "charge": {"map": True, "max_concurrency": 2, "next": "done"},
        },
    )

    finished = service.start("replayed", {"amounts": [1, 2, 3, 4, 5]})
    failed = service.start("replayed", {"amounts": [1, -2, 3]})
    assert _run(service, finished).status is RunStatus.COMPLETED
    assert _run(service, failed).status is RunStatus.FAILED

    assert replay_history(flow, service.export_run(finished)) is RunStatus.COMPLETED
    assert replay_history(flow, service.export_run(failed)) is RunStatus.FAILED


# -- remote -----------------------------------------------------------------------------------
@pytest.fixture
def remote(
    flow: Flow, store: PostgresStore, clock: TimeSkippingClock
) -> tuple[WorkflowService, Dispatcher, LocalQueue]:
    queue = LocalQueue(clock)
    service = WorkflowService(flow, store=store, queue=queue, clock=clock)
    return service, Dispatcher(service), queue


def test_a_map_node_in_remote_mode_runs_each_item_once_and_the_graph_completes(
    flow: Flow,
    store: PostgresStore,
    remote: tuple[WorkflowService, Dispatcher, LocalQueue],
    split: None,
) -> None:
    service, dispatcher, queue = remote
    ran: Counter[int] = Counter()

    @flow.function
    def charge(amount: int) -> str:
        ran[amount] += 1
        if amount == 3 and ran[amount] == 1:
            raise ConnectionError("flaky")  # the node's retries apply to the item
        return f"charged {amount}"

    @flow.function
    def total(receipts: list[str]) -> str:
        return " / ".join(receipts)

    flow.graph(
        "remote_billing",
        nodes={"split": "split_order", "charge": charge, "total": total},
        config={
            "split": {"next": "charge"},
            "charge": {
                "map": True,
                "max_concurrency": 2,
                "retries": 2,
                "retry_delay": "1s",
                "next": "total",
            },
        },
    )

    run_id = service.start("remote_billing", {"amounts": [1, 2, 3, 4, 5]})
    drain(queue, dispatcher)

    run = _run(service, run_id)
    assert run.status is RunStatus.COMPLETED, run.error
    assert run.output == {"total": "charged 1 / charged 2 / charged 3 / charged 4 / charged 5"}
    assert ran == {1: 1, 2: 1, 3: 2, 4: 1, 5: 1}
    steps = _steps(service, run_id)
    assert [s for s in steps if s[0].startswith("charge/")] == [
        ("charge/0", 1, StepStatus.SUCCEEDED),
        ("charge/1", 1, StepStatus.SUCCEEDED),
        ("charge/2", 1, StepStatus.FAILED),
        ("charge/2", 2, StepStatus.SUCCEEDED),
        ("charge/3", 1, StepStatus.SUCCEEDED),
        ("charge/4", 1, StepStatus.SUCCEEDED),
    ]
    # The map was chained (workers started its items), and its history replays as it ran.
    progress = store.get_batch(run_id, "charge")
    assert progress is not None
    assert progress.done
    assert replay_history(flow, service.export_run(run_id)) is RunStatus.COMPLETED

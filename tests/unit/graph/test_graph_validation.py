"""A graph is checked when it is defined: every mistake is one clear error naming the node."""

from __future__ import annotations

from typing import Any

import pytest

from lambda_flow import Flow, GraphDefinitionError, LambdaFlowError, branch, ref
from lambda_flow.graph import Graph, NodeConfig


def _flow() -> Flow:
    flow = Flow()
    for name in ("f", "g", "h"):
        flow.function(name=name)(lambda data=None: data)
    return flow


def _define(nodes: dict[str, Any], config: dict[str, NodeConfig] | None = None) -> Graph:
    return _flow().graph("g1", nodes=nodes, config=config or {})


def _unregistered(data: Any) -> Any:
    return data


@pytest.mark.parametrize(
    ("nodes", "config", "node", "message"),
    [
        pytest.param(
            {"a": "f", "b": "g"}, {"a": {"next": "c"}}, "a",
            "graph 'g1', node 'a': next names unknown node 'c'", id="unknown next",
        ),
        pytest.param(
            {"a": "f", "b": "g"}, {"a": {"next": ["b", "zz"]}}, "a",
            "graph 'g1', node 'a': next names unknown node 'zz'", id="unknown next in a list",
        ),
        pytest.param(
            {"a": "f", "b": "g"}, {"a": {"next": {"yes": "b", "no": "nope"}}}, "a",
            "graph 'g1', node 'a': next['no'] names unknown node 'nope'", id="unknown branch",
        ),
        pytest.param(
            {"a": "f", "b": "g"}, {"a": {"next": "b"}, "b": {"input": lambda r: r("x", "y")}},
            "b", "graph 'g1', node 'b': its input has ref('x', 'y'), which names an unknown node",
            id="unknown ref",
        ),
        pytest.param(
            {"a": "f"}, {"a": {"on_error": "undo"}}, "a",
            "graph 'g1', node 'a': on_error names unknown node 'undo'", id="unknown on_error",
        ),
        pytest.param(
            {"a": "f", "b": "missing"}, {}, "b",
            "graph 'g1', node 'b': function 'missing' is not registered (register it with "
            "@flow.function before defining the graph)",
            id="unregistered function name",
        ),
        pytest.param(
            {"a": _unregistered}, {}, "a",
            "graph 'g1', node 'a': function '_unregistered' is not registered (register it "
            "with @flow.function before defining the graph)",
            id="unregistered function",
        ),
        pytest.param(
            {"start": "f", "a": "g", "b": "h"},
            {"start": {"next": "a"}, "a": {"next": "b"}, "b": {"next": "a"}}, "a",
            "graph 'g1', node 'a': is in a cycle: a -> b -> a (graphs must be acyclic)",
            id="cycle",
        ),
        pytest.param(
            {"start": "f", "a": "g"}, {"start": {"next": "a"}, "a": {"next": "a"}}, "a",
            "graph 'g1', node 'a': is in a cycle: a -> a (graphs must be acyclic)",
            id="self loop",
        ),
        pytest.param(
            {"a": "f", "b": "g", "c": "h"},
            {"a": {"next": "b"}, "b": {"next": "c"}, "c": {"next": "a"}}, None,
            "graph 'g1': no entry node: every node has an incoming edge (cycle a -> b -> c -> a)",
            id="no entry node",
        ),
        pytest.param(
            {"a": "f", "b": "g", "c": "h"},
            {"a": {"next": ["b", "c"]}, "c": {"input": lambda r: r("b")}}, "c",
            "graph 'g1', node 'c': its input has ref('b'), but 'b' does not always finish "
            "before 'c' (it is not upstream of it)",
            id="ref to a node not upstream",
        ),
        pytest.param(
            {"a": "f"}, {"b": {"next": "a"}}, "b",
            "graph 'g1', node 'b': config names unknown node 'b'", id="config for unknown node",
        ),
        pytest.param(
            {"a": "f"}, {"a": {"nxt": "a"}}, "a",
            "graph 'g1', node 'a': unknown option 'nxt'; options are next, input, retries, "
            "retry_delay, on_error, map, max_concurrency, completion",
            id="unknown option",
        ),
        pytest.param(
            {"trigger": "f"}, {}, "trigger",
            "graph 'g1', node 'trigger': 'trigger' is reserved for the run's input in ref()",
            id="reserved id",
        ),
        pytest.param(
            {"a b": "f"}, {}, None,
            "graph 'g1': node id 'a b' must start with a letter or '_' and hold only letters, "
            "digits, '_' and '-'",
            id="bad id",
        ),
        pytest.param(
            {"a": "f"}, {"a": {"retries": -1}}, "a",
            "graph 'g1', node 'a': retries must be a whole number >= 0, got -1", id="retries",
        ),
        pytest.param(
            {"a": "f", "undo": "g", "b": "h"},
            {"a": {"on_error": "undo"}, "undo": {"next": "b"}}, "undo",
            "graph 'g1', node 'undo': is the on_error node of 'a', so it cannot have 'next' (it "
            "gets the error and the failed node's input and ends that path)",
            id="compensation with next",
        ),
        pytest.param(
            {"a": "f", "undo": "g"}, {"a": {"next": "undo", "on_error": "undo"}}, "undo",
            "graph 'g1', node 'undo': is the on_error node of 'a' and also follows 'a'; a node "
            "is either part of the flow or a compensation",
            id="compensation in the flow",
        ),
        pytest.param(
            {"a": "f"}, {"a": {"on_error": "a"}}, "a",
            "graph 'g1', node 'a': on_error names the node itself", id="on_error itself",
        ),
    ],
)  # fmt: skip
def test_definition_errors_name_the_node(
    nodes: dict[str, Any], config: dict[str, NodeConfig], node: str | None, message: str
) -> None:
    with pytest.raises(GraphDefinitionError) as raised:
        _define(nodes, config)

    assert str(raised.value) == message
    assert raised.value.graph == "g1"
    assert raised.value.node == node


def test_an_input_that_computes_with_ref_markers_is_refused() -> None:
    with pytest.raises(GraphDefinitionError, match="node 'a': its input callable failed") as raised:
        _define({"a": "f"}, {"a": {"input": lambda r: {"greeting": f"hi {r('trigger', 'name')}"}}})

    assert "cannot be formatted into a string" in str(raised.value)


def test_an_input_that_is_not_json_is_refused() -> None:
    with pytest.raises(GraphDefinitionError, match="node 'a': its input is not JSON"):
        _define({"a": "f"}, {"a": {"input": {"when": object()}}})


def test_a_bad_retry_delay_names_the_node() -> None:
    with pytest.raises(GraphDefinitionError, match=r"node 'a': retry_delay: .*soon"):
        _define({"a": "f"}, {"a": {"retry_delay": "soon"}})


def test_a_failed_definition_registers_nothing() -> None:
    flow = _flow()
    before = set(flow.functions)

    with pytest.raises(GraphDefinitionError):
        flow.graph("bad", nodes={"a": "f", "b": "g"}, config={"a": {"next": "x"}})

    assert set(flow.functions) == before
    assert "bad" not in flow.workflows
    assert "bad" not in flow.graphs


def test_a_graph_name_already_taken_is_refused() -> None:
    flow = _flow()
    flow.graph("g1", nodes={"a": "f"})

    with pytest.raises(GraphDefinitionError, match="a workflow with this name is already"):
        flow.graph("g1", nodes={"a": "f"})


def test_a_valid_graph_registers_one_function_per_node_and_a_workflow() -> None:
    flow = _flow()

    graph = flow.graph(
        "shop",
        nodes={"a": "f", "b": "g", "c": "h", "undo": "f"},
        config={
            "a": {"next": {"x": ["b", "c"], "y": "c"}, "on_error": "undo"},
            "c": {"input": lambda r: [r("a", "items.0"), r("trigger")], "retries": 2},
        },
        description="A shop",
    )

    assert flow.graphs["shop"] is graph
    assert flow.get_workflow("shop").description == "A shop"
    assert {n for n in flow.functions if n.startswith("graph:")} == {
        "graph:shop:a", "graph:shop:b", "graph:shop:c", "graph:shop:undo",
    }  # fmt: skip
    assert graph.entries == ("a",)
    assert graph.nodes["a"].targets == ("b", "c")
    assert graph.nodes["c"].predecessors == ("a",)
    assert graph.nodes["c"].refs == (ref("a", "items.0"), ref("trigger"))
    assert graph.nodes["undo"].compensates == ("a",)
    assert graph.nodes["a"].chosen("x") == ("b", "c")
    assert graph.nodes["a"].chosen("z") == ()
    assert graph.nodes["a"].chosen(None) == ()


def test_branch_outside_a_node_and_bad_refs_are_refused() -> None:
    with pytest.raises(LambdaFlowError, match="inside the function of a graph node"):
        branch("yes")
    with pytest.raises(TypeError):
        ref("")
    with pytest.raises(ValueError, match="empty segment"):
        ref("a", "b..c")

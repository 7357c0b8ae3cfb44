"""Graph workflows drawn: the Mermaid text and ``lambda-flow graph NAME [--mermaid]``."""

from __future__ import annotations

from typing import Any

import pytest

from lambda_flow import Flow, WorkflowContext, branch
from lambda_flow.cli import main

# -- an app for the CLI and the Mermaid test -------------------------------------------------
app = Flow()


@app.function
def reserve_stock(data: dict[str, Any]) -> dict[str, Any]:
    return {"order_id": data["order_id"], "items": data["items"]}


@app.function
def check_fraud(data: dict[str, Any]) -> str:
    branch("ok" if data["amount"] < 1000 else "suspicious")
    return "checked"


for _name in ("charge_card", "refund", "ship", "hold", "notify"):
    app.function(name=_name)(lambda data=None: data)

app.graph(
    "checkout",
    nodes={
        "reserve": reserve_stock,
        "fraud": "check_fraud",
        "charge": "charge_card",
        "refund": "refund",
        "ship": "ship",
        "hold": "hold",
        "notify": "notify",
    },
    config={
        "reserve": {"next": "fraud"},
        "fraud": {"next": {"ok": "charge", "suspicious": "hold"}},
        "charge": {"next": ["ship", "notify"], "on_error": "refund", "retries": 2},
        "ship": {"input": lambda ref: {"order": ref("reserve", "order_id")}},
    },
)


@app.workflow
async def plain(wf: WorkflowContext) -> None:
    """Not a graph."""


MERMAID = """\
flowchart TD
    reserve["reserve: reserve_stock"]
    fraud["fraud: check_fraud"]
    charge["charge: charge_card"]
    refund["refund"]
    ship["ship"]
    hold["hold"]
    notify["notify"]
    reserve --> fraud
    fraud -->|ok| charge
    fraud -->|suspicious| hold
    charge --> ship
    charge --> notify
    charge -.->|on_error| refund"""


def test_mermaid_output() -> None:
    assert app.graphs["checkout"].mermaid() == MERMAID


def test_cli_prints_a_graph_as_mermaid(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--app", f"{__name__}:app", "graph", "checkout", "--mermaid"])

    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    assert out == MERMAID + "\n"


def test_cli_lists_a_graphs_nodes(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["graph", "checkout", "--app", f"{__name__}:app"])

    out, _ = capsys.readouterr()
    assert code == 0
    assert out.splitlines() == [
        "NODE     FUNCTION       NEXT                       ON_ERROR",
        "reserve  reserve_stock  fraud",
        "fraud    check_fraud    ok=charge suspicious=hold",
        "charge   charge_card    ship, notify               refund",
        "refund   refund",
        "ship     ship",
        "hold     hold",
        "notify   notify",
    ]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("nope", "error: unknown graph 'nope' (graphs in the app: checkout)\n"),
        ("plain", "error: workflow 'plain' is not a graph workflow\n"),
    ],
)
def test_cli_unknown_graph_is_one_line_exit_2(
    name: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--app", f"{__name__}:app", "graph", name, "--mermaid"])

    out, err = capsys.readouterr()
    assert (code, out, err) == (2, "", message)


def test_mermaid_ids_avoid_reserved_words_and_dashes() -> None:
    flow = Flow()
    flow.function(name="f")(lambda data=None: data)
    graph = flow.graph(
        "awkward",
        nodes={"end": "f", "end_": "f", "a-b": "f", "a_b": "f"},
        config={"end": {"next": ["end_", "a-b"]}, "a-b": {"next": {"say \"hi\"|": "a_b"}}},
    )

    assert graph.mermaid() == "\n".join(
        [
            "flowchart TD",
            '    end__["end: f"]',
            '    end_["end_: f"]',
            '    a_b_["a-b: f"]',
            '    a_b["a_b: f"]',
            "    end__ --> end_",
            "    end__ --> a_b_",
            '    a_b_ -->|"say #quot;hi#quot;#124;"| a_b',
        ]
    )

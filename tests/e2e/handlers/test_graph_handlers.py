"""A graph workflow end to end through the real Lambda handlers, with SQS in moto.

The graph is registered here, on the application the handlers load (``tests.e2e.app:flow``),
under names of its own.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from lambda_flow import RunStatus, StepStatus, branch, current_step
from tests.e2e import app, aws
from tests.e2e.aws import Harness

moto_server = aws.moto_server
harness = aws.harness

pytestmark = pytest.mark.filterwarnings(
    # A pass that records no step attempt adds no metric; Powertools warns about the empty flush.
    "ignore:No application metrics to publish:UserWarning"
)

calls: Counter[str] = Counter()


@app.flow.function(name="graph_e2e_node")
def _node(data: Any) -> Any:
    step = current_step()
    assert step is not None
    calls[step.step_name] += 1
    if step.step_name == "sort" and step.attempt == 1:
        raise ConnectionError("flaky sorter")
    if step.step_name == "sort":
        branch("big" if len(data["items"]) > 2 else "small")
    return {"node": step.step_name, "items": data["items"]} if step.step_name != "report" else data


app.flow.graph(
    "graph_e2e",
    nodes=dict.fromkeys(("sort", "left", "right", "bulk", "report"), "graph_e2e_node"),
    config={
        "sort": {"next": {"big": ["left", "right", "bulk"], "small": "left"}, "retries": 1},
        "left": {"next": "report"},
        "right": {"next": "report"},
        "bulk": {"next": "report"},
        "report": {
            "input": lambda ref: {
                "left": ref("left", "node"),
                "right": ref("right", "node"),
                "bulk": ref("bulk", "node"),
                "count": ref("trigger", "count"),
            }
        },
    },
)


@pytest.mark.parametrize(
    ("items", "output", "ran"),
    [
        (
            [3, 1, 2],
            {"left": "left", "right": "right", "bulk": "bulk", "count": 3},
            {"sort": 2, "left": 1, "right": 1, "bulk": 1, "report": 1},
        ),
        (
            [1],
            {"left": "left", "right": None, "bulk": None, "count": 1},
            {"sort": 2, "left": 1, "report": 1},
        ),
    ],
)
def test_a_graph_runs_to_completion_through_the_handlers(
    harness: Harness, items: list[int], output: dict[str, Any], ran: dict[str, int]
) -> None:
    calls.clear()

    run_id = harness.service.start("graph_e2e", {"items": items, "count": len(items)})
    invocations = harness.pump(times=2)  # every batch delivered twice: changes nothing

    run = harness.run(run_id)
    assert run.status is RunStatus.COMPLETED, run.error
    assert run.output == {"report": output}
    assert calls == ran
    history = [(a.step_name, a.attempt, a.status) for a in harness.service.get_run_history(run_id)]
    assert history[:2] == [("sort", 1, StepStatus.FAILED), ("sort", 2, StepStatus.SUCCEEDED)]
    assert sorted(history[2:]) == sorted(
        (name, 1, StepStatus.SUCCEEDED) for name in ran if name != "sort"
    )
    if len(ran) == 5:  # the fan-out's three jobs left in one SendMessageBatch, from one pass
        assert [(i.sqs_sent, i.sqs_calls) for i in invocations].count((3, 1)) == 1

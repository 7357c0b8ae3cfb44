"""The HTTP side of run deadlines and cancellation with cleanup (issue 12, items 4 and 6):
``?run_timeout=`` (or a top-level ``run_timeout`` body key) on start and run,
``cleanup_timeout`` in the cancel body, bad values 422 naming the option and writing nothing."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from lambda_flow import Flow, WorkflowContext

from .test_api import Rows, start
from .test_api import workflows as workflows  # noqa: PLC0414 - re-used fixture


def test_run_timeout_fails_the_run_at_its_deadline(api_client: Any, workflows: Any) -> None:
    answer = api_client.post(
        "/workflows/nap/start", json_body={"for": "2h"}, query={"run_timeout": "1h"}
    )

    assert answer.status == 202
    run = api_client.get(f"/runs/{answer.body['run_id']}").body  # inline: driven to its end
    assert run["status"] == "failed"
    assert run["error"]["type"] == "RunDeadlineExceeded"


def test_a_negative_run_timeout_is_422_and_writes_nothing(
    api_client: Any, workflows: Any, api_rows: Rows
) -> None:
    before = api_rows()

    answer = api_client.post(
        "/workflows/nap/start", json_body={"for": "2h"}, query={"run_timeout": "-1h"}
    )

    assert answer.status == 422
    assert answer.body["error"]["type"] == "InvalidOption"
    assert "run_timeout" in answer.body["error"]["message"]
    assert api_rows() == before


def test_cancel_with_a_cleanup_timeout(api_client: Any, workflows: Any) -> None:
    run_id = start(api_client, "approval")

    bad = api_client.post(f"/runs/{run_id}/cancel", json_body={"cleanup_timeout": "-5s"})
    assert bad.status == 422
    assert bad.body["error"]["type"] == "InvalidOption"
    assert api_client.get(f"/runs/{run_id}").body["status"] == "suspended"

    answer = api_client.post(
        f"/runs/{run_id}/cancel", json_body={"reason": "late", "cleanup_timeout": "10min"}
    )
    assert answer.status == 200
    assert answer.body["status"] == "cancelled"
    assert answer.body["error"]["message"] == "late"


class Nap(BaseModel):
    """An input model without a ``run_timeout`` field (extra keys refused)."""

    model_config = ConfigDict(extra="forbid")
    length: str


class Job(BaseModel):
    """An input model with a ``run_timeout`` field of its own."""

    run_timeout: str


# -- run_timeout in the start body (issue 12, item 4: "HTTP start body field run_timeout") ----
def test_run_timeout_in_the_body_of_an_untyped_input_is_the_option(
    api_client: Any, workflows: Any
) -> None:
    answer = api_client.post("/workflows/nap/start", json_body={"for": "2h", "run_timeout": "1h"})
    waited = api_client.post("/workflows/nap/run", json_body={"for": "2h", "run_timeout": "1h"})

    assert (answer.status, waited.status) == (202, 202)
    run = api_client.get(f"/runs/{answer.body['run_id']}").body  # inline: driven to its end
    assert run["status"] == "failed"
    assert run["error"]["type"] == "RunDeadlineExceeded"
    assert run["input"] == {"for": "2h"}  # taken out of the input
    assert api_client.get(f"/runs/{waited.body['run_id']}").body["input"] == {"for": "2h"}


def test_run_timeout_in_the_body_of_a_model_without_it_is_the_option(
    api_client: Any, flow: Flow
) -> None:
    @flow.workflow
    async def strict_nap(wf: WorkflowContext, data: Nap) -> str:
        await wf.sleep("nap", data.length)
        return "rested"

    answer = api_client.post(
        "/workflows/strict_nap/start", json_body={"length": "2h", "run_timeout": "1h"}
    )

    assert answer.status == 202
    run = api_client.get(f"/runs/{answer.body['run_id']}").body
    assert run["error"]["type"] == "RunDeadlineExceeded"
    assert run["input"] == {"length": "2h"}


def test_a_declared_run_timeout_field_is_input_and_only_the_query_sets_the_option(
    api_client: Any, flow: Flow
) -> None:
    @flow.workflow
    async def job(wf: WorkflowContext, data: Job) -> str:
        await wf.sleep("work", "2h")
        return data.run_timeout

    kept = api_client.post("/workflows/job/start", json_body={"run_timeout": "1h"})
    run = api_client.get(f"/runs/{kept.body['run_id']}").body
    assert run["output"] == "1h"  # input, not the option: the run outlived 1h

    bounded = api_client.post(
        "/workflows/job/start", json_body={"run_timeout": "5h"}, query={"run_timeout": "1h"}
    )
    run = api_client.get(f"/runs/{bounded.body['run_id']}").body
    assert run["error"]["type"] == "RunDeadlineExceeded"
    assert run["input"] == {"run_timeout": "5h"}


def test_run_timeout_in_the_body_and_the_query_is_422_and_writes_nothing(
    api_client: Any, workflows: Any, api_rows: Rows
) -> None:
    before = api_rows()

    both = api_client.post(
        "/workflows/nap/start",
        json_body={"for": "2h", "run_timeout": "1h"},
        query={"run_timeout": "3h"},
    )
    not_text = api_client.post("/workflows/nap/start", json_body={"run_timeout": 60})

    assert both.status == 422
    assert "run_timeout" in both.body["error"]["message"]
    assert "query" in both.body["error"]["message"]
    assert not_text.status == 422
    assert api_rows() == before


def test_the_start_routes_document_the_body_run_timeout(api_client: Any, workflows: Any) -> None:
    document = api_client.get("/openapi.json").body
    for path in ("/workflows/nap/start", "/workflows/nap/run"):
        assert "top-level `run_timeout`" in document["paths"][path]["post"]["description"]

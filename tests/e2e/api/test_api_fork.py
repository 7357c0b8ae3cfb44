"""``POST /runs/{run_id}/fork`` through the real API handler."""

from __future__ import annotations

from collections import Counter

import pytest

from lambda_flow import Flow, WorkflowContext
from tests.e2e.api.test_api import error_of, start
from tests.e2e.conftest import ApiClient


@pytest.fixture
def counted(flow: Flow) -> Counter[str]:
    calls: Counter[str] = Counter()

    @flow.workflow
    async def order(wf: WorkflowContext, amount: int) -> str:
        charged = await wf.do("Charge", lambda: calls.update(["charge"]) or amount * 2)
        return str(await wf.do("Ship", lambda: calls.update(["ship"]) or f"shipped {charged}"))

    return calls


def test_fork_answers_202_with_the_new_run(api_client: ApiClient, counted: Counter[str]) -> None:
    source = start(api_client, "order", 4)

    response = api_client.post(f"/runs/{source}/fork", json_body={"from_step": "Ship"})

    assert response.status == 202, response.body
    forked = response.body["run_id"]
    run = api_client.get(f"/runs/{forked}").body
    assert run["status"] == "completed"
    assert run["output"] == "shipped 8"
    assert run["forked_from"] == {"run_id": source, "step_key": "Ship"}
    assert counted == {"charge": 1, "ship": 2}
    with_input = api_client.post(
        f"/runs/{source}/fork", json_body={"from_step": "Charge", "input": 5}
    )
    assert api_client.get(f"/runs/{with_input.body['run_id']}").body["output"] == "shipped 10"


def test_fork_errors(api_client: ApiClient, counted: Counter[str]) -> None:
    source = start(api_client, "order", 1)
    unknown = "00000000-0000-0000-0000-000000000000"

    error_of(api_client.post(f"/runs/{unknown}/fork", json_body={"from_step": "Ship"}), 404,
             "RunNotFound")  # fmt: skip
    error = error_of(
        api_client.post(f"/runs/{source}/fork", json_body={"from_step": "Nope"}),
        422, "InvalidOption",
    )  # fmt: skip
    assert "'Nope'" in error["message"]
    error_of(api_client.post(f"/runs/{source}/fork", json_body={}), 422, "InvalidInput")
    error_of(
        api_client.post(f"/runs/{source}/fork", json_body={"from_step": "Ship", "input": "x"}),
        422, "InvalidInput",
    )  # fmt: skip
    assert len(api_client.get("/runs").body["runs"]) == 1


def test_the_fork_route_is_in_the_openapi_document(api_client: ApiClient) -> None:
    document = api_client.get("/openapi.json").body

    operation = document["paths"]["/runs/{run_id}/fork"]["post"]
    assert {"202", "404", "422"} <= set(operation["responses"])
    assert "from_step" in str(operation["requestBody"])

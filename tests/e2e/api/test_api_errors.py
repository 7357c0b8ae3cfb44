"""The HTTP API's answers to what goes wrong outside a route's own logic (issue 9, defects 4
and 8): the database down is a 503 with ``Retry-After``, a duration too long for ``timedelta``
a 422 naming the field, a known path asked with another method a 405; never a 500."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pydantic import BaseModel, field_validator

from lambda_flow import Flow, PostgresStore, WorkflowContext, WorkflowService, parse_duration
from lambda_flow.aws.api import build_api
from lambda_flow.testing import TimeSkippingClock
from tests.conftest import PrivatePostgres
from tests.e2e.api.test_api import error_of
from tests.e2e.conftest import ApiClient, FakeLambdaContext

TOO_LONG = ["99999999999999d", "9" * 400, "99999999999999999999999999999ms"]


class Nap(BaseModel):
    delay: str = "1h"

    @field_validator("delay")
    @classmethod
    def _a_duration(cls, value: str) -> str:
        parse_duration(value)  # InvalidDuration is a ValueError: pydantic reports it
        return value


def nap_flow() -> Flow:
    flow = Flow()

    @flow.workflow
    async def nap(wf: WorkflowContext, data: Nap) -> str:
        await wf.sleep("nap", data.delay)
        return "rested"

    @flow.workflow
    async def loose_nap(wf: WorkflowContext, data: dict[str, Any]) -> str:
        await wf.sleep("nap", data["delay"])  # not validated at the edge
        return "rested"

    return flow


@pytest.fixture
def client(make_service: Callable[..., WorkflowService], lambda_context: Any) -> ApiClient:
    flow = nap_flow()
    service = make_service(flow=flow)
    return ApiClient(build_api(service, flow).resolve, lambda_context)


# -- the database down: 503 with Retry-After -----------------------------------------------------
@pytest.fixture
def outage_client(private_database_url: str) -> Iterator[ApiClient]:
    """A client of the API over a store on a private Postgres, which the test may stop."""
    flow = nap_flow()
    store = PostgresStore(
        private_database_url, schema=f"t_{uuid.uuid4().hex[:12]}", pool_timeout="200ms"
    )
    service = WorkflowService(flow, store=store, clock=TimeSkippingClock())
    yield ApiClient(build_api(service, flow).resolve, FakeLambdaContext())
    store.close()


def test_the_database_down_is_503_with_retry_after_never_500(
    private_postgres: PrivatePostgres, outage_client: ApiClient
) -> None:
    started = outage_client.post("/workflows/nap/start", json_body={"delay": "1h"})
    assert started.status == 202, started.body
    run_id = started.body["run_id"]

    private_postgres.stop()
    answers = [
        outage_client.get(f"/runs/{run_id}"),
        outage_client.get(f"/runs/{run_id}/history"),
        outage_client.get("/runs"),
        outage_client.post("/workflows/nap/start", json_body={"delay": "1h"}),
        outage_client.post("/workflows/nap/run", json_body={"delay": "1h"}),
        outage_client.post(f"/runs/{run_id}/cancel", json_body={"reason": "down"}),
        outage_client.post(f"/runs/{run_id}/resume"),
    ]
    for answer in answers:
        error = error_of(answer, 503, "StoreUnavailable")
        assert answer.headers["Retry-After"] == "5"
        assert answer.headers["Content-Type"] == "application/json"
        assert "socket" not in error["message"]  # the database's whereabouts stay private

    private_postgres.restart()
    deadline = time.monotonic() + 20  # the pool reconnects with back-off
    again = outage_client.get(f"/runs/{run_id}")
    while again.status == 503 and time.monotonic() < deadline:
        again = outage_client.get(f"/runs/{run_id}")
    assert again.status == 200, again.body
    assert again.body["id"] == run_id


def test_503_is_in_the_openapi_document(client: ApiClient) -> None:
    document = client.get("/openapi.json").body
    for path, operations in document["paths"].items():
        for operation in operations.values():
            if path != "/openapi.json":
                assert "503" in operation["responses"], path


# -- durations too long for timedelta: 422 naming the field --------------------------------------
@pytest.mark.parametrize("value", TOO_LONG)
def test_a_duration_in_the_input_too_long_for_timedelta_is_422_naming_the_field(
    client: ApiClient, api_rows: Callable[[], tuple[int, int, int]], value: str
) -> None:
    for route in ("start", "run"):
        answer = client.post(f"/workflows/nap/{route}", json_body={"delay": value})
        error = error_of(answer, 422, "InvalidInput")
        assert [d["loc"] for d in error["details"]] == [["delay"]]
        assert "longer than the maximum" in error["details"][0]["msg"]
    assert api_rows() == (0, 0, 0)


@pytest.mark.parametrize("value", TOO_LONG)
def test_a_timeout_too_long_for_timedelta_is_422_naming_the_parameter(
    client: ApiClient, api_rows: Callable[[], tuple[int, int, int]], value: str
) -> None:
    answer = client.post("/workflows/nap/run", json_body={}, query={"timeout": value})
    error = error_of(answer, 422, "InvalidRequest")
    assert [d["loc"] for d in error["details"]] == [["query", "timeout"]]
    assert api_rows() == (0, 0, 0)


def test_a_duration_too_long_inside_the_workflow_fails_the_run_not_the_request(
    client: ApiClient,
) -> None:
    answer = client.post("/workflows/loose_nap/run", json_body={"delay": "99999999999999d"})
    assert answer.status == 200, answer.body
    assert answer.body["status"] == "failed"
    assert "longer than the maximum" in answer.body["error"]["message"]


# -- a known path with another method: 405 with Allow ---------------------------------------------
@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", "/runs/00000000-0000-0000-0000-000000000000", "GET"),
        ("PUT", "/runs", "GET"),
        ("GET", "/workflows/nap/start", "POST"),
        ("PATCH", "/runs/00000000-0000-0000-0000-000000000000/cancel", "POST"),
        ("POST", "/openapi.json", "GET"),
    ],
)
def test_a_known_path_with_another_method_is_405_naming_the_allowed_ones(
    client: ApiClient, method: str, path: str, allow: str
) -> None:
    answer = client.request(method, path)
    error_of(answer, 405, "MethodNotAllowed")
    assert answer.headers["Allow"] == allow


def test_an_unknown_path_stays_404(client: ApiClient) -> None:
    error_of(client.request("DELETE", "/nowhere"), 404, "NotFound")

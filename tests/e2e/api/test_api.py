"""The HTTP API end to end: payload-v2 events through the resolver and the Lambda handler."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel, Field

from lambda_flow import (
    AccessRequest,
    ConfigurationError,
    Flow,
    NonRetryableError,
    PostgresStore,
    WorkflowContext,
    WorkflowService,
)
from lambda_flow.aws.api import build_api, caller_from_event
from lambda_flow.core import MAX_INPUT_BYTES
from lambda_flow.handlers import api as api_handler
from lambda_flow.testing import TimeSkippingClock
from lambda_flow.transport.base import StepJob
from tests import ROOT
from tests.e2e.conftest import (
    ANONYMOUS,
    ApiClient,
    FakeLambdaContext,
    iam_authorizer,
    jwt_authorizer,
    lambda_authorizer,
)
from tests.events import EVENTS_DIR, load_event

Rows = Callable[[], tuple[int, int, int]]
BOB = jwt_authorizer("bob")


class Greeting(BaseModel):
    name: str = Field(min_length=1, max_length=40)
    times: int = Field(default=1, ge=1, le=3)


class Order(BaseModel):
    item: str
    amount: int = Field(ge=1)


@pytest.fixture
def workflows(flow: Flow) -> list[AccessRequest]:
    """Registers the test workflows; returns what the ``guarded`` workflow's hook was asked."""
    asked: list[AccessRequest] = []

    @flow.workflow
    async def greet(wf: WorkflowContext, data: Greeting) -> str:
        return str(await wf.do("say hello", lambda: " ".join([f"hello {data.name}"] * data.times)))

    @flow.workflow
    async def nap(wf: WorkflowContext, data: dict[str, Any]) -> str:
        await wf.sleep("nap", data.get("for", "1h"))
        return "rested"

    @flow.workflow
    async def approval(wf: WorkflowContext) -> str:
        await wf.suspend("needs approval")
        return "approved"

    @flow.workflow
    async def explode(wf: WorkflowContext) -> str:
        def fail() -> str:
            raise NonRetryableError("boom")

        return str(await wf.do("fail", fail))

    @flow.workflow
    async def give_up(wf: WorkflowContext) -> str:
        await wf.cancel("nothing to do")
        return "unreachable"

    def only_alice(request: AccessRequest) -> bool:
        asked.append(request)
        if request.caller.principal != "alice":
            return False
        return request.action != "start" or request.input.amount < 100

    @flow.workflow(authorize=only_alice)
    async def guarded(wf: WorkflowContext, data: Order) -> str:
        await wf.suspend("awaiting payment")
        return f"paid {data.amount}"

    return asked


def start(client: ApiClient, workflow: str, data: Any = None, **kwargs: Any) -> str:
    if data is not None:
        kwargs["json_body"] = data
    response = client.post(f"/workflows/{workflow}/start", **kwargs)
    assert response.status == 202, response.body
    return str(response.body["run_id"])


def run_ids(response: Any) -> list[str]:
    assert response.status == 200, response.body
    return [r["id"] for r in response.body["runs"]]


def error_of(response: Any, status: int, type: str) -> dict[str, Any]:
    assert response.status == status, response.body
    assert set(response.body) == {"error"}
    error = response.body["error"]
    assert error["type"] == type
    assert error["message"]
    return dict(error)


# -- starting and running ----------------------------------------------------------------------
def test_start_answers_202_and_the_run_is_stored(
    api_client: ApiClient, workflows: Any, api_rows: Rows
) -> None:
    response = api_client.post("/workflows/greet/start", json_body={"name": "Ada"})

    assert response.status == 202
    assert set(response.body) == {"run_id"}
    run = api_client.get(f"/runs/{response.body['run_id']}")
    assert run.status == 200
    assert set(run.body) == {
        "id", "workflow", "status", "input", "output", "error", "created_at", "updated_at",
        "wake_at", "pending", "forked_from", "parent_id",
    }  # fmt: skip
    assert run.body["id"] == response.body["run_id"]
    assert run.body["workflow"] == "greet"
    assert run.body["status"] == "completed"  # inline mode: start ran it to the end
    assert run.body["input"] == {"name": "Ada", "times": 1}
    assert run.body["output"] == "hello Ada"
    assert run.body["error"] is None
    assert api_rows() == (1, 1, 1)


def test_start_takes_base64_bodies(api_client: ApiClient, workflows: Any) -> None:
    response = api_client.post(
        "/workflows/greet/start", json_body={"name": "Zoë"}, base64_body=True
    )

    assert response.status == 202
    assert api_client.get(f"/runs/{response.body['run_id']}").body["output"] == "hello Zoë"


def test_the_same_idempotency_key_starts_one_run(
    api_client: ApiClient, workflows: Any, api_rows: Rows
) -> None:
    first = api_client.post(
        "/workflows/greet/start", json_body={"name": "Ada"}, headers={"Idempotency-Key": "k-1"}
    )
    again = api_client.post(
        "/workflows/greet/start", json_body={"name": "Ada"}, headers={"Idempotency-Key": "k-1"}
    )
    other = api_client.post(
        "/workflows/greet/start", json_body={"name": "Ada"}, headers={"Idempotency-Key": "k-2"}
    )

    assert first.status == again.status == other.status == 202
    assert again.body == first.body
    assert other.body != first.body
    assert api_rows() == (2, 2, 2)


@pytest.mark.parametrize("route", ["start", "run"])
def test_an_idempotency_key_reused_with_another_input_is_422(
    api_client: ApiClient, workflows: Any, api_rows: Rows, route: str
) -> None:
    key = {"Idempotency-Key": "k-1"}
    first = api_client.post(
        f"/workflows/greet/{route}", body='{"name": "Ada", "times": 2}', headers=key
    )
    reordered = api_client.post(
        f"/workflows/greet/{route}", body='{"times": 2, "name": "Ada"}', headers=key
    )
    before = api_rows()

    other = api_client.post(f"/workflows/greet/{route}", json_body={"name": "Bob"}, headers=key)

    assert first.body["run_id"] == reordered.body["run_id"]  # key order is not a difference
    error = error_of(other, 422, "IdempotencyConflict")
    assert "'k-1'" in error["message"]
    assert "'greet'" in error["message"]
    assert first.body["run_id"] not in error["message"]  # another caller's run stays unnamed
    assert error["details"][0]["loc"] == ["header", "idempotency-key"]
    assert api_rows() == before


def test_an_input_over_the_limit_is_413_naming_size_and_limit(
    flow: Flow, api_service: WorkflowService, lambda_context: FakeLambdaContext, api_rows: Rows
) -> None:
    @flow.workflow
    async def keep(wf: WorkflowContext, data: dict[str, Any]) -> str:
        return "kept"

    client = ApiClient(build_api(api_service, flow, max_body_bytes=2**20).resolve, lambda_context)
    pad = MAX_INPUT_BYTES - len('{"pad":""}')
    fits = client.post("/workflows/keep/start", json_body={"pad": "x" * pad})
    before = api_rows()

    over = client.post("/workflows/keep/start", json_body={"pad": "x" * (pad + 1)})
    spaced = client.post("/workflows/keep/start", body='{"pad": "%s"}' % ("é" * (pad // 2 + 1)))

    assert fits.status == 202
    error = error_of(over, 413, "InputTooLarge")
    assert (
        f"{MAX_INPUT_BYTES + 1} bytes of JSON, over the limit of {MAX_INPUT_BYTES}"
        in (error["message"])
    )
    assert error_of(spaced, 413, "InputTooLarge")  # measured in UTF-8 bytes, not characters
    assert api_rows() == before


def test_run_answers_200_with_the_output(api_client: ApiClient, workflows: Any) -> None:
    response = api_client.post("/workflows/greet/run", json_body={"name": "Ada", "times": 2})

    assert response.status == 200
    assert response.body == {
        "run_id": response.body["run_id"],
        "status": "completed",
        "output": "hello Ada hello Ada",
        "error": None,
    }
    assert api_client.get(f"/runs/{response.body['run_id']}").body["status"] == "completed"


def test_run_answers_202_when_the_run_sleeps_past_the_timeout(
    api_client: ApiClient, workflows: Any, clock: TimeSkippingClock
) -> None:
    began = clock.now()

    response = api_client.post(
        "/workflows/nap/run", json_body={"for": "1h"}, query={"timeout": "10s"}
    )

    assert response.status == 202
    assert response.body == {"run_id": response.body["run_id"], "status": "running"}
    assert clock.now() - began <= timedelta(seconds=10)
    run = api_client.get(f"/runs/{response.body['run_id']}").body
    assert run["status"] == "running"
    assert datetime.fromisoformat(run["wake_at"]) == began + timedelta(hours=1)


def test_run_with_an_idempotency_key_answers_for_the_first_run(
    api_client: ApiClient, workflows: Any, api_rows: Rows
) -> None:
    key = {"Idempotency-Key": "nap-1"}
    first = api_client.post(
        "/workflows/nap/run", json_body={"for": "1h"}, query={"timeout": "1s"}, headers=key
    )
    again = api_client.post(
        "/workflows/nap/run", json_body={"for": "1h"}, query={"timeout": "1s"}, headers=key
    )

    assert first.status == again.status == 202
    assert again.body["run_id"] == first.body["run_id"]
    assert api_rows()[0] == 1


@pytest.mark.parametrize(
    ("nap", "timeout", "remaining_ms", "status"),
    [
        ("24s", None, 30_000, 200),  # no timeout: wait up to the cap (25 s)
        ("30s", "1h", 30_000, 202),  # a timeout above the cap is cut to it
        ("20s", "1h", 30_000, 200),
        ("11s", "1h", 12_000, 202),  # never wait past the Lambda's own deadline (less 2 s)
        ("9s", "1h", 12_000, 200),
        ("5s", "4s", 30_000, 202),
    ],
)
def test_run_waits_within_the_cap_and_the_lambda_deadline(
    flow: Flow,
    workflows: Any,
    api_service: WorkflowService,
    *,
    nap: str,
    timeout: str | None,
    remaining_ms: int,
    status: int,
) -> None:
    client = ApiClient(
        build_api(api_service, flow, max_wait="25s").resolve,
        FakeLambdaContext(remaining_ms=remaining_ms),
    )
    query = {} if timeout is None else {"timeout": timeout}

    response = client.post("/workflows/nap/run", json_body={"for": nap}, query=query)

    assert response.status == status, response.body
    assert response.body["status"] == ("completed" if status == 200 else "running")


def test_run_answers_200_for_failed_and_cancelled_runs_and_202_for_suspended(
    api_client: ApiClient, workflows: Any
) -> None:
    failed = api_client.post("/workflows/explode/run")
    cancelled = api_client.post("/workflows/give_up/run")
    suspended = api_client.post("/workflows/approval/run")

    assert failed.status == 200
    assert failed.body["status"] == "failed"
    assert failed.body["output"] is None
    assert "boom" in failed.body["error"]["message"]
    assert cancelled.status == 200
    assert cancelled.body["status"] == "cancelled"
    assert cancelled.body["error"]["message"] == "nothing to do"
    assert suspended.status == 202
    assert suspended.body == {"run_id": suspended.body["run_id"], "status": "suspended"}


class RecordingQueue:
    """A job queue that records what it is asked; ``drive`` runs a pass on each run job."""

    def __init__(self, drive: Callable[[str], None] | None = None) -> None:
        self.runs: list[str] = []
        self.steps: list[StepJob] = []
        self.drive = drive

    def enqueue_run(self, run_id: str, *, delay: timedelta | None = None) -> None:
        self.runs.append(run_id)
        if self.drive is not None:
            self.drive(run_id)

    def enqueue_steps(self, jobs: Sequence[StepJob]) -> None:
        self.steps.extend(jobs)

    def wake_at(self, run_id: str, when: datetime, now: datetime) -> None:
        raise AssertionError("no timers expected")


def test_remote_mode_start_queues_the_run_and_run_polls_until_the_timeout(
    flow: Flow,
    workflows: Any,
    make_service: Callable[..., WorkflowService],
    lambda_context: FakeLambdaContext,
    clock: TimeSkippingClock,
) -> None:
    queue = RecordingQueue()
    service = make_service(queue=queue)
    client = ApiClient(build_api(service, flow, poll_interval="1s").resolve, lambda_context)

    started = client.post("/workflows/greet/start", json_body={"name": "Ada"})
    began = clock.now()
    waited = client.post("/workflows/greet/run", json_body={"name": "Bo"}, query={"timeout": "5s"})

    assert started.status == 202
    assert client.get(f"/runs/{started.body['run_id']}").body["status"] == "running"
    assert waited.status == 202
    assert waited.body["status"] == "running"
    assert queue.runs == [started.body["run_id"], waited.body["run_id"]]
    assert clock.now() - began == timedelta(seconds=5)
    assert clock.slept == [timedelta(seconds=1)] * 5


def test_remote_mode_run_answers_200_once_a_worker_finished_the_run(
    flow: Flow,
    workflows: Any,
    make_service: Callable[..., WorkflowService],
    lambda_context: FakeLambdaContext,
) -> None:
    services: list[WorkflowService] = []

    def worker(run_id: str) -> None:  # stands in for the orchestrator Lambda
        asyncio.run(services[0].run_pass(run_id))

    services.append(make_service(queue=RecordingQueue(drive=worker)))
    client = ApiClient(build_api(services[0], flow).resolve, lambda_context)

    response = client.post("/workflows/greet/run", json_body={"name": "Ada"})

    assert response.status == 200
    assert response.body["output"] == "hello Ada"


# -- reading -----------------------------------------------------------------------------------
def test_history_lists_every_attempt(api_client: ApiClient, workflows: Any) -> None:
    run_id = start(api_client, "greet", {"name": "Ada"})

    response = api_client.get(f"/runs/{run_id}/history")

    assert response.status == 200
    assert response.body["run_id"] == run_id
    [attempt] = response.body["history"]
    assert (attempt["step_name"], attempt["kind"], attempt["status"], attempt["attempt"]) == (
        "say hello", "inline", "succeeded", 1,
    )  # fmt: skip
    assert attempt["result"] == "hello Ada"


def test_list_filters_and_pages(
    api_client: ApiClient, workflows: Any, clock: TimeSkippingClock
) -> None:
    greets = []
    for name in ("a", "b", "c", "d", "e"):
        greets.append(start(api_client, "greet", {"name": name}))
        clock.advance("1s")
    waiting = start(api_client, "approval")
    newest_first = list(reversed(greets))

    everything = api_client.get("/runs")
    assert run_ids(everything) == [waiting, *newest_first]
    assert everything.body["next_cursor"] is None
    assert run_ids(api_client.get("/runs", query={"workflow": "greet"})) == newest_first
    assert run_ids(api_client.get("/runs", query={"status": "suspended"})) == [waiting]
    assert run_ids(api_client.get("/runs", query={"workflow": "greet", "status": "failed"})) == []

    seen: list[str] = []
    pages = 0
    query = {"workflow": "greet", "limit": "2"}
    while True:
        page = api_client.get("/runs", query=query)
        seen.extend(run_ids(page))
        pages += 1
        if page.body["next_cursor"] is None:
            break
        query["cursor"] = page.body["next_cursor"]
    assert seen == newest_first
    assert pages == 3


def test_list_filters_by_creation_time_and_searches_ids_and_keys(
    api_client: ApiClient, workflows: Any, clock: TimeSkippingClock, api_service: Any
) -> None:
    first = start(api_client, "greet", {"name": "a"})
    clock.advance("1h")
    keyed = api_client.post(
        "/workflows/greet/start", json_body={"name": "b"}, headers={"Idempotency-Key": "order-7"}
    ).body["run_id"]
    created = api_service.get_run(keyed).created_at

    after = {"created_after": (created - timedelta(minutes=1)).isoformat()}
    assert run_ids(api_client.get("/runs", query=after)) == [keyed]
    before = {"created_before": created.isoformat()}
    assert run_ids(api_client.get("/runs", query=before)) == [first]
    assert run_ids(api_client.get("/runs", query={"search": "order-"})) == [keyed]
    assert run_ids(api_client.get("/runs", query={"search": first[:8]})) == [first]
    assert run_ids(api_client.get("/runs", query={"search": first})) == [first]
    # a time without its timezone names the parameter; nothing else is wrong
    naive = api_client.get("/runs", query={"created_after": "2026-01-01T00:00:00"})
    assert error_of(naive, 422, "InvalidInput")["details"][0]["loc"] == ["created_after"]
    long = api_client.get("/runs", query={"search": "x" * 201})
    assert error_of(long, 422, "InvalidRequest")["details"][0]["loc"] == ["query", "search"]


def test_list_answers_summaries_without_input_or_output(
    api_client: ApiClient, workflows: Any
) -> None:
    done = api_client.post("/workflows/greet/run", json_body={"name": "Ada"}).body["run_id"]
    failed = api_client.post("/workflows/explode/run").body["run_id"]

    runs = {r["id"]: r for r in api_client.get("/runs").body["runs"]}

    assert set(runs[done]) == {
        "id", "workflow", "status", "error", "created_at", "updated_at", "wake_at", "parent_id",
    }  # fmt: skip
    assert runs[done]["status"] == "completed"
    assert runs[failed]["error"]["type"]
    full = api_client.get(f"/runs/{done}").body
    assert full["input"] == {"name": "Ada", "times": 1}
    assert full["output"] == "hello Ada"


def test_a_list_page_stops_at_its_byte_cap_and_the_cursor_goes_on(
    flow: Flow,
    workflows: Any,
    api_service: WorkflowService,
    lambda_context: FakeLambdaContext,
    clock: TimeSkippingClock,
) -> None:
    client = ApiClient(build_api(api_service, flow, max_page_bytes=500).resolve, lambda_context)
    started = []
    for name in "abcdefg":
        started.append(start(client, "greet", {"name": name}))
        clock.advance("1s")

    seen: list[str] = []
    sizes: list[int] = []
    query: dict[str, str] = {"limit": "1000"}
    while True:
        page = client.get("/runs", query=query)
        sizes.append(len(page.body["runs"]))
        seen.extend(run_ids(page))
        if page.body["next_cursor"] is None:
            break
        query["cursor"] = page.body["next_cursor"]

    assert seen == list(reversed(started))  # nothing skipped, nothing twice
    assert max(sizes) < len(started)
    one = len(json.dumps(client.get("/runs", query={"limit": "1"}).body["runs"][0]))
    assert max(sizes) == -(-500 // one)  # stops once the page holds 500 bytes


# -- operator actions --------------------------------------------------------------------------
def test_resume_a_suspended_run(api_client: ApiClient, workflows: Any) -> None:
    run_id = start(api_client, "approval")
    assert api_client.get(f"/runs/{run_id}").body["status"] == "suspended"

    response = api_client.post(f"/runs/{run_id}/resume")

    assert response.status == 200
    assert response.body["id"] == run_id
    assert response.body["status"] == "completed"
    assert response.body["output"] == "approved"


def test_cancel_with_and_without_a_reason(api_client: ApiClient, workflows: Any) -> None:
    with_reason = start(api_client, "approval")
    without = start(api_client, "approval")

    first = api_client.post(f"/runs/{with_reason}/cancel", json_body={"reason": "signed up twice"})
    second = api_client.post(f"/runs/{without}/cancel")

    assert first.status == second.status == 200
    assert first.body["status"] == second.body["status"] == "cancelled"
    assert first.body["error"]["message"] == "signed up twice"
    assert second.body["error"]["message"] == "cancelled"
    assert api_client.get(f"/runs/{without}").body["status"] == "cancelled"


# -- bad requests write nothing ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ('{"name": ', "not valid JSON: Expecting value"),
        ('{"name": "Ada",}', "not valid JSON"),  # the parser's wording varies by Python
        ("{'name': 'Ada'}", "line 1, column 2"),
        ('{"name": NaN}', "NaN"),
        ("[" * 100_000, "nested too deeply"),
    ],
)
@pytest.mark.parametrize("route", ["start", "run"])
def test_malformed_json_is_400(
    api_client: ApiClient, workflows: Any, api_rows: Rows, *, route: str, body: str, fragment: str
) -> None:
    before = api_rows()

    response = api_client.post(f"/workflows/greet/{route}", body=body)

    error = error_of(response, 400, "InvalidJson")
    assert fragment in error["message"]
    assert api_rows() == before


@pytest.mark.parametrize(
    ("body", "loc", "fragment"),
    [
        ('{"name": "A\\u0000da"}', ["name"], "\\u0000"),
        ('{"name": "\\ud800"}', ["name"], "surrogate"),
        ('{"name": "Ada", "note": {"k\\u0000": 1}}', ["note", "k\\u0000"], "key contains a NUL"),
        ('{"name": "Ada", "tags": ["ok", "\\udfff"]}', ["tags", 1], "surrogate"),
    ],
)
@pytest.mark.parametrize("route", ["start", "run"])
def test_text_the_database_cannot_store_is_400_naming_where(
    api_client: ApiClient,
    flow: Flow,
    api_rows: Rows,
    *,
    route: str,
    body: str,
    loc: list[Any],
    fragment: str,
) -> None:
    @flow.workflow
    async def keep(wf: WorkflowContext, data: dict[str, Any]) -> str:
        return "kept"

    response = api_client.post(f"/workflows/keep/{route}", body=body)

    error = error_of(response, 400, "UnstorableInput")
    assert [d["loc"] for d in error["details"]] == [loc]
    assert fragment in error["details"][0]["msg"]
    assert api_rows() == (0, 0, 0)


def test_a_cancel_reason_the_database_cannot_store_is_400(
    api_client: ApiClient, workflows: Any, api_rows: Rows
) -> None:
    run_id = start(api_client, "approval")
    before = api_rows()

    response = api_client.post(f"/runs/{run_id}/cancel", body='{"reason": "no\\u0000pe"}')

    assert error_of(response, 400, "UnstorableInput")["details"][0]["loc"] == ["reason"]
    assert api_rows() == before
    assert api_client.get(f"/runs/{run_id}").body["status"] == "suspended"


def test_bodies_that_are_not_base64_or_utf8_are_400(
    api_client: ApiClient, workflows: Any, api_rows: Rows
) -> None:
    not_base64 = api_client.event("POST", "/workflows/greet/start", body="%%% not base64 %%%")
    not_base64["isBase64Encoded"] = True
    latin1 = api_client.event("POST", "/workflows/greet/start")
    latin1["body"] = base64.b64encode('{"name": "Zoë"}'.encode("latin-1")).decode()
    latin1["isBase64Encoded"] = True

    assert "base64" in error_of(api_client.send(not_base64), 400, "InvalidBody")["message"]
    assert "UTF-8" in error_of(api_client.send(latin1), 400, "InvalidBody")["message"]
    assert api_rows() == (0, 0, 0)


def test_escaped_text_that_postgres_can_store_is_accepted(
    api_client: ApiClient, workflows: Any
) -> None:
    run_id = start(api_client, "greet", None, body='{"name": "Zo\\u00eb \\ud83d\\ude00"}')

    assert api_client.get(f"/runs/{run_id}").body["input"]["name"] == "Zoë 😀"


@pytest.mark.parametrize("route", ["start", "run"])
def test_unknown_workflow_is_404(
    api_client: ApiClient, workflows: Any, api_rows: Rows, route: str
) -> None:
    response = api_client.post(f"/workflows/nope/{route}", json_body={"name": "Ada"})

    assert "nope" in error_of(response, 404, "WorkflowNotFound")["message"]
    assert api_rows() == (0, 0, 0)


@pytest.mark.parametrize("run_id", [str(uuid.uuid4()), "not-a-uuid", "1234", "%00"])
@pytest.mark.parametrize(
    ("method", "suffix"),
    [("GET", ""), ("GET", "/history"), ("POST", "/resume"), ("POST", "/cancel")],
)
def test_unknown_or_malformed_run_is_404(
    api_client: ApiClient, workflows: Any, api_rows: Rows, *, run_id: str, method: str, suffix: str
) -> None:
    start(api_client, "approval")
    before = api_rows()

    response = api_client.request(method, f"/runs/{run_id}{suffix}")

    error_of(response, 404, "RunNotFound")
    assert api_rows() == before


def test_unknown_route_is_404(api_client: ApiClient) -> None:
    error_of(api_client.get("/nowhere"), 404, "NotFound")
    wrong_method = api_client.post("/runs")  # a known path: 405 (tests/e2e/test_api_errors.py)
    error_of(wrong_method, 405, "MethodNotAllowed")
    assert wrong_method.headers["Allow"] == "GET"


def test_bodies_over_the_limit_are_413(
    flow: Flow,
    workflows: Any,
    api_service: WorkflowService,
    lambda_context: FakeLambdaContext,
    api_rows: Rows,
) -> None:
    client = ApiClient(build_api(api_service, flow, max_body_bytes=64).resolve, lambda_context)
    template = '{"name": "Ada", "pad": "%s"}'
    fits = template % ("x" * (64 - len(template % "")))
    assert len(fits.encode()) == 64
    assert client.post("/workflows/greet/start", body=fits).status == 202
    assert client.post("/workflows/greet/start", body=fits, base64_body=True).status == 202
    before = api_rows()
    one_over = fits.replace('"pad": "', '"pad": "x')
    multibyte = template % ("é" * 20)
    assert len(multibyte) < 64 < len(multibyte.encode())

    for body, encoded in [
        (one_over, False),
        (one_over, True),
        (multibyte, False),
        ("x" * 10**6, True),
    ]:
        response = client.post("/workflows/greet/start", body=body, base64_body=encoded)
        assert "64 bytes" in error_of(response, 413, "PayloadTooLarge")["message"]
    error_of(client.post("/workflows/greet/run", body=one_over), 413, "PayloadTooLarge")
    run_id = start(client, "approval")
    cancel = client.post(f"/runs/{run_id}/cancel", json_body={"reason": "r" * 100})
    error_of(cancel, 413, "PayloadTooLarge")
    assert api_rows() == (before[0] + 1, before[1] + 1, before[2] + 1)  # only the approval run
    assert client.get(f"/runs/{run_id}").body["status"] == "suspended"


@pytest.mark.parametrize("route", ["start", "run"])
def test_invalid_input_is_422_with_field_errors(
    api_client: ApiClient, workflows: Any, api_rows: Rows, route: str
) -> None:
    response = api_client.post(f"/workflows/greet/{route}", json_body={"name": "", "times": 9})
    missing = api_client.post(f"/workflows/greet/{route}", json_body={})
    no_body = api_client.post(f"/workflows/greet/{route}")

    error = error_of(response, 422, "InvalidInput")
    assert "workflow 'greet'" in error["message"]
    assert {tuple(d["loc"]): d["type"] for d in error["details"]} == {
        ("name",): "string_too_short",
        ("times",): "less_than_equal",
    }
    assert all(d["msg"] for d in error["details"])
    assert error_of(missing, 422, "InvalidInput")["details"][0]["loc"] == ["name"]
    assert error_of(no_body, 422, "InvalidInput")["details"]
    assert api_rows() == (0, 0, 0)


@pytest.mark.parametrize(
    ("query", "where"),
    [
        ({"status": "bogus"}, "status"),
        ({"status": "COMPLETED"}, "status"),
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"cursor": "garbage"}, "cursor"),
        ({"cursor": "MjAyNnxub3QtYS11dWlk"}, "cursor"),
        ({"workflow": "x\x01y"}, "workflow"),
    ],
)
def test_bad_list_parameters_are_422(
    api_client: ApiClient, query: dict[str, str], where: str
) -> None:
    error = error_of(api_client.get("/runs", query=query), 422, error_type_for(where))

    assert any(where in d["loc"] for d in error["details"])


def error_type_for(parameter: str) -> str:
    # Powertools checks the declared parameter types; the service checks the cursor itself.
    return "InvalidInput" if parameter == "cursor" else "InvalidRequest"


def test_bad_timeout_and_idempotency_key_are_422(
    api_client: ApiClient, workflows: Any, api_rows: Rows
) -> None:
    timeout = api_client.post(
        "/workflows/greet/run", json_body={"name": "Ada"}, query={"timeout": "soon"}
    )
    key = api_client.post(
        "/workflows/greet/start", json_body={"name": "Ada"}, headers={"Idempotency-Key": "a b"}
    )

    assert error_of(timeout, 422, "InvalidRequest")["details"][0]["loc"] == ["query", "timeout"]
    assert error_of(key, 422, "InvalidRequest")["details"][0]["loc"] == [
        "header",
        "idempotency-key",
    ]
    assert api_rows() == (0, 0, 0)


@pytest.mark.parametrize("body", [["not", "an object"], {"reason": 5}, {"why": "typo"}])
def test_bad_cancel_bodies_are_422(
    api_client: ApiClient, workflows: Any, api_rows: Rows, body: Any
) -> None:
    run_id = start(api_client, "approval")
    before = api_rows()

    response = api_client.post(f"/runs/{run_id}/cancel", json_body=body)

    assert error_of(response, 422, "InvalidInput")["details"][0]["loc"][0] == "body"
    assert api_rows() == before
    assert api_client.get(f"/runs/{run_id}").body["status"] == "suspended"


@pytest.mark.parametrize("action", ["resume", "cancel"])
def test_acting_on_a_finished_run_is_409(
    api_client: ApiClient, workflows: Any, api_rows: Rows, action: str
) -> None:
    run_id = start(api_client, "greet", {"name": "Ada"})
    before, snapshot = api_rows(), api_client.get(f"/runs/{run_id}").body

    response = api_client.post(f"/runs/{run_id}/{action}")

    assert "completed" in error_of(response, 409, "InvalidRunState")["message"]
    assert api_rows() == before
    assert api_client.get(f"/runs/{run_id}").body == snapshot


# -- authentication and authorization ----------------------------------------------------------
ROUTES = [
    ("POST", "/workflows/greet/start"),
    ("POST", "/workflows/greet/run"),
    ("GET", "/runs/{id}"),
    ("GET", "/runs/{id}/history"),
    ("GET", "/runs"),
    ("POST", "/runs/{id}/resume"),
    ("POST", "/runs/{id}/cancel"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_anonymous_callers_get_401(
    api_client: ApiClient, workflows: Any, api_rows: Rows, method: str, path: str
) -> None:
    run_id = start(api_client, "approval")
    before = api_rows()
    body = {"json_body": {"name": "Ada"}} if path.startswith("/workflows") else {}

    response = api_client.request(method, path.format(id=run_id), authorizer=ANONYMOUS, **body)
    unknown = api_client.request(method, path.format(id=uuid.uuid4()), authorizer=ANONYMOUS)

    error_of(response, 401, "Unauthorized")
    error_of(unknown, 401, "Unauthorized")  # no hint whether the run exists
    assert api_rows() == before
    assert api_client.get(f"/runs/{run_id}").body["status"] == "suspended"


@pytest.mark.parametrize(
    "authorizer",
    [
        jwt_authorizer("alice"),
        iam_authorizer("arn:aws:iam::123456789012:user/alice"),
        lambda_authorizer(principalId="alice"),
        lambda_authorizer(),
    ],
)
def test_every_kind_of_authorizer_is_a_caller(
    api_client: ApiClient, workflows: Any, authorizer: dict[str, Any]
) -> None:
    assert (
        api_client.post(
            "/workflows/greet/start", json_body={"name": "Ada"}, authorizer=authorizer
        ).status
        == 202
    )


def test_allow_anonymous_serves_unauthenticated_callers(
    flow: Flow, workflows: list[AccessRequest], api_service: WorkflowService
) -> None:
    client = ApiClient(build_api(api_service, flow, allow_anonymous=True).resolve, None)

    greeted = client.post("/workflows/greet/start", json_body={"name": "Ada"}, authorizer=ANONYMOUS)
    guarded = client.post(
        "/workflows/guarded/start", json_body={"item": "pen", "amount": 1}, authorizer=ANONYMOUS
    )

    assert greeted.status == 202
    error_of(guarded, 403, "Forbidden")  # hooks still decide
    assert workflows[-1].caller.kind == "anonymous"


def test_the_workflow_hook_decides_every_action(
    api_client: ApiClient, workflows: list[AccessRequest], api_rows: Rows
) -> None:
    run_id = start(api_client, "guarded", {"item": "book", "amount": 20})
    asked = workflows[-1]
    assert asked.action == "start"
    assert asked.workflow == "guarded"
    assert asked.run_id is None
    assert isinstance(asked.input, Order)  # the validated input, typed
    assert asked.input.amount == 20
    assert (asked.caller.kind, asked.caller.principal) == ("jwt", "alice")
    assert asked.caller.claims["token_use"] == "access"
    before = api_rows()

    refusals = [
        api_client.post("/workflows/guarded/start", json_body={"item": "car", "amount": 500}),
        api_client.post("/workflows/guarded/run", json_body={"item": "car", "amount": 500}),
        api_client.post(
            "/workflows/guarded/start", json_body={"item": "pen", "amount": 1}, authorizer=BOB
        ),
        api_client.get(f"/runs/{run_id}", authorizer=BOB),
        api_client.get(f"/runs/{run_id}/history", authorizer=BOB),
        api_client.post(f"/runs/{run_id}/resume", authorizer=BOB),
        api_client.post(f"/runs/{run_id}/cancel", authorizer=BOB),
    ]

    for response in refusals:
        error_of(response, 403, "Forbidden")
    assert [(a.action, a.run_id) for a in workflows[-4:]] == [
        ("read", run_id), ("read", run_id), ("resume", run_id), ("cancel", run_id),
    ]  # fmt: skip
    assert api_rows() == before
    assert api_client.get(f"/runs/{run_id}").body["status"] == "suspended"
    assert workflows[-1].action == "read"


def test_input_is_validated_before_the_hook_is_asked(
    api_client: ApiClient, workflows: list[AccessRequest], api_rows: Rows
) -> None:
    response = api_client.post(
        "/workflows/guarded/start", json_body={"item": "pen", "amount": 0}, authorizer=BOB
    )

    error_of(response, 422, "InvalidInput")
    assert workflows == []
    assert api_rows() == (0, 0, 0)


def test_listing_leaves_out_runs_the_caller_may_not_read(
    api_client: ApiClient, workflows: Any, clock: TimeSkippingClock
) -> None:
    ids = []
    for workflow, data in [
        ("greet", {"name": "a"}),
        ("guarded", {"item": "a", "amount": 1}),
        ("guarded", {"item": "b", "amount": 2}),
        ("greet", {"name": "b"}),
    ]:
        ids.append(start(api_client, workflow, data))
        clock.advance("1s")
    g1, p1, p2, g2 = ids

    assert run_ids(api_client.get("/runs")) == [g2, p2, p1, g1]
    pages = []
    query = {"limit": "2"}
    while True:
        page = api_client.get("/runs", query=query, authorizer=BOB)
        pages.append(run_ids(page))
        if page.body["next_cursor"] is None:
            break
        query["cursor"] = page.body["next_cursor"]
    assert pages == [[g2], [g1], []]  # short pages, but paging goes on past the hidden runs
    assert run_ids(api_client.get("/runs", query={"workflow": "guarded"}, authorizer=BOB)) == []


def test_runs_of_unregistered_workflows_fail_closed_when_hooks_are_in_use(
    api_client: ApiClient, workflows: Any, store: PostgresStore, clock: TimeSkippingClock
) -> None:
    retired, _ = store.create_run("retired", {"x": 1}, None, clock.now())

    error_of(api_client.get(f"/runs/{retired}"), 403, "Forbidden")
    assert retired not in run_ids(api_client.get("/runs"))


def test_runs_of_unregistered_workflows_are_served_when_no_workflow_has_a_hook(
    api_client: ApiClient, store: PostgresStore, clock: TimeSkippingClock
) -> None:
    retired, _ = store.create_run("retired", {"x": 1}, None, clock.now())

    assert api_client.get(f"/runs/{retired}").body["workflow"] == "retired"
    assert run_ids(api_client.get("/runs")) == [retired]


@pytest.mark.parametrize(
    ("event", "kind", "principal"),
    [
        ("api_start", "jwt", "8f2e4c1a-0d3b-4e8f-9a1c-2b3d4e5f6a7b"),
        ("api_run", "iam", "arn:aws:sts::123456789012:assumed-role/ops/ops-session"),
        ("api_list_runs", "lambda", "team-onboarding"),
    ],
)
def test_caller_from_the_sample_events(event: str, kind: str, principal: str) -> None:
    caller = caller_from_event(load_event(event))

    assert (caller.kind, caller.principal) == (kind, principal)
    assert "accessKey" not in caller.claims


@pytest.mark.parametrize(
    ("authorizer", "kind", "principal"),
    [
        (iam_authorizer(None, caller_id="AROAEXAMPLE:job"), "iam", "AROAEXAMPLE:job"),
        (jwt_authorizer("u-1", scope="a b"), "jwt", "u-1"),
        ({"jwt": {"claims": {"iss": "x"}}}, "jwt", None),
        ({"lambda": None}, "lambda", None),
        ({"lambda": {"sub": "svc"}}, "lambda", "svc"),
        ({"jwt": {"scopes": ["a"]}}, "anonymous", None),
        ({}, "anonymous", None),
        (None, "anonymous", None),
    ],
)
def test_caller_from_authorizers(authorizer: Any, kind: str, principal: str | None) -> None:
    caller = caller_from_event({"requestContext": {"authorizer": authorizer}})

    assert (caller.kind, caller.principal) == (kind, principal)


def test_unexpected_errors_are_500_and_logged(
    flow: Flow,
    api_service: WorkflowService,
    lambda_context: FakeLambdaContext,
    api_rows: Rows,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(request: AccessRequest) -> bool:
        raise RuntimeError("hook failed with token=hunter2")

    @flow.workflow(authorize=broken)
    async def fragile(wf: WorkflowContext) -> str:
        return "never"

    client = ApiClient(build_api(api_service, flow).resolve, lambda_context)

    response = client.post("/workflows/fragile/start")

    error = error_of(response, 500, "InternalError")
    assert "hunter2" not in json.dumps(response.body)
    assert "JKJaXmPLvHcESHA=" in error["message"]  # the sample's request id, for support
    assert api_rows() == (0, 0, 0)
    [record] = [r for r in caplog.records if r.getMessage() == "unexpected error in the API"]
    assert record.path == "/workflows/fragile/start"  # type: ignore[attr-defined]


# -- the OpenAPI document ----------------------------------------------------------------------
def test_openapi_document_lists_every_route(api_client: ApiClient, workflows: Any) -> None:
    response = api_client.get("/openapi.json", authorizer=ANONYMOUS)

    assert response.status == 200
    document = response.body
    assert document["openapi"].startswith("3.")
    operations = {
        (path, method): operation
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    }
    names = ["approval", "explode", "give_up", "greet", "guarded", "nap"]
    assert set(operations) == {
        *((f"/workflows/{name}/{action}", "post") for name in names for action in ("start", "run")),
        ("/workflows", "get"),
        *(
            (f"/callbacks/{{callback_id}}/{action}", "post")
            for action in ("succeed", "fail", "heartbeat")
        ),
        ("/runs/{run_id}", "get"),
        ("/runs/{run_id}/history", "get"),
        ("/runs", "get"),
        ("/runs/{run_id}/resume", "post"),
        ("/runs/{run_id}/cancel", "post"),
        ("/runs/{run_id}/fork", "post"),
        ("/openapi.json", "get"),
    }
    for (path, _), operation in operations.items():
        assert operation["summary"], path
        if path != "/openapi.json":
            error = operation["responses"]["500"]["content"]["application/json"]["schema"]
            assert error["$ref"].endswith("/ApiErrorResponse"), path
    assert len({op["operationId"] for op in operations.values()}) == len(operations)

    def schema_of(path: str, method: str, status: str) -> str:
        content = operations[(path, method)]["responses"][status]["content"]
        return str(content["application/json"]["schema"]["$ref"]).rsplit("/", 1)[-1]

    assert schema_of("/workflows/greet/start", "post", "202") == "RunStarted"
    assert schema_of("/workflows/greet/run", "post", "200") == "RunFinished_greet"
    assert schema_of("/workflows/greet/run", "post", "202") == "RunInProgress"
    assert schema_of("/workflows", "get", "200") == "WorkflowList"
    assert schema_of("/runs/{run_id}", "get", "200") == "RunView"
    assert schema_of("/runs/{run_id}/history", "get", "200") == "RunHistoryView"
    assert schema_of("/runs", "get", "200") == "RunPage"
    assert schema_of("/runs/{run_id}/cancel", "post", "409") == "ApiErrorResponse"
    start_op = operations[("/workflows/greet/start", "post")]
    assert start_op["operationId"] == "start_greet"
    assert {p["name"] for p in start_op["parameters"]} == {"idempotency-key", "run_timeout"}
    listing = operations[("/runs", "get")]
    assert {p["name"] for p in listing["parameters"]} == {
        "workflow",
        "status",
        "limit",
        "cursor",
        "parent_id",
        "created_after",
        "created_before",
        "search",
    }


def test_openapi_has_each_workflows_input_and_output_schema(
    api_client: ApiClient, workflows: Any
) -> None:
    document = api_client.get("/openapi.json", authorizer=ANONYMOUS).body
    components = document["components"]["schemas"]
    paths = document["paths"]

    def resolve(schema: dict[str, Any]) -> dict[str, Any]:
        ref = schema.get("$ref")
        return components[ref.rsplit("/", 1)[-1]] if ref else schema

    greet_body = paths["/workflows/greet/start"]["post"]["requestBody"]
    assert greet_body["required"] is True
    greeting = resolve(greet_body["content"]["application/json"]["schema"])
    assert greeting["properties"]["name"]["maxLength"] == 40
    assert greeting["required"] == ["name"]
    order = resolve(paths["/workflows/guarded/run"]["post"]["requestBody"]["content"][
        "application/json"]["schema"])  # fmt: skip
    assert order["properties"]["amount"]["minimum"] == 1
    finished = components["RunFinished_greet"]
    assert finished["properties"]["output"]["anyOf"][0] == {"type": "string"}
    assert set(finished["properties"]) == {"run_id", "status", "output", "error"}
    nap = paths["/workflows/nap/start"]["post"]["requestBody"]["content"]["application/json"]
    assert nap["schema"]["type"] == "object"
    approval = paths["/workflows/approval/start"]["post"]["requestBody"]
    assert approval["required"] is False  # takes no input


class RunView(BaseModel):
    """A user's model named like one of the API's own."""

    mine: int


def test_openapi_keeps_workflow_models_apart_from_the_apis_own(
    flow: Flow, api_service: WorkflowService, lambda_context: FakeLambdaContext
) -> None:
    @flow.workflow(name="odd name/with slash", description="Does odd things.", tags=["odd"])
    async def odd(wf: WorkflowContext, data: RunView) -> Callable[[], int]:
        return lambda: data.mine  # no JSON Schema: documented as any JSON

    client = ApiClient(build_api(api_service, flow).resolve, lambda_context)
    document = client.get("/openapi.json").body
    components = document["components"]["schemas"]

    operation = document["paths"]["/workflows/odd%20name%2Fwith%20slash/start"]["post"]
    assert operation["operationId"] == "start_odd_name_with_slash"
    assert operation["tags"] == ["workflows", "odd"]
    assert operation["description"].startswith("Does odd things.")
    ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert ref == "#/components/schemas/RunView_2"
    assert components["RunView_2"]["properties"] == {"mine": {"title": "Mine", "type": "integer"}}
    assert "workflow" in components["RunView"]["properties"]  # the API's own, untouched
    finished = components["RunFinished_odd_name_with_slash"]
    assert "anyOf" not in finished["properties"]["output"]


def test_list_workflows_gives_names_descriptions_tags_and_schemas(
    api_client: ApiClient, flow: Flow
) -> None:
    @flow.workflow(description="Says hello.", tags=["demo", "greetings"])
    async def hello(wf: WorkflowContext, data: Greeting) -> dict[str, int]:
        return {"chars": len(data.name)}

    @flow.workflow
    async def anything(wf: WorkflowContext, data: Any) -> Any:
        """Takes whatever it gets."""
        return data

    response = api_client.get("/workflows")

    assert response.status == 200
    by_name = {w["name"]: w for w in response.body["workflows"]}
    assert list(by_name) == ["anything", "hello"]
    assert by_name["hello"]["description"] == "Says hello."
    assert by_name["hello"]["tags"] == ["demo", "greetings"]
    assert by_name["hello"]["input_schema"]["properties"]["name"]["minLength"] == 1
    assert by_name["hello"]["output_schema"] == {
        "type": "object",
        "additionalProperties": {"type": "integer"},
    }
    assert by_name["anything"] == {
        "name": "anything",
        "description": "Takes whatever it gets.",
        "tags": [],
        "input_schema": {},
        "output_schema": {},
    }
    error_of(api_client.get("/workflows", authorizer=ANONYMOUS), 401, "Unauthorized")
    error_of(api_client.post("/workflows"), 405, "MethodNotAllowed")


def test_the_swagger_ui_is_served_at_docs_without_a_cdn(
    api_client: ApiClient, workflows: Any
) -> None:
    raw = api_client.handle(api_client.event("GET", "/docs", authorizer=ANONYMOUS), None)

    assert raw["statusCode"] == 200
    assert raw["headers"]["Content-Type"] == "text/html"
    page = raw["body"]
    assert "SwaggerUIBundle" in page
    assert "/workflows/greet/start" in page  # the typed document, not the generic one
    assert "unpkg.com" not in page
    assert "cdn.jsdelivr" not in page
    error_of(api_client.post("/docs"), 405, "MethodNotAllowed")


def test_docs_can_be_turned_off(
    flow: Flow, api_service: WorkflowService, lambda_context: FakeLambdaContext
) -> None:
    client = ApiClient(build_api(api_service, flow, docs=False).resolve, lambda_context)

    error_of(client.get("/docs"), 404, "NotFound")


# -- the Lambda handler ------------------------------------------------------------------------
HANDLER_FLOW = Flow()
"""The app ``lambda_flow.handlers.api`` loads in these tests (``LAMBDA_FLOW_APP``)."""


@HANDLER_FLOW.workflow(name="onboard_user")
async def quick_onboarding(wf: WorkflowContext, data: dict[str, Any]) -> dict[str, Any]:
    """Stands in for the example's onboarding in the sample events, without its sleep."""
    profile: dict[str, Any] = await wf.do(
        "Create profile", lambda: {"user_id": data["user_id"], "email": data["email"]}
    )
    return {"success": True, "profile": profile}


@pytest.fixture
def handler_client(
    api_handler_env: pytest.MonkeyPatch, lambda_context: FakeLambdaContext
) -> ApiClient:
    api_handler_env.setenv("LAMBDA_FLOW_APP", "tests.e2e.api.test_api:HANDLER_FLOW")
    return ApiClient(api_handler.handler, lambda_context)


def test_the_handler_answers_the_sample_events(handler_client: ApiClient) -> None:
    started = handler_client.send(load_event("api_start"))
    again = handler_client.send(load_event("api_start"))  # same Idempotency-Key
    ran = handler_client.send(load_event("api_run"))
    listed = handler_client.send(load_event("api_list_runs"))
    unknown = handler_client.send(load_event("api_get_run"))
    cancel_unknown = handler_client.send(load_event("api_cancel_run"))

    assert started.status == again.status == 202
    assert again.body == started.body
    assert ran.status == 200
    assert ran.body["status"] == "completed"
    assert ran.body["output"]["profile"] == {"user_id": "grace", "email": "grace@example.com"}
    assert run_ids(listed) == [ran.body["run_id"], started.body["run_id"]]
    error_of(unknown, 404, "RunNotFound")
    error_of(cancel_unknown, 404, "RunNotFound")


def test_the_handler_reads_allow_anonymous(
    handler_client: ApiClient, api_handler_env: pytest.MonkeyPatch
) -> None:
    event = handler_client.event(
        "POST",
        "/workflows/onboard_user/start",
        json_body={"user_id": "ada", "email": "ada@example.com"},
        authorizer=ANONYMOUS,
    )

    error_of(handler_client.send(event), 401, "Unauthorized")
    api_handler_env.setenv("LAMBDA_FLOW_ALLOW_ANONYMOUS", "true")
    assert handler_client.send(event).status == 202
    api_handler_env.setenv("LAMBDA_FLOW_ALLOW_ANONYMOUS", "maybe")
    with pytest.raises(ConfigurationError, match="LAMBDA_FLOW_ALLOW_ANONYMOUS"):
        handler_client.send(event)


def test_the_handler_takes_the_body_limit_from_the_settings(
    handler_client: ApiClient, api_handler_env: pytest.MonkeyPatch
) -> None:
    api_handler_env.setenv("LAMBDA_FLOW_MAX_BODY_BYTES", "32")

    error_of(handler_client.send(load_event("api_start")), 413, "PayloadTooLarge")


def test_the_handler_fails_loudly_without_settings(
    api_handler_env: pytest.MonkeyPatch, lambda_context: FakeLambdaContext
) -> None:
    api_handler_env.delenv("LAMBDA_FLOW_APP", raising=False)

    with pytest.raises(ConfigurationError, match="LAMBDA_FLOW_APP"):
        api_handler.handler(load_event("api_start"), lambda_context)


def test_the_tests_send_the_sam_sample_events() -> None:
    # One folder of events: what `sam local invoke -e events/...` gets is what the tests send.
    root = ROOT

    assert root / "events" == EVENTS_DIR
    assert list((root / "tests" / "events").glob("*.json")) == []
    assert [p.name for p in sorted(EVENTS_DIR.glob("api_*.json"))] == [
        "api_cancel_run.json", "api_get_run.json", "api_list_runs.json", "api_run.json",
        "api_start.json",
    ]  # fmt: skip

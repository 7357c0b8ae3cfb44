"""The web console through the API's resolver: pages, filters, escaping, auth, actions, CSRF.

Every request is a payload-v2 event (as ``lambda-flow dev`` and API Gateway send them) resolved
by ``build_api``; the service is inline on a real Postgres with a time-skipping clock.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

import pytest
from pydantic import BaseModel, Field

from lambda_flow import (
    AccessRequest,
    Flow,
    NonRetryableError,
    RunStatus,
    WorkflowContext,
    WorkflowService,
)
from lambda_flow.console import CONTENT_SECURITY_POLICY
from lambda_flow.testing import TimeSkippingClock
from tests.functional.console.conftest import ConsoleClient

XSS = "<script>window.__xss = 1</script>"


class Greeting(BaseModel):
    name: str = Field(min_length=1)
    times: int = 1
    loud: bool = False
    mood: Literal["happy", "calm"] = "calm"
    tags: list[str] = []


@pytest.fixture
def app(flow: Flow) -> Flow:
    @flow.workflow(description="Say hello, politely")
    async def greet(wf: WorkflowContext, data: Greeting) -> str:
        text = await wf.do("say hello", lambda: f"hello {data.name}" * data.times)
        return text.upper() if data.loud else text

    @flow.workflow
    async def approval(wf: WorkflowContext, data: dict[str, Any]) -> Any:
        decision = await wf.suspend("needs approval")
        return {"decision": decision}

    @flow.workflow
    async def webhook(wf: WorkflowContext, data: dict[str, Any]) -> Any:
        cb = await wf.callback("Payment", timeout="1d")
        return await cb.result()

    calls: list[int] = []

    @flow.workflow
    async def flaky(wf: WorkflowContext, data: dict[str, Any]) -> str:
        def sometimes() -> str:
            calls.append(1)
            if len(calls) % 2 == 1:
                raise ConnectionError("first try fails")
            return "ok"

        await wf.do("Charge", sometimes, retries=2, retry_delay="1s")
        await wf.sleep("Wait a bit", "5min")

        def boom() -> None:
            raise NonRetryableError("card declined")

        await wf.do("Ship", boom)
        return "never"

    @flow.workflow
    async def hostile(wf: WorkflowContext, data: dict[str, Any]) -> str:
        await wf.do(XSS, lambda: XSS)
        return XSS

    @flow.workflow
    async def child_job(wf: WorkflowContext, data: dict[str, Any]) -> str:
        return str(await wf.do("work", lambda: "done"))

    @flow.workflow
    async def parent_job(wf: WorkflowContext, data: dict[str, Any]) -> str:
        return str(await wf.child("Child", child_job, {}))

    @flow.function
    def first(data: Any) -> str:
        return "one"

    @flow.function
    def second(data: Any) -> str:
        raise NonRetryableError("no")

    flow.graph(
        "pipeline",
        nodes={"fetch": "first", "store": "second", "notify": "first"},
        config={"fetch": {"next": ["store", "notify"]}},
    )
    return flow


# -- the runs page --------------------------------------------------------------------------
def test_the_runs_page_lists_counts_and_links_each_run(
    console: ConsoleClient, service: WorkflowService, app: Flow, clock: TimeSkippingClock
) -> None:
    done = service.start("greet", {"name": "Ada"})
    clock.advance("1s")
    parked = service.start("approval", {})

    page = console.get("/console")

    assert page.status == 200
    assert page.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.ids("data-run-id") == [parked, done]  # newest first
    links = page.ids("href")
    assert f"/console/runs/{done}" in links
    assert f"/console/runs/{parked}" in links
    counts = {a["data-count-status"]: a for a in page.elements(tag="a") if "data-count-status" in a}
    assert set(counts) == {s.value for s in RunStatus}
    text = page.text()
    assert "completed 1" in text
    assert "suspended 1" in text
    assert "running 0" in text
    assert any(c.startswith("lf_console_csrf=") and "SameSite=Strict" in c for c in page.cookies)


def test_the_runs_page_filters_by_workflow_status_time_parent_and_text(
    console: ConsoleClient, service: WorkflowService, app: Flow, clock: TimeSkippingClock
) -> None:
    early = service.start("greet", {"name": "Ada"}, idempotency_key="order-7-greeting")
    clock.advance("1h")
    cut = clock.now()
    parked = service.start("approval", {})
    parent = service.start("parent_job", {})
    [child] = service.list_runs(parent_id=parent)

    assert console.get("/console", workflow="greet").ids("data-run-id") == [early]
    assert console.get("/console", status="suspended").ids("data-run-id") == [parked]
    after = console.get("/console", **{"from": cut.strftime("%Y-%m-%dT%H:%M:%S")})
    assert early not in after.ids("data-run-id")
    assert parked in after.ids("data-run-id")
    before = console.get("/console", to=cut.strftime("%Y-%m-%dT%H:%M:%S"))
    assert before.ids("data-run-id") == [early]
    assert console.get("/console", parent=parent).ids("data-run-id") == [child.id]
    assert console.get("/console", q="order-7").ids("data-run-id") == [early]
    assert console.get("/console", q=parked[:8]).ids("data-run-id") == [parked]
    assert console.get("/console", q=parked).ids("data-run-id") == [parked]
    assert console.get("/console", q="nothing-like-it").ids("data-run-id") == []


def test_the_runs_page_pages_with_a_cursor(
    console: ConsoleClient, service: WorkflowService, app: Flow, clock: TimeSkippingClock
) -> None:
    ids = []
    for i in range(25):
        clock.advance("1s")
        ids.append(service.start("greet", {"name": f"n{i}"}))
    first = console.get("/console", limit="20")
    [next_link] = [a["href"] for a in first.elements(tag="a", rel="next")]
    cursor = next_link.split("cursor=")[1].split("&")[0]
    second = console.get("/console", limit="20", cursor=cursor)

    assert first.ids("data-run-id") == ids[::-1][:20]
    assert second.ids("data-run-id") == ids[::-1][20:]
    assert not second.elements(tag="a", rel="next")


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ({"status": "sleeping"}, "unknown status"),
        ({"parent": "not-a-uuid"}, "must be a run id"),
        ({"from": "yesterday"}, "must be a date and time"),
        ({"cursor": "!!!"}, "cursor"),
    ],
)
def test_a_bad_filter_is_a_422_page(
    console: ConsoleClient, app: Flow, query: dict[str, str], problem: str
) -> None:
    page = console.get("/console", **query)

    assert page.status == 422
    assert problem in page.text()
    assert page.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY


def test_a_running_run_makes_the_list_refresh_itself(
    console: ConsoleClient, service: WorkflowService, app: Flow
) -> None:
    service.start("approval", {})
    assert console.get("/console").elements(id="live")[0]["data-active"] == "false"

    running = service.start("webhook", {})  # waits on a callback: still running
    assert service.get_run(running).status is RunStatus.RUNNING
    page = console.get("/console")
    live = page.elements(id="live")[0]
    fragment = console.get("/console", fragment="1")

    assert live["data-active"] == "true"
    assert live["data-live"].startswith("/console?")
    assert fragment.status == 200
    assert "<html" not in fragment.body
    assert running in fragment.ids("data-run-id")


# -- a run's page ---------------------------------------------------------------------------
def test_a_run_page_shows_its_timeline_history_errors_and_cost(
    console: ConsoleClient, service: WorkflowService, app: Flow
) -> None:
    run_id = service.start("flaky", {})
    page = console.get(f"/console/runs/{run_id}")

    assert page.status == 200
    rows = {e["data-step"]: e for e in page.elements(tag="g") if "data-step" in e}
    assert rows["Charge"]["data-status"] == "succeeded"
    assert rows["Charge"]["data-attempts"] == "2"  # one failure, one retry
    assert rows["Wait a bit"]["data-kind"] == "sleep"
    assert rows["Ship"]["data-status"] == "failed"
    bars = [e for e in page.elements(tag="rect") if "data-attempt" in e]
    assert any("retry" in e["class"] for e in bars)
    assert any("status-failed" in e["class"] for e in bars)
    history = [
        (e["data-step"], e["data-attempt"], e["data-status"])
        for e in page.elements(tag="tr")
        if "data-attempt" in e
    ]
    assert history == [
        ("Charge", "1", "failed"),
        ("Charge", "2", "succeeded"),
        ("Wait a bit", "1", "succeeded"),
        ("Ship", "1", "failed"),
    ]
    text = page.text()
    assert "ConnectionError: first try fails" in text
    assert "card declined" in text
    assert "Traceback" in text  # each failed attempt's stored traceback
    assert "Cost on AWS" in text
    assert "SQL statements" in text
    assert not page.elements(id="resume-form")  # finished: no resume, no cancel
    assert not page.elements(id="cancel-form")
    assert page.elements(id="fork-form")


def test_a_run_page_names_pending_callbacks_children_and_parent(
    console: ConsoleClient, service: WorkflowService, app: Flow
) -> None:
    waiting = service.start("webhook", {})
    [pending] = service.get_run(waiting).pending
    parent = service.start("parent_job", {})
    [child] = service.list_runs(parent_id=parent)

    page = console.get(f"/console/runs/{waiting}")
    parent_page = console.get(f"/console/runs/{parent}")
    child_page = console.get(f"/console/runs/{child.id}")

    assert pending.callback_id is not None
    assert pending.callback_id in page.ids("data-callback-id")
    assert page.elements(tag="tr", **{"data-pending-kind": "callback"})
    assert page.elements(id="live")[0]["data-active"] == "true"
    assert f"/console/runs/{child.id}" in parent_page.ids("href")
    assert f"/console/runs/{parent}" in child_page.ids("href")


def test_everything_from_a_run_is_escaped(
    console: ConsoleClient, service: WorkflowService, app: Flow
) -> None:
    run_id = service.start("hostile", {"note": XSS, XSS: "key"})
    pages = [
        console.get(f"/console/runs/{run_id}"),
        console.get(f"/console/runs/{run_id}", fragment="1"),
        console.get("/console"),
        console.get("/console/workflows/hostile"),
    ]

    for page in pages:
        assert "<script>window" not in page.body
        assert "<script" not in page.body.replace(
            '<script src="/console/static/console.js" defer></script>', ""
        )
    run_page = pages[0]
    assert "&lt;script&gt;window.__xss = 1&lt;/script&gt;" in run_page.body
    assert XSS in run_page.text()  # shown as text
    assert XSS in run_page.ids("data-step")


def test_a_large_value_is_cut_with_a_link_to_all_of_it(
    console: ConsoleClient, service: WorkflowService, app: Flow
) -> None:
    big = {"items": [f"item-{i:05d}" for i in range(2000)]}
    run_id = service.start("approval", big)
    page = console.get(f"/console/runs/{run_id}")
    whole = console.get(f"/console/runs/{run_id}/value", field="input")

    assert "Load the whole value" in page.text()
    assert "item-01999" not in page.body
    assert whole.status == 200
    assert whole.headers["Content-Type"].startswith("text/plain")
    assert "item-01999" in whole.body
    assert console.get(f"/console/runs/{run_id}/value", field="secret").status == 422


def test_a_graph_run_is_drawn_with_its_nodes_states(
    console: ConsoleClient, service: WorkflowService, app: Flow
) -> None:
    run_id = service.start("pipeline", {})
    page = console.get(f"/console/runs/{run_id}")
    states = {e["data-node"]: e["data-state"] for e in page.elements(tag="g") if "data-node" in e}
    workflow = console.get("/console/workflows/pipeline")

    assert states == {"fetch": "succeeded", "store": "failed", "notify": "succeeded"}
    assert "flowchart TD" in page.text()  # the Mermaid source, as text
    assert {e["data-node"] for e in workflow.elements(tag="g") if "data-node" in e} == {
        "fetch",
        "store",
        "notify",
    }


# -- workflows ------------------------------------------------------------------------------
def test_the_workflows_page_shows_descriptions_schemas_and_success_rates(
    console: ConsoleClient, service: WorkflowService, app: Flow
) -> None:
    service.start("greet", {"name": "Ada"})
    service.start("flaky", {})

    page = console.get("/console/workflows")
    detail = console.get("/console/workflows/greet")

    assert set(page.ids("data-workflow")) == set(app.workflows)
    assert "Say hello, politely" in page.text()
    assert "100% succeeded" in page.text()
    assert "0% succeeded" in page.text()
    names = {e["name"] for e in detail.elements() if e.get("name", "").startswith("field.")}
    assert names == {"field.name", "field.times", "field.loud", "field.mood", "field.tags"}
    assert '"minLength": 1' in detail.text()  # the input schema
    assert console.get("/console/workflows/nope").status == 404


def test_a_run_started_from_the_form_runs_with_the_typed_input(
    console: ConsoleClient, service: WorkflowService, app: Flow
) -> None:
    form = {
        "field.name": "Ada",
        "field.times": "2",
        "field.loud": "on",
        "field.mood": "happy",
        "field.tags": '["a"]',
    }
    done = console.act("/console/workflows/greet/start", form)

    assert done.status == 303
    run_id = done.headers["Location"].split("/console/runs/")[1].split("?")[0]
    run = service.get_run(run_id)
    assert run is not None
    assert run.input == {"name": "Ada", "times": 2, "loud": True, "mood": "happy", "tags": ["a"]}
    assert run.output == "HELLO ADAHELLO ADA"
    notice = console.get(done.headers["Location"].split("?")[0], done="started")
    assert "The run was started." in notice.text()


def test_a_start_form_with_bad_input_is_shown_again_with_the_problem(
    console: ConsoleClient, service: WorkflowService, app: Flow
) -> None:
    bad = console.post("/console/workflows/greet/start", {"field.name": "", "field.times": "x"})
    invalid = console.post(
        "/console/workflows/greet/start", {"field.name": "", "field.times": "1", "confirm": "yes"}
    )
    not_json = console.post("/console/workflows/greet/start", {"input_json": "{nope"})

    assert bad.status == 422
    assert "whole number" in bad.text()
    assert invalid.status == 422
    assert "name" in invalid.text()
    assert not_json.status == 422
    assert "not valid JSON" in not_json.text()
    assert service.list_runs() == []


# -- actions --------------------------------------------------------------------------------
def test_resume_asks_first_then_resumes_with_the_payload(
    console: ConsoleClient, service: WorkflowService, app: Flow
) -> None:
    run_id = service.start("approval", {})
    asked = console.post(f"/console/runs/{run_id}/resume", {"payload": '{"ok": true}'})

    assert asked.status == 200
    assert asked.elements(id="confirm-button")
    assert service.get_run(run_id).status is RunStatus.SUSPENDED  # nothing changed yet

    done = console.post(
        f"/console/runs/{run_id}/resume", {"payload": '{"ok": true}', "confirm": "yes"}
    )

    assert done.status == 303
    assert done.headers["Location"] == f"/console/runs/{run_id}?done=resumed"
    run = service.get_run(run_id)
    assert (run.status, run.output) == (RunStatus.COMPLETED, {"decision": {"ok": True}})


def test_cancel_and_callbacks_change_the_run(
    console: ConsoleClient, service: WorkflowService, app: Flow
) -> None:
    parked = service.start("approval", {})
    paid = service.start("webhook", {})
    refused = service.start("webhook", {})
    [paid_cb] = service.get_run(paid).pending
    [refused_cb] = service.get_run(refused).pending

    assert console.act(f"/console/runs/{parked}/cancel", {"reason": "not needed"}).status == 303
    assert (
        console.act(
            f"/console/callbacks/{paid_cb.callback_id}/succeed", {"payload": '{"amount": 3}'}
        ).status
        == 303
    )
    assert (
        console.act(
            f"/console/callbacks/{refused_cb.callback_id}/fail", {"error": "card declined"}
        ).status
        == 303
    )

    cancelled = service.get_run(parked)
    assert cancelled.status is RunStatus.CANCELLED
    assert cancelled.error is not None
    assert "not needed" in cancelled.error.message
    assert service.get_run(paid).output == {"amount": 3}
    failed = service.get_run(refused)
    assert failed.status is RunStatus.FAILED
    assert "card declined" in str(failed.error)
    again = console.act(f"/console/runs/{parked}/cancel", {"reason": "twice"})
    assert again.status == 409  # finished: a page, not a 5xx


def test_fork_from_a_step_starts_a_new_run(
    console: ConsoleClient, service: WorkflowService, app: Flow
) -> None:
    source = service.start("flaky", {})
    done = console.act(f"/console/runs/{source}/fork", {"from_step": "Ship"})

    assert done.status == 303
    new_id = done.headers["Location"].split("/console/runs/")[1].split("?")[0]
    forked = service.get_run(new_id)
    assert forked is not None
    assert forked.forked_from == {"run_id": source, "step_key": "Ship"}
    page = console.get(f"/console/runs/{new_id}")
    assert "(copied by the fork)" in page.text()
    unknown = console.act(f"/console/runs/{source}/fork", {"from_step": "Nope"})
    assert unknown.status == 422


def test_bad_payloads_are_4xx_pages_and_change_nothing(
    console: ConsoleClient, service: WorkflowService, app: Flow
) -> None:
    run_id = service.start("approval", {})

    not_json = console.post(f"/console/runs/{run_id}/resume", {"payload": "{", "confirm": "yes"})
    unknown = console.post(
        "/console/runs/00000000-0000-0000-0000-000000000000/cancel", {"confirm": "yes"}
    )
    no_callback = console.post("/console/callbacks/cb_nope/succeed", {"confirm": "yes"})
    no_action = console.post(f"/console/runs/{run_id}/explode", {})
    wrong_method = console.get(f"/console/runs/{run_id}/resume")

    assert not_json.status == 422
    assert unknown.status == 404
    assert no_callback.status == 404
    assert no_action.status == 404
    assert wrong_method.status == 404
    assert console.get("/console/nowhere/at/all").status == 404
    assert service.get_run(run_id).status is RunStatus.SUSPENDED


# -- CSRF -----------------------------------------------------------------------------------
def test_a_post_from_another_site_or_without_the_token_is_refused(
    console: ConsoleClient, service: WorkflowService, app: Flow
) -> None:
    run_id = service.start("approval", {})
    path = f"/console/runs/{run_id}/cancel"
    confirm = {"confirm": "yes"}

    no_token = console.post(path, confirm, token="")
    wrong_token = console.post(path, confirm, token="x" * 43)
    cross_site = console.request(
        "POST",
        path,
        form={"csrf": console.cookies["lf_console_csrf"], **confirm},
        headers={"sec-fetch-site": "cross-site", "origin": "https://evil.example"},
    )
    other_origin = console.request(
        "POST",
        path,
        form={"csrf": console.cookies["lf_console_csrf"], **confirm},
        headers={"origin": "https://evil.example"},
    )
    console.cookies.clear()
    no_cookie = console.request("POST", path, form={"csrf": "x" * 43, **confirm})

    for page in (no_token, wrong_token, cross_site, other_origin, no_cookie):
        assert page.status == 403, page.text()
        assert "CSRF" in page.text()
    assert service.get_run(run_id).status is RunStatus.SUSPENDED


# -- auth -----------------------------------------------------------------------------------
def test_anonymous_callers_get_401_unless_the_api_allows_them(
    service: WorkflowService, app: Flow
) -> None:
    strict = ConsoleClient(service, app)
    strict.identity = None
    open_one = ConsoleClient(service, app, allow_anonymous=True)
    open_one.identity = None

    refused = strict.get("/console")

    assert refused.status == 401
    assert "authenticated caller" in refused.text()
    assert strict.get("/console/static/console.css").status == 200  # no data in it
    assert open_one.get("/console").status == 200


def test_the_authorize_hook_decides_what_the_console_shows_and_does(
    service: WorkflowService, flow: Flow
) -> None:
    asked: list[AccessRequest] = []

    def only_reads(request: AccessRequest) -> bool:
        asked.append(request)
        return request.action == "read"

    @flow.workflow(authorize=only_reads)
    async def guarded(wf: WorkflowContext, data: dict[str, Any]) -> None:
        await wf.suspend("wait")

    @flow.workflow(authorize=lambda request: False)
    async def secret(wf: WorkflowContext, data: dict[str, Any]) -> None:
        await wf.suspend("wait")

    console = ConsoleClient(service, flow)
    visible = service.start("guarded", {})
    hidden = service.start("secret", {})

    listing = console.get("/console")
    refused_page = console.get(f"/console/runs/{hidden}")
    refused_cancel = console.post(f"/console/runs/{visible}/cancel", {"confirm": "yes"})
    refused_start = console.post("/console/workflows/guarded/start", {"input_json": "{}"})

    assert listing.ids("data-run-id") == [visible]
    assert refused_page.status == 403
    assert refused_cancel.status == 403
    assert refused_start.status == 403
    assert service.get_run(visible).status is RunStatus.SUSPENDED
    assert len(service.list_runs()) == 2
    assert {(r.action, r.workflow) for r in asked} >= {("read", "guarded"), ("cancel", "guarded")}
    assert all(r.caller.kind == "iam" for r in asked)


def test_the_console_can_be_turned_off(service: WorkflowService, app: Flow) -> None:
    off = ConsoleClient(service, app, console=False)

    page = off.get("/console")

    assert page.status == 404
    assert page.headers["Content-Type"] == "application/json"


def test_static_assets_are_served_with_their_types(console: ConsoleClient) -> None:
    css = console.get("/console/static/console.css")
    js = console.get("/console/static/console.js")

    assert css.headers["Content-Type"].startswith("text/css")
    assert js.headers["Content-Type"].startswith("text/javascript")
    assert "fetch(" in js.body
    assert console.get("/console/static/evil.js").status == 404


def test_the_timeline_runs_to_now_while_a_run_waits(
    console: ConsoleClient, service: WorkflowService, app: Flow, clock: TimeSkippingClock
) -> None:
    run_id = service.start("webhook", {})
    clock.advance(timedelta(minutes=5))
    page = console.get(f"/console/runs/{run_id}")
    [wait] = [e for e in page.elements(tag="line") if e.get("data-attempt")]

    assert "status-scheduled" in wait["class"]
    assert float(wait["x2"]) > float(wait["x1"]) + 500  # it spans the five minutes so far

"""The callback routes and resume payloads over HTTP (issue 12, items 1 and 7), inline mode."""

from __future__ import annotations

from typing import Any

import pytest

from lambda_flow import AccessRequest, Flow, WorkflowContext, WorkflowService
from tests.e2e.conftest import ApiClient, jwt_authorizer


@pytest.fixture
def waiting(flow: Flow) -> list[AccessRequest]:
    asked: list[AccessRequest] = []

    @flow.workflow
    async def pay(wf: WorkflowContext) -> Any:
        return await (await wf.callback("paid", heartbeat_timeout="1h")).result()

    def only_alice(request: AccessRequest) -> bool:
        asked.append(request)
        return request.caller.principal == "alice"

    @flow.workflow(authorize=only_alice)
    async def guarded_pay(wf: WorkflowContext) -> Any:
        return await (await wf.callback("paid")).result()

    @flow.workflow(authorize=only_alice)
    async def approval(wf: WorkflowContext) -> Any:
        return {"decision": await wf.suspend("approve")}

    return asked


def _start(client: ApiClient, workflow: str) -> tuple[str, str | None]:
    response = client.post(f"/workflows/{workflow}/start")
    assert response.status == 202, response.body
    run_id = str(response.body["run_id"])
    run = client.get(f"/runs/{run_id}").body
    pending = run["pending"]
    return run_id, (pending[0]["callback_id"] if pending else None)


def test_succeed_completes_the_run_and_repeats_answer_the_same(
    api_client: ApiClient, waiting: Any
) -> None:
    run_id, callback_id = _start(api_client, "pay")
    run = api_client.get(f"/runs/{run_id}").body
    assert run["status"] == "running"
    assert [(p["kind"], p["name"]) for p in run["pending"]] == [("callback", "paid")]

    first = api_client.post(f"/callbacks/{callback_id}/succeed", json_body={"ok": 1})
    again = api_client.post(f"/callbacks/{callback_id}/succeed", json_body={"ok": 1})
    assert first.status == again.status == 200
    assert first.body == again.body == {"callback_id": callback_id, "status": "succeeded"}
    assert api_client.get(f"/runs/{run_id}").body["output"] == {"ok": 1}

    other = api_client.post(f"/callbacks/{callback_id}/succeed", json_body={"ok": 2})
    assert other.status == 409
    assert other.body["error"]["type"] == "CallbackConflict"


def test_fail_and_heartbeat(api_client: ApiClient, waiting: Any) -> None:
    run_id, callback_id = _start(api_client, "pay")
    beat = api_client.post(f"/callbacks/{callback_id}/heartbeat")
    assert beat.status == 200
    assert beat.body["status"] == "heartbeat"
    failed = api_client.post(
        f"/callbacks/{callback_id}/fail", json_body={"error": "declined", "type": "Declined"}
    )
    assert failed.status == 200
    run = api_client.get(f"/runs/{run_id}").body
    assert run["status"] == "failed"
    assert "Declined: declined" in run["error"]["message"]


def test_unknown_callbacks_are_404_and_bad_bodies_422(
    api_client: ApiClient, waiting: Any, api_rows: Any
) -> None:
    for action in ("succeed", "fail", "heartbeat"):
        body = {"error": "x"} if action == "fail" else None
        response = api_client.post(f"/callbacks/nope/{action}", json_body=body)
        assert response.status == 404
        assert response.body["error"]["type"] == "CallbackNotFound"
    _, callback_id = _start(api_client, "pay")
    before = api_rows()
    bad = api_client.post(f"/callbacks/{callback_id}/fail", json_body={"reason": "x"})
    assert bad.status == 422
    assert api_rows() == before


def test_the_authorize_hook_is_asked_for_callback_actions(
    api_client: ApiClient, waiting: list[AccessRequest]
) -> None:
    _, callback_id = _start(api_client, "guarded_pay")
    refused = api_client.post(
        f"/callbacks/{callback_id}/succeed", json_body=1, authorizer=jwt_authorizer("mallory")
    )
    assert refused.status == 403
    assert waiting[-1].action == "callback"
    assert api_client.post(f"/callbacks/{callback_id}/succeed", json_body=1).status == 200


def test_resume_with_a_payload_and_without_a_body(
    api_client: ApiClient, waiting: Any, api_service: WorkflowService
) -> None:
    with_payload, _ = _start(api_client, "approval")
    without, _ = _start(api_client, "approval")
    first = api_client.post(f"/runs/{with_payload}/resume", json_body={"payload": {"ok": True}})
    second = api_client.post(f"/runs/{without}/resume")
    assert first.status == second.status == 200
    assert first.body["output"] == {"decision": {"ok": True}}
    assert second.body["output"] == {"decision": None}
    bad = api_client.post(f"/runs/{with_payload}/resume", json_body={"decision": 1})
    assert bad.status == 422

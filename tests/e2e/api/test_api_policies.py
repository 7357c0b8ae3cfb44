"""The HTTP side of run deadlines and cancellation with cleanup (issue 12, items 4 and 6):
``?run_timeout=`` on start and run, ``cleanup_timeout`` in the cancel body, bad values 422
naming the option and writing nothing."""

from __future__ import annotations

from typing import Any

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

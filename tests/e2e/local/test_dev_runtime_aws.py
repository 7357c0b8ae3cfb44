"""``DevRuntime`` on real SQS and Scheduler APIs (a moto server standing in for LocalStack)."""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

import boto3
import pytest

from examples.onboarding import flow
from lambda_flow.local.dev import DevRuntime
from tests.e2e import aws

moto_server = aws.moto_server


def _call(url: str, method: str = "GET", body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - loopback
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return json.load(response)


@pytest.fixture
def runtime(moto_server: str, database_url: str, schema: str, monkeypatch: Any) -> Any:
    aws.reset_moto(moto_server)
    for name, value in aws.aws_environment(moto_server).items():
        monkeypatch.setenv(name, value)
    dev = DevRuntime(
        flow,
        database_url=database_url,
        schema=schema,
        port=0,
        sqs_client=boto3.client("sqs"),
        scheduler_client=boto3.client("scheduler"),
    )
    with dev:
        yield dev


def _wait_for(runtime: DevRuntime, run_id: str, status: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    run: dict[str, Any] = {}
    while time.monotonic() < deadline:  # real SQS delays run on real time: poll
        run = _call(f"{runtime.url}/runs/{run_id}")
        if run["status"] == status:
            return run
        time.sleep(0.1)
    raise AssertionError(f"run never reached {status}: {run}")


def test_onboarding_runs_over_real_sqs_queues(runtime: DevRuntime) -> None:
    started = _call(
        f"{runtime.url}/workflows/onboard_user/start",
        "POST",
        {"email": "ada@example.com", "user_id": "ada", "welcome_delay": "1s"},
    )

    run = _wait_for(runtime, started["run_id"], "completed")

    assert run["output"]["workspace_id"] == "ws-ada"
    sqs = boto3.client("sqs")
    names = sorted(url.rsplit("/", 1)[1] for url in sqs.list_queues()["QueueUrls"])
    assert names == [
        "lambda-flow-dev-orchestrator",
        "lambda-flow-dev-orchestrator-dlq",
        "lambda-flow-dev-step",
        "lambda-flow-dev-step-dlq",
    ]


def test_a_long_sleep_becomes_a_schedule(runtime: DevRuntime) -> None:
    started = _call(
        f"{runtime.url}/workflows/onboard_user/start",
        "POST",
        {"email": "ada@example.com", "user_id": "ada", "welcome_delay": "2h"},
    )
    run_id = started["run_id"]

    deadline = time.monotonic() + 30
    schedules: list[dict[str, Any]] = []
    scheduler = boto3.client("scheduler")
    while time.monotonic() < deadline and not schedules:
        schedules = scheduler.list_schedules(GroupName="lambda-flow-dev")["Schedules"]
        time.sleep(0.1)

    assert [s["Name"] for s in schedules] == [
        f"lf-{run_id}-{int(runtime.service.get_run(run_id).wake_at.timestamp())}"  # type: ignore[union-attr]
    ]

"""Where ``start``, ``run`` and ``resume`` have runs driven (issue 11, item 5).

With a queue configured they queue the run for the workers; with a ``lambda-flow dev`` serving
the same database they ask its API; the CLI process itself never runs the workflow then.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest
from moto import mock_aws

from lambda_flow.cli import main
from lambda_flow.local.dev import DevRuntime
from lambda_flow.local.dev_endpoint import DevEndpoint, endpoint_file, find_dev, published
from tests.conftest import count_rows
from tests.functional.cli.test_cli import APP, app


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LAMBDA_FLOW_HOME", str(tmp_path))
    for name in ("LAMBDA_FLOW_ORCHESTRATOR_QUEUE_URL", "LAMBDA_FLOW_STEP_QUEUE_URL"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def _cli(
    capsys: pytest.CaptureFixture[str], database_url: str, schema: str, *args: str
) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["--database-url", database_url, "--schema", schema, "--app", APP, *args])
    out, err = capsys.readouterr()
    return code, out, err


def _field(out: str, name: str) -> str:
    return next(line.split(None, 1)[1] for line in out.splitlines() if line.startswith(name))


@pytest.mark.usefixtures("home", "store")
def test_with_a_queue_start_only_queues_the_run(
    database_url: str,
    schema: str,
    db: psycopg.Connection[Any],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        sqs = boto3.client("sqs")
        orchestrator = sqs.create_queue(QueueName="lf-orchestrator")["QueueUrl"]
        step = sqs.create_queue(QueueName="lf-step")["QueueUrl"]
        monkeypatch.setenv("LAMBDA_FLOW_ORCHESTRATOR_QUEUE_URL", orchestrator)
        monkeypatch.setenv("LAMBDA_FLOW_STEP_QUEUE_URL", step)

        code, out, err = _cli(
            capsys, database_url, schema, "start", "double", "--input", '{"x": 1}'
        )

        assert (code, err) == (0, "")
        run_id = _field(out, "run_id")
        assert _field(out, "status") == "running"
        assert f"queued for the workers of {orchestrator}" in out
        assert count_rows(db, "step_attempts") == 0  # nothing ran in the CLI process
        [message] = sqs.receive_message(QueueUrl=orchestrator)["Messages"]
        assert json.loads(message["Body"]) == {"run_id": run_id}


@pytest.mark.usefixtures("home", "store")
def test_a_queue_url_without_the_step_queue_is_a_usage_error(
    database_url: str,
    schema: str,
    db: psycopg.Connection[Any],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LAMBDA_FLOW_ORCHESTRATOR_QUEUE_URL", "https://sqs.example/1/q")

    code, out, err = _cli(capsys, database_url, schema, "start", "double", "--input", '{"x": 1}')

    assert (code, out) == (2, "")
    assert "LAMBDA_FLOW_STEP_QUEUE_URL" in err
    assert count_rows(db, "runs") == 0


@pytest.fixture
def dev(home: Path, database_url: str, schema: str, store: Any) -> Iterator[DevRuntime]:
    """A dev runtime on the test's database, announced in ``home`` as ``lambda-flow dev`` does."""
    runtime = DevRuntime(app, database_url=database_url, schema=schema, port=0)
    with runtime:
        endpoint = DevEndpoint(runtime.url, os.getpid(), database_url, schema)
        with published(endpoint):
            yield runtime


def test_with_lambda_flow_dev_running_start_goes_through_its_api(
    dev: DevRuntime,
    database_url: str,
    schema: str,
    db: psycopg.Connection[Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = _cli(capsys, database_url, schema, "start", "approve_order", "--input",
                          '{"order_id": "o-1", "amount": 2}')  # fmt: skip

    assert (code, err) == (0, "")
    run_id = _field(out, "run_id")
    assert f"queued for lambda-flow dev at {dev.url}" in out

    # dev's workers drive it; `watch` polls the store until it rests (suspended here).
    code, out, _ = _cli(capsys, database_url, schema, "watch", run_id)
    assert code == 0
    assert "succeeded  Reserve stock  inline #1" in out
    assert _field(out, "status") == "suspended"

    code, out, _ = _cli(capsys, database_url, schema, "resume", run_id, "--follow")
    assert code == 0
    assert _field(out, "status") == "completed"


def test_run_through_dev_waits_for_the_output(
    dev: DevRuntime, database_url: str, schema: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _cli(capsys, database_url, schema, "run", "double", "--input", '{"x": 3}')

    assert (code, err) == (0, "")
    assert json.loads(out) == 6


def test_dev_serving_another_schema_or_a_dead_dev_is_ignored(
    home: Path, database_url: str, schema: str
) -> None:
    other = DevEndpoint("http://127.0.0.1:9", os.getpid(), database_url, "another_schema")
    with published(other):
        assert find_dev(database_url, schema) is None
        assert find_dev(database_url, "another_schema") == other
    assert not endpoint_file().exists()  # withdrawn when dev stops

    dead_pid = 2**22 + 12345  # above Linux's pid_max default: no such process
    with published(DevEndpoint("http://127.0.0.1:9", dead_pid, database_url, schema)):
        assert find_dev(database_url, schema) is None
        assert not endpoint_file().exists()  # a stale file is removed

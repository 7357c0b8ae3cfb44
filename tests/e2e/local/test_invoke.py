"""``lambda-flow invoke``: one handler, one event, as ``sam local invoke`` would run it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lambda_flow.cli import main
from tests import ROOT
from tests.conftest import count_rows

EVENTS = ROOT / "events"


def invoke(capsys: Any, database_url: str, schema: str, *args: str) -> tuple[int, Any, str]:
    code = main(
        [
            "--app", "examples.onboarding:flow", "--database-url", database_url,
            "--schema", schema, "invoke", *args,
        ]
    )  # fmt: skip
    out, err = capsys.readouterr()
    return code, (json.loads(out) if code == 0 else None), err


def test_api_then_orchestrator_then_step_worker(
    capsys: Any, database_url: str, schema: str, tmp_path: Path, db: Any
) -> None:
    code, api, _ = invoke(capsys, database_url, schema, "Api", "-e", str(EVENTS / "api_start.json"))
    assert code == 0
    assert api["response"]["statusCode"] == 202
    run_id = json.loads(api["response"]["body"])["run_id"]
    # Remote mode, as in Lambda: the Api function only stored the run and queued its first job.
    assert api["queued"] == [
        {"queue": "orchestrator", "body": json.dumps({"run_id": run_id}, separators=(",", ":")),
         "delay_seconds": 0}
    ]  # fmt: skip

    sqs = json.loads((EVENTS / "sqs_orchestrator.json").read_text())
    sqs["Records"][0]["body"] = api["queued"][0]["body"]
    event = tmp_path / "orchestrator.json"
    event.write_text(json.dumps(sqs))
    code, orchestrated, _ = invoke(capsys, database_url, schema, "Orchestrator", "-e", str(event))
    assert code == 0
    assert orchestrated["response"] == {"batchItemFailures": []}
    [job] = orchestrated["queued"]
    assert job["queue"] == "step"
    assert json.loads(job["body"]) == {"run_id": run_id, "step_key": "Create profile", "attempt": 1}

    sqs["Records"][0]["body"] = job["body"]
    event.write_text(json.dumps(sqs))
    code, worked, _ = invoke(capsys, database_url, schema, "StepWorker", "-e", str(event))
    assert code == 0
    assert worked["response"] == {"batchItemFailures": []}
    # The worker carried the run on: the inline greeting ran and the 2s sleep became a delay.
    assert [(q["queue"], q["delay_seconds"]) for q in worked["queued"]] == [("orchestrator", 2)]
    assert count_rows(db, "step_attempts") == 3


def test_a_poison_message_is_reported_as_a_batch_item_failure(
    capsys: Any, database_url: str, schema: str
) -> None:
    code, result, _ = invoke(
        capsys, database_url, schema, "Orchestrator", "-e", str(EVENTS / "sqs_orchestrator.json")
    )
    assert code == 0  # the sample names a run this database does not have
    sample = json.loads((EVENTS / "sqs_orchestrator.json").read_text())
    failed = [{"itemIdentifier": sample["Records"][0]["messageId"]}]
    assert result["response"]["batchItemFailures"] == failed


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["Nope", "-e", str(EVENTS / "api_start.json")], "unknown function 'Nope'"),
        (["Api", "-e", "/no/such/file.json"], "cannot read event file"),
        (["QueueStart", "-e", str(EVENTS / "sqs_queue_start.json")], "name it with --workflow"),
    ],
)
def test_bad_invocations_name_the_problem(
    capsys: Any, database_url: str, schema: str, args: list[str], problem: str
) -> None:
    code, _, err = invoke(capsys, database_url, schema, *args)
    assert code == 2
    assert problem in err
    assert len(err.strip().splitlines()) == 1


def test_an_event_file_that_is_not_json(
    capsys: Any, database_url: str, schema: str, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{nope")
    code, _, err = invoke(capsys, database_url, schema, "Api", "-e", str(broken))
    assert code == 2
    assert "is not valid JSON" in err

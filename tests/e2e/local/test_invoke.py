"""``lambda-flow invoke``: one handler, one event, as ``sam local invoke`` would run it."""

from __future__ import annotations

import json
import time
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
    capsys: Any, database_url: str, schema: str, tmp_path: Path
) -> None:
    sample = json.loads((EVENTS / "sqs_orchestrator.json").read_text())
    del sample["lambda_flow_sample_run"]  # no stand-in: the run it names does not exist
    event = tmp_path / "poison.json"
    event.write_text(json.dumps(sample))
    code, result, _ = invoke(capsys, database_url, schema, "Orchestrator", "-e", str(event))
    assert code == 0
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


# -- the sample events work out of the box (issue 11, item 10) -------------------------------
SAMPLES = {
    "api_get_run.json": ("Api", lambda r: r["statusCode"] == 200),
    "api_cancel_run.json": (
        "Api",
        # Remote: the cancellation is requested and one pass queued to deliver it.
        lambda r: r["statusCode"] == 200 and json.loads(r["body"])["status"] == "running",
    ),
    "api_list_runs.json": ("Api", lambda r: r["statusCode"] == 200),
    "sqs_orchestrator.json": ("Orchestrator", lambda r: r == {"batchItemFailures": []}),
    "sqs_step.json": ("StepWorker", lambda r: r == {"batchItemFailures": []}),
    "sweeper.json": ("Sweeper", lambda r: "runs" in r),
}


@pytest.mark.parametrize(("name", "expected"), SAMPLES.items(), ids=SAMPLES.keys())
def test_every_sample_event_works_on_an_empty_database(
    capsys: Any, database_url: str, schema: str, name: str, expected: tuple[str, Any]
) -> None:
    function, ok = expected
    code, result, err = invoke(capsys, database_url, schema, function, "-e", str(EVENTS / name))

    assert code == 0, err
    assert ok(result["response"]), result
    if "run_id" in (EVENTS / name).read_text():
        assert "using stand-in run" in err


def test_the_step_sample_runs_the_stand_ins_first_step(
    capsys: Any, database_url: str, schema: str, db: Any
) -> None:
    code, _, _ = invoke(
        capsys, database_url, schema, "StepWorker", "-e", str(EVENTS / "sqs_step.json")
    )

    assert code == 0
    row = db.execute("SELECT status FROM steps WHERE step_key = 'Create profile'").fetchone()
    assert row == ("succeeded",)


def test_the_run_sample_runs_inline_instead_of_waiting_on_an_undrained_queue(
    capsys: Any, database_url: str, schema: str
) -> None:
    started = time.monotonic()
    code, result, _ = invoke(
        capsys, database_url, schema, "Api", "-e", str(EVENTS / "api_run.json")
    )

    assert code == 0
    assert result["response"]["statusCode"] == 200
    assert json.loads(result["response"]["body"])["status"] == "completed"
    assert result["queued"] == []
    assert time.monotonic() - started < 15  # its timeout is 20s: it did not wait it out

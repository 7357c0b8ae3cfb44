"""The SQS partial batch response loop of the queue handlers, and what a cold start imports."""

import subprocess
import sys
from typing import Any

import pytest

from lambda_flow.aws._sqs_batch import SQSRecord, process_partial_response


def _record(message_id: str, body: str, receives: int = 1) -> dict[str, Any]:
    return {
        "messageId": message_id,
        "receiptHandle": f"handle-{message_id}",
        "body": body,
        "attributes": {"ApproximateReceiveCount": str(receives), "SentTimestamp": "1"},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q",
        "awsRegion": "us-east-1",
    }


def test_every_record_is_handled_in_order_and_none_reported_when_all_succeed() -> None:
    seen: list[tuple[str, str, str | None]] = []

    def handle(record: SQSRecord) -> None:
        seen.append((record.message_id, record.body, record.attributes.approximate_receive_count))

    event = {"Records": [_record("a", "1"), _record("b", "2", receives=3)]}

    assert process_partial_response(event, handle) == {"batchItemFailures": []}
    assert seen == [("a", "1", "1"), ("b", "2", "3")]


def test_failed_records_are_reported_by_message_id_and_the_batch_goes_on() -> None:
    seen: list[str] = []

    def handle(record: SQSRecord) -> None:
        seen.append(record.message_id)
        if record.body == "bad":
            raise ValueError("bad body")

    event = {"Records": [_record("a", "bad"), _record("b", "ok"), _record("c", "bad")]}

    assert process_partial_response(event, handle) == {
        "batchItemFailures": [{"itemIdentifier": "a"}, {"itemIdentifier": "c"}]
    }
    assert seen == ["a", "b", "c"]


def test_a_batch_whose_every_record_fails_is_reported_not_raised() -> None:
    def handle(record: SQSRecord) -> None:
        raise RuntimeError("down")

    event = {"Records": [_record("a", "x"), _record("b", "y")]}

    assert process_partial_response(event, handle) == {
        "batchItemFailures": [{"itemIdentifier": "a"}, {"itemIdentifier": "b"}]
    }


@pytest.mark.parametrize("event", [{}, {"Records": []}, {"Records": "x"}, [], None])
def test_an_event_that_is_no_sqs_batch_is_refused(event: Any) -> None:
    with pytest.raises(ValueError, match="SQS"):
        process_partial_response(event, lambda record: None)


def test_a_record_without_attributes_has_no_receive_count() -> None:
    record = SQSRecord({"messageId": "m", "body": "b"})
    assert record.attributes.approximate_receive_count is None
    assert record.attributes.message_group_id is None


def test_the_queue_handlers_import_no_boto3_no_powertools_batch_and_no_graph_compiler() -> None:
    """What a cold start of the queue handlers no longer pays for (issue 14)."""
    code = (
        "import sys; import lambda_flow; import lambda_flow.aws.workers, lambda_flow.aws.runtime;"
        "import lambda_flow.transport.sqs, lambda_flow.transport.scheduler;"
        "from lambda_flow import Flow; Flow();"
        "heavy = ['boto3', 's3transfer', 'aws_lambda_powertools.utilities.batch',"
        " 'aws_lambda_powertools.utilities.data_classes', 'lambda_flow.graph._compile',"
        " 'lambda_flow.graph._model'];"
        "print([name for name in heavy if name in sys.modules])"
    )
    done = subprocess.run(  # noqa: S603 - this interpreter
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"


def test_botocore_clients_share_one_session_whose_loader_finds_the_services_asked_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from botocore.exceptions import UnknownServiceError

    from lambda_flow.transport import _aws

    for name, value in {
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    _aws.reset_aws_session()
    try:
        sqs = _aws.aws_client("sqs")
        scheduler = _aws.aws_client("scheduler")
        assert sqs.meta.service_model.service_name == "sqs"
        assert sqs.meta.region_name == "eu-west-1"
        assert scheduler.can_paginate("list_schedules")  # paginators-1 found too
        assert hasattr(scheduler.exceptions, "ConflictException")
        loader = _aws._session.get_component("data_loader")
        assert {"sqs", "scheduler"} <= set(loader.list_available_services("service-2"))
        # the same data as botocore's own loader reads, decoded into plain dicts (a fraction of
        # the time: endpoints.json is read by every first client)
        from botocore.loaders import Loader

        fresh = _aws._loader(_aws._session)  # the session's copy has the client's additions
        endpoints = fresh.load_data("endpoints")
        assert type(endpoints) is dict
        assert endpoints == Loader().load_data("endpoints")
        assert fresh.load_service_model("sqs", "service-2") == Loader().load_service_model(
            "sqs", "service-2"
        )
        with pytest.raises(UnknownServiceError):
            _aws.aws_client("no-such-service")
    finally:
        _aws.reset_aws_session()

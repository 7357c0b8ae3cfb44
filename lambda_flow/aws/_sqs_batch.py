"""SQS partial batch responses: each record handled on its own, the failed ones reported.

What lambda-flow used of powertools' ``BatchProcessor`` (``EventType.SQS``,
``raise_on_entire_batch_failure=False``), without its import: that utility imports every event
data class and its parser models, ~45 ms of every cold start. The contract with the event source
mapping (``ReportBatchItemFailures``) is the same: ``{"batchItemFailures": [{"itemIdentifier":
<messageId>}, ...]}``, empty when every record succeeded, and a batch whose every record fails is
reported record by record too, never raised, so exactly those come back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any


class SQSRecordAttributes:
    """The system attributes of an SQS record (those lambda-flow reads)."""

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._data = data

    @property
    def approximate_receive_count(self) -> str | None:
        """How many times the message has been received (``ApproximateReceiveCount``)."""
        value = self._data.get("ApproximateReceiveCount")
        return None if value is None else str(value)

    @property
    def message_group_id(self) -> str | None:
        """The FIFO message group, if any (``MessageGroupId``)."""
        value = self._data.get("MessageGroupId")
        return None if value is None else str(value)


class SQSRecord:
    """One record of an SQS event, read-only (the fields of powertools' ``SQSRecord`` used here)."""

    __slots__ = ("raw_event",)

    def __init__(self, raw_event: Mapping[str, Any]) -> None:
        self.raw_event = raw_event

    @property
    def message_id(self) -> str:
        return str(self.raw_event["messageId"])

    @property
    def body(self) -> str:
        return str(self.raw_event.get("body") or "")

    @property
    def attributes(self) -> SQSRecordAttributes:
        return SQSRecordAttributes(self.raw_event.get("attributes") or {})


def process_partial_response(
    event: Mapping[str, Any], record_handler: Callable[[SQSRecord], object]
) -> dict[str, list[dict[str, str]]]:
    """Call ``record_handler`` on each record of ``event``, in order; report those that raised.

    Raises:
        ValueError: ``event`` is not an SQS batch (no ``Records`` list, or an empty one).
    """
    records = event.get("Records") if isinstance(event, Mapping) else None
    if not records or not isinstance(records, list):
        raise ValueError("Unexpected batch event type: expected an SQS event with Records")
    failures: list[dict[str, str]] = []
    for raw in records:
        record = SQSRecord(raw)
        try:
            record_handler(record)
        except Exception:  # noqa: BLE001 - a failing record is reported, the batch goes on
            failures.append({"itemIdentifier": record.message_id})
    return {"batchItemFailures": failures}

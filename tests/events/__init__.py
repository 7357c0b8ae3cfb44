"""The sample Lambda events of ``events/`` (shaped like ``sam local generate-event`` output).

One folder serves ``sam local invoke -e events/...``, ``lambda-flow invoke -e events/...`` and
the tests: ``api_*.json`` are API Gateway HTTP API (payload v2) requests, ``sqs_*.json`` SQS
batches, ``schedule*.json`` and ``sweeper.json`` EventBridge scheduled events.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

EVENTS_DIR = Path(__file__).resolve().parents[2] / "events"
"""The repository's ``events/`` folder."""


@cache
def _read(name: str) -> dict[str, Any]:
    path = EVENTS_DIR / (name if name.endswith(".json") else f"{name}.json")
    return dict(json.loads(path.read_text(encoding="utf-8")))


def load_event(name: str) -> dict[str, Any]:
    """A fresh copy of the sample event ``name`` (with or without ``.json``), safe to change."""
    return copy.deepcopy(_read(name))

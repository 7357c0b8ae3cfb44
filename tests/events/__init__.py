"""Sample Lambda events, shaped like ``sam local generate-event`` output.

``api_*.json`` are API Gateway HTTP API (payload v2) requests. ``events/`` at the top of the
repository keeps copies for ``sam local invoke -e events/...``; a test keeps the two alike.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

EVENTS_DIR = Path(__file__).parent


@cache
def _read(name: str) -> dict[str, Any]:
    path = EVENTS_DIR / (name if name.endswith(".json") else f"{name}.json")
    return dict(json.loads(path.read_text(encoding="utf-8")))


def load_event(name: str) -> dict[str, Any]:
    """A fresh copy of the sample event ``name`` (with or without ``.json``), safe to change."""
    return copy.deepcopy(_read(name))

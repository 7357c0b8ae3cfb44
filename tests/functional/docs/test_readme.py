"""The README's Python examples run as written, so they never rot (issue 11, item 15).

Every ```python block runs, in order, in one namespace (later sections build on earlier ones),
against this session's Postgres on a fresh schema. A block whose info string says
``python no-run`` is shown but not run (it needs something outside, such as a deployed API);
keep those rare. Time is injected: the services the examples build get a time-skipping clock,
so a durable sleep in an example costs no wall time here.
"""

from __future__ import annotations

import contextlib
import io
import re
from typing import Any

import pytest

from lambda_flow.testing import TimeSkippingClock
from tests import ROOT

README = ROOT / "README.md"
_BLOCK = re.compile(r"^```([^\n`]*)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def python_blocks(text: str) -> list[tuple[int, str]]:
    """``(line, code)`` of each runnable Python block."""
    blocks = []
    for match in _BLOCK.finditer(text):
        info = match.group(1).split()
        if info[:1] == ["python"] and "no-run" not in info:
            blocks.append((text.count("\n", 0, match.start()) + 2, match.group(2)))
    return blocks


def test_the_readme_has_python_examples() -> None:
    assert len(python_blocks(README.read_text())) >= 3


def test_the_readme_examples_run_as_written(
    database_url: str, schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAMBDA_FLOW_DATABASE_URL", database_url)
    monkeypatch.setenv("LAMBDA_FLOW_SCHEMA", schema)
    monkeypatch.setattr("lambda_flow.service._service.SystemClock", TimeSkippingClock)
    namespace: dict[str, Any] = {"__name__": "readme"}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        for line, code in python_blocks(README.read_text()):
            try:
                exec(compile(code, f"README.md:{line}", "exec"), namespace)  # noqa: S102
            except Exception as exc:
                pytest.fail(f"README.md block at line {line} failed: {type(exc).__name__}: {exc}")
    # The first example printed its run's status and steps.
    assert "completed ['Create profile', 'Greet', 'Wait before welcome email', 'Send email']" in (
        printed.getvalue()
    )

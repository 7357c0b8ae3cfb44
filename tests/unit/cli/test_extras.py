"""Commands that need an extra say which one, in one line, when it is missing."""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest

from lambda_flow.cli import main


@pytest.mark.parametrize("argv", [["dev"], ["invoke", "Sweeper", "-e", "event.json"]])
def test_dev_and_invoke_name_the_local_extra_without_the_handlers_packages(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    find_spec = importlib.util.find_spec

    def without_powertools(name: str, *args: Any) -> Any:
        return None if name == "aws_lambda_powertools" else find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", without_powertools)

    code = main(["--app", "examples.onboarding:flow", *argv])

    assert code == 2
    [line] = capsys.readouterr().err.splitlines()
    assert "pip install 'lambda-flow[local]'" in line

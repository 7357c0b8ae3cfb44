"""A local invocation's context: the deadline Lambda would give the function (issue 14).

A step worker chains a run's steps only while most of its timeout is left; with a shorter
deadline than the template's, ``lambda-flow dev`` would send every step through the queue.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from lambda_flow.local.dev import DEFAULT_FUNCTION_TIMEOUT, FUNCTION_TIMEOUTS, LocalContext
from tests import ROOT


def _template_timeouts() -> dict[str, float]:
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)  # !Ref, !GetAtt, ...
    text = (ROOT / "template.yaml").read_text()
    template: dict[str, Any] = yaml.load(text, Loader=Loader)  # noqa: S506 - a SafeLoader
    default = template["Globals"]["Function"]["Timeout"]
    return {
        name: float(resource["Properties"].get("Timeout", default))
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }


def test_every_function_gets_its_template_timeout() -> None:
    timeouts = _template_timeouts()

    assert dict(FUNCTION_TIMEOUTS) == timeouts
    assert DEFAULT_FUNCTION_TIMEOUT == 30.0


@pytest.mark.parametrize("function", ["StepWorker", "Orchestrator", "Api"])
def test_a_context_has_the_functions_time_left(function: str) -> None:
    context = LocalContext.for_function(function)

    left = context.get_remaining_time_in_millis()
    assert FUNCTION_TIMEOUTS[function] * 1000 - 60_000 < left <= FUNCTION_TIMEOUTS[function] * 1000
    assert context.function_name == function


def test_an_explicit_timeout_wins() -> None:
    assert LocalContext.for_function("StepWorker", 0.0).get_remaining_time_in_millis() == 0

"""A Lambda cold start runs without the cyclic collector and freezes what it built.

Each handler module is imported in a fresh interpreter with the environment ``template.yaml``
gives its function (the benchmark's, ``bench.cold_start``), as Lambda imports it.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from bench.cold_start import base_environment, function_environments, handler_modules

_PROBE = (
    "import gc, lambda_flow.handlers.{module};"
    "print(gc.isenabled(), gc.get_freeze_count() > 0, len(gc.garbage))"
)


@pytest.mark.parametrize("module", handler_modules())
def test_a_handler_module_ends_its_cold_start_collecting_again_with_its_setup_frozen(
    module: str, database_url: str, schema: str
) -> None:
    env = {
        **base_environment(),
        **function_environments(database_url)[module],
        "LAMBDA_FLOW_SCHEMA": schema,
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    done = subprocess.run(  # noqa: S603 - this interpreter, a module of ours
        [sys.executable, "-c", _PROBE.format(module=module)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines()[-1].split() == ["True", "True", "0"]  # after any log lines


def _run(code: str, **env: str) -> str:
    done = subprocess.run(  # noqa: S603 - this interpreter
        [sys.executable, "-c", code],
        env={**base_environment(), **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout.strip()


def test_outside_lambda_the_handlers_package_leaves_the_collector_alone() -> None:
    code = (
        "import gc, lambda_flow.handlers as h; a = gc.isenabled(); h.cold_start_done();"
        "print(a, gc.isenabled(), gc.get_freeze_count())"
    )
    assert _run(code) == "True True 0"
    assert _run(code, AWS_LAMBDA_FUNCTION_NAME="f") == "False True " + _run(
        "import gc, lambda_flow.handlers as h; h.cold_start_done(); print(gc.get_freeze_count())",
        AWS_LAMBDA_FUNCTION_NAME="f",
    )


def test_importing_the_package_leaves_the_collector_as_it_found_it() -> None:
    assert _run("import gc, lambda_flow; print(gc.isenabled())") == "True"
    assert _run("import gc; gc.disable(); import lambda_flow; print(gc.isenabled())") == "False"

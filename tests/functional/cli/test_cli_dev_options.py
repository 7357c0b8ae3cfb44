"""``lambda-flow dev --step-workers N --orchestrators N``: the runtime's thread pools (issue 14).

Bad values are refused before anything starts: one line naming the option, exit code 2. Good
ones reach :class:`~lambda_flow.local.dev.DevRuntime` (replaced here by a stand-in that records
its arguments instead of serving).
"""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from lambda_flow.cli import main
from lambda_flow.local import DEFAULT_ORCHESTRATORS, DEFAULT_STEP_WORKERS
from tests.functional.cli.test_cli import APP

UNUSED_URL = "postgresql://unused.invalid/none"
"""No test here connects: the stand-in runtime never touches the database."""


class _Runtime:
    """Stands in for DevRuntime: records its arguments, serves nothing."""

    made: ClassVar[list[dict[str, Any]]] = []

    def __init__(self, flow: Any, **options: Any) -> None:
        self.made.append(options)

    def serve_until_stopped(self, queues: str) -> None:
        return


@pytest.fixture
def runtimes(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    from lambda_flow.local import dev

    for name in ("AWS_ENDPOINT_URL", "LAMBDA_FLOW_LOCALSTACK", "LAMBDA_FLOW_APP"):
        monkeypatch.delenv(name, raising=False)
    made: ClassVar[list[dict[str, Any]]] = []
    monkeypatch.setattr(_Runtime, "made", made)
    monkeypatch.setattr(dev, "DevRuntime", _Runtime)
    return made


def _dev(capsys: pytest.CaptureFixture[str], *options: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["--database-url", UNUSED_URL, "--app", APP, "dev", "--port", "0", *options])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("option", ["--step-workers", "--orchestrators"])
@pytest.mark.parametrize("value", ["0", "-1", "257", "two", "1.5", ""])
def test_a_bad_pool_size_exits_2_naming_the_option(
    option: str,
    value: str,
    runtimes: list[dict[str, Any]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, err = _dev(capsys, option, value)

    assert code == 2
    assert err.startswith(f"error: argument {option}: must be a whole number from 1 to 256")
    assert repr(value) in err
    assert len(err.strip().splitlines()) == 1
    assert runtimes == []  # refused before the runtime was built


def test_pool_sizes_reach_the_runtime(
    runtimes: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = _dev(capsys, "--step-workers", "3", "--orchestrators", "256")

    assert (code, err) == (0, "")
    [options] = runtimes
    assert (options["step_workers"], options["orchestrators"]) == (3, 256)


def test_without_the_options_the_runtime_keeps_its_defaults(
    runtimes: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    code, _ = _dev(capsys)

    assert code == 0
    [options] = runtimes
    assert "step_workers" not in options
    assert "orchestrators" not in options


def test_the_help_shows_the_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["dev", "--help"])

    out = " ".join(capsys.readouterr().out.split())
    assert code == 0
    assert f"step jobs run at once, one thread each (default {DEFAULT_STEP_WORKERS})" in out
    assert f"(default {DEFAULT_ORCHESTRATORS})" in out

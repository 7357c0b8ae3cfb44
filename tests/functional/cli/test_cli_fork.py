"""``lambda-flow fork RUN_ID --from-step KEY [--input JSON]``."""

from __future__ import annotations

import json
from typing import Any

import psycopg

from tests.conftest import count_rows
from tests.functional.cli.test_cli import (
    Cli,
    _field,
    _no_settings_from_the_environment,
    _start,
    cli,
)

__all__ = ["_no_settings_from_the_environment", "cli"]  # fixtures


def test_fork_runs_from_the_step_with_new_input(cli: Cli) -> None:
    source = _start(cli, "nap", {"for": "1s"})

    code, out, err = cli("fork", source, "--from-step", "After", "--input", '{"for": "2s"}')

    assert (code, err) == (0, "")
    forked = _field(out, "run_id")
    assert forked != source
    assert _field(out, "status") == "completed"
    _, status, _ = cli("status", forked)
    run = json.loads(status)
    assert run["input"] == {"for": "2s"}
    assert run["forked_from"] == {"run_id": source, "step_key": "After"}


def test_fork_an_unknown_step_or_run_exits_2_writing_nothing(
    cli: Cli, db: psycopg.Connection[Any]
) -> None:
    source = _start(cli, "double", {"x": 1})
    before = count_rows(db, "runs"), count_rows(db, "step_attempts")

    code, out, err = cli("fork", source, "--from-step", "Nope")
    assert (code, out) == (2, "")
    assert "'Nope'" in err
    code, _, err = cli("fork", "00000000-0000-0000-0000-000000000000", "--from-step", "Double")
    assert code == 2
    assert "unknown run" in err
    code, _, err = cli("fork", source)
    assert code == 2
    assert "--from-step" in err

    assert (count_rows(db, "runs"), count_rows(db, "step_attempts")) == before

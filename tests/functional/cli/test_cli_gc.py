"""``lambda-flow gc --older-than DURATION [--status S ...] [--dry-run]`` (issue 14, item 7)."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from lambda_flow.testing import TimeSkippingClock
from tests.conftest import count_rows
from tests.functional.cli.test_cli import (
    Cli,
    _no_settings_from_the_environment,
    _start,
    cli,
)

__all__ = ["_no_settings_from_the_environment", "cli"]  # fixtures


def test_gc_deletes_old_finished_runs_and_keeps_the_rest(
    cli: Cli, clock: TimeSkippingClock, db: psycopg.Connection[Any]
) -> None:
    completed = _start(cli, "double", {"x": 1})
    code, _, _ = cli("start", "always_fails")
    assert code == 1
    suspended = _start(cli, "approve_order", {"order_id": "o1", "amount": 3})
    clock.advance("40d")
    recent = _start(cli, "double", {"x": 2})

    code, out, err = cli("gc", "--older-than", "30d", "--dry-run")
    assert (code, err) == (0, "")
    assert out.startswith("would delete 2 finished runs (completed, failed, cancelled)")
    assert count_rows(db, "runs") == 4

    code, out, err = cli("gc", "--older-than", "30d", "--status", "failed")
    assert (code, err) == (0, "")
    assert out.startswith("deleted 1 finished run (failed) that ended before ")
    code, out, _ = cli("gc", "--older-than", "30d", app_spec=None)  # no app needed
    assert code == 0
    assert out.startswith("deleted 1 finished run ")

    remaining = {r[0] for r in db.execute("SELECT id::text FROM runs")}
    assert remaining == {suspended, recent}
    assert completed not in remaining
    owners = {r[0] for r in db.execute("SELECT DISTINCT run_id::text FROM step_attempts")}
    assert owners == {suspended, recent}  # the deleted runs' steps went with them


@pytest.mark.parametrize(
    ("args", "named"),
    [
        ((), "--older-than"),
        (("--older-than", "soon"), "--older-than"),
        (("--older-than", "0s"), "--older-than must be positive"),
        (("--older-than", "30d", "--status", "running"), "--status: only finished runs"),
        (("--older-than", "30d", "--status", "suspended"), "suspended runs are not finished"),
        (("--older-than", "30d", "--status", "done"), "--status: unknown run status 'done'"),
        (("--older-than", "30d", "--batch-size", "0"), "--batch-size must be positive"),
        (("--older-than", "30d", "--max-batches", "-1"), "--max-batches must be positive"),
    ],
)
def test_gc_bad_arguments_exit_2_naming_the_problem_and_delete_nothing(
    cli: Cli,
    clock: TimeSkippingClock,
    db: psycopg.Connection[Any],
    args: tuple[str, ...],
    named: str,
) -> None:
    _start(cli, "double", {"x": 1})
    clock.advance("40d")

    code, out, err = cli("gc", *args)

    assert (code, out) == (2, "")
    assert err.startswith("error: ")
    assert named in err
    assert count_rows(db, "runs") == 1

"""The ``lambda-flow`` command as a separate process: Ctrl-C, a closed pipe, stdin.

Ctrl-C is SIGINT sent to the child's whole process group, as a terminal sends it. Nothing
sleeps waiting for the engine: the tests poll the child's output (bounded) for the line that
says where it is.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from lambda_flow import PostgresStore
from lambda_flow.cli import main
from lambda_flow.testing import TimeSkippingClock
from tests import ROOT

APP = "tests.functional.cli.test_cli:app"

Spawn = Callable[..., subprocess.Popen[str]]


@pytest.fixture
def spawn(database_url: str, schema: str, store: PostgresStore, tmp_path: Any) -> Spawn:
    """Start ``lambda-flow --database-url ... --schema ... --app APP ARGS`` in its own group."""

    def start(*args: str, stdin: Any = subprocess.DEVNULL) -> subprocess.Popen[str]:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "LAMBDA_FLOW_HOME": str(tmp_path)}
        for name in ("LAMBDA_FLOW_APP", "LAMBDA_FLOW_ORCHESTRATOR_QUEUE_URL"):
            env.pop(name, None)
        argv = ["--database-url", database_url, "--schema", schema, "--app", APP, *args]
        return subprocess.Popen(  # noqa: S603 - our own CLI
            [sys.executable, "-m", "lambda_flow.cli", *argv],
            cwd=ROOT,
            env=env,
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its own process group, as a shell job has
        )

    return start


def _read_until(child: subprocess.Popen[str], marker: str, timeout: float = 30.0) -> str:
    """The child's stdout up to ``marker`` (bounded polling; raw reads, so nothing is buffered)."""
    assert child.stdout is not None
    fd = child.stdout.fileno()
    seen = b""
    selector = selectors.DefaultSelector()
    selector.register(fd, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    while marker.encode() not in seen:
        if time.monotonic() > deadline or child.poll() is not None:
            raise AssertionError(f"no {marker!r} in the child's output: {seen!r}")
        if selector.select(timeout=0.5):
            seen += os.read(fd, 65536)
    selector.close()
    return seen.decode()


def _interrupt(child: subprocess.Popen[str]) -> tuple[int, str]:
    os.killpg(child.pid, signal.SIGINT)
    _, err = child.communicate(timeout=30)
    return child.returncode, err


def _status(database_url: str, schema: str, run_id: str) -> str:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(f'SELECT status FROM "{schema}".runs WHERE id = %s', [run_id]).fetchone()
    assert row is not None
    return str(row[0])


def test_ctrl_c_while_a_run_sleeps_leaves_it_resumable(
    spawn: Spawn, database_url: str, schema: str, capsys: pytest.CaptureFixture[str]
) -> None:
    child = spawn("start", "nap", "--input", '{"for": "1h"}', "--follow")
    head = _read_until(child, "sleeping")
    run_id = head.splitlines()[0].split()[1]

    code, err = _interrupt(child)

    assert code == 130
    assert err == (
        f"interrupted: run {run_id} is left running; "
        f"carry it on with: lambda-flow resume {run_id}\n"
    )
    assert _status(database_url, schema, run_id) == "running"
    # It resumes where it stopped: the sleep is skipped by the test clock, nothing re-runs.
    argv = ["--database-url", database_url, "--schema", schema, "--app", APP]
    clock = TimeSkippingClock(datetime.now(UTC))
    assert main([*argv, "resume", run_id], clock=clock) == 0
    out, _ = capsys.readouterr()
    assert "status  completed" in out


def test_ctrl_c_while_watching_says_the_run_goes_on(
    spawn: Spawn, database_url: str, schema: str
) -> None:
    started = spawn("start", "nap", "--input", '{"for": "1h"}', "--no-wait")
    out, err = started.communicate(timeout=30)
    assert started.returncode == 0, err
    run_id = out.splitlines()[0].split()[1]

    child = spawn("watch", run_id)
    _read_until(child, f"run_id  {run_id}")
    code, err = _interrupt(child)

    assert code == 130
    assert err == (
        f"stopped watching run {run_id} (it goes on); "
        f"watch it again with: lambda-flow watch {run_id}\n"
    )


def test_a_closed_pipe_ends_the_command_quietly(spawn: Spawn, tmp_path: Path) -> None:
    big = tmp_path / "big.json"
    big.write_text(json.dumps({"blob": "x" * 200_000}))
    started = spawn("start", "echo", "--input-file", str(big))
    out, err = started.communicate(timeout=30)
    assert started.returncode == 0, err
    run_id = out.splitlines()[0].split()[1]

    child = spawn("status", run_id)  # ~200 kB of JSON: more than a pipe holds
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "{"
    child.stdout.close()  # as `| head -1` does
    child.wait(timeout=30)
    assert child.stderr is not None
    err = child.stderr.read()

    assert child.returncode == 0
    assert err == ""


def test_input_from_stdin(spawn: Spawn) -> None:
    child = spawn("run", "double", "--input", "-", stdin=subprocess.PIPE)
    out, err = child.communicate('{"x": 20}', timeout=30)

    assert (child.returncode, err) == (0, "")
    assert json.loads(out) == 40

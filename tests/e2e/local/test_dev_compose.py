"""``lambda-flow dev``: issue 13's composition through a real dev process and its HTTP API.

Child workflows (listed by ``GET /runs?parent_id=`` and ``lambda-flow runs --parent``), a map
with a concurrency limit, parallel branches and the fork of a failed run, each in the real
process on the real clock: the app's waits are short, and every poll here is bounded by a
deadline. The app's RPC functions log what they ran to a file the test reads (see
``compose_app``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests import ROOT
from tests.e2e.local import compose_app
from tests.e2e.local.test_dev_primitives import _PIDS, _ended, _history, _start
from tests.e2e.local.test_dev_runtime import _request, _spawn_dev, _stops_cleanly

APP = "tests.e2e.local.compose_app:flow"


@pytest.fixture(scope="module")
def dev(database_url: str) -> Any:
    """One dev process for the module (each test starts its own runs), on a schema of its own."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    process, base = _spawn_dev(database_url, schema, app=APP)
    _PIDS[base] = process.pid  # the polls show its logs when they run out
    yield process, base, schema
    try:
        if process.poll() is None:
            _stops_cleanly(process, signal.SIGTERM)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def log(tmp_path: Path) -> Path:
    """The file the app's RPC functions note what they ran in (``start X`` / ``end X``)."""
    path = tmp_path / "ran.log"
    path.touch()
    return path


def _ran(log: Path, event: str = "start") -> Counter[str]:
    """How often each function call began (or ended), by name."""
    lines = log.read_text(encoding="utf-8").splitlines()
    return Counter(line.split(" ", 1)[1] for line in lines if line.startswith(f"{event} "))


def _peak(log: Path, prefix: str) -> int:
    """The most ``prefix`` calls in flight at once, from the order of their starts and ends."""
    in_flight = peak = 0
    for line in log.read_text(encoding="utf-8").splitlines():
        event, name = line.split(" ", 1)
        if name.startswith(prefix):
            in_flight += 1 if event == "start" else -1
            peak = max(peak, in_flight)
    return peak


def _completed(base: str, run_id: str) -> dict[str, Any]:
    run = _ended(base, run_id)
    assert run["status"] == "completed", run
    return run


def _cli(database_url: str, schema: str, *args: str) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable, "-m", "lambda_flow.cli", "--app", APP,
        "--database-url", database_url, "--schema", schema, *args,
    ]  # fmt: skip
    return subprocess.run(  # noqa: S603 - our own CLI
        command,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ),
        check=False,
    )


def test_child_workflows_end_to_end_and_listed_by_parent(
    dev: Any, log: Path, database_url: str
) -> None:
    _, base, schema = dev
    run_id = _start(base, "order", {"names": ["acme", "globex"], "log": str(log)})

    run = _completed(base, run_id)

    children = run["output"]["children"]
    assert run["output"]["workspaces"] == ["ws-acme", "ws-globex"], run
    assert run["parent_id"] is None
    assert len(set(children)) == 2
    assert _ran(log) == Counter({"create:acme": 1, "create:globex": 1})
    history = {(h["step_key"], h["status"]) for h in _history(base, run_id)}
    assert history == {("Provision acme", "succeeded"), ("Provision globex", "succeeded")}

    status, listed = _request(f"{base}/runs?parent_id={run_id}")
    assert status == 200, listed
    found = sorted((r["id"], r["workflow"], r["status"], r["parent_id"]) for r in listed["runs"])
    assert found == sorted((child, "provision", "completed", run_id) for child in children)
    for child in children:
        status, child_run = _request(f"{base}/runs/{child}")
        assert status == 200, child_run
        assert (child_run["parent_id"], child_run["output"]) in {
            (run_id, "ws-acme"),
            (run_id, "ws-globex"),
        }
        assert [h["step_key"] for h in _history(base, child)] == ["Create", "Warm up"]
    status, none = _request(f"{base}/runs?parent_id={children[0]}")
    assert (status, none["runs"]) == (200, [])
    status, bad = _request(f"{base}/runs?parent_id=not-a-run")
    assert status == 422, bad
    assert bad["error"]["type"] == "InvalidRequest", bad

    # The command line lists them too, by their parent.
    table = _cli(database_url, schema, "runs", "--parent", run_id)
    assert table.returncode == 0, table.stderr
    rows = [line.split() for line in table.stdout.splitlines()[1:] if line.strip()]
    rows = [row for row in rows if row and not set(row[0]) <= {"-", "="}]  # a rule, if any
    expected = sorted([child, "provision", "completed"] for child in children)
    assert sorted(row[:3] for row in rows) == expected, table.stdout
    assert run_id not in table.stdout  # the parent is not its own child
    as_json = _cli(database_url, schema, "runs", "--parent", run_id, "--json")
    assert as_json.returncode == 0, as_json.stderr
    assert sorted((r["id"], r["parent_id"]) for r in json.loads(as_json.stdout)) == sorted(
        (c, run_id) for c in children
    )
    refused = _cli(database_url, schema, "runs", "--parent", "nope")
    assert refused.returncode == 2, refused
    assert "must be a run id" in refused.stderr


def test_a_map_keeps_its_limit_and_runs_each_item_once(dev: Any, log: Path) -> None:
    _, base, _ = dev
    count = 6
    run_id = _start(base, "bill_all", {"count": count, "log": str(log)})

    run = _completed(base, run_id)

    assert run["output"] == [n * 10 for n in range(count)], run
    expected = Counter({f"bill:{n}": 1 for n in range(count)})
    assert _ran(log, "start") == expected  # each item ran once
    assert _ran(log, "end") == expected
    assert _peak(log, "bill:") == compose_app.MAP_LIMIT  # never above it, and reached
    history = _history(base, run_id)
    items = [h for h in history if h["step_key"].startswith("Bill/")]
    assert sorted((h["step_key"], h["status"], h["attempt"]) for h in items) == sorted(
        (f"Bill/{n}", "succeeded", 1) for n in range(count)
    )


def test_parallel_branches_calling_the_same_helper(dev: Any, log: Path) -> None:
    _, base, _ = dev
    run_id = _start(base, "book_trip", {"log": str(log)})

    run = _completed(base, run_id)

    assert run["output"] == [
        ["seat reserved", "seat confirmed"],
        ["room reserved", "room confirmed"],
    ], run
    assert _ran(log) == Counter({"reserve:seat": 1, "reserve:room": 1})
    keys = {h["step_key"] for h in _history(base, run_id)}
    for branch in ("flight", "hotel"):
        for step in ("Reserve", "Hold", "Confirm"):
            assert f"Book/{branch}/{step}" in keys, keys


def test_a_failed_run_forked_from_its_failed_step_completes(dev: Any, log: Path) -> None:
    _, base, _ = dev
    data = {"amount": 10, "log": str(log)}
    source = _start(base, "fulfil", data)
    failed = _ended(base, source)
    assert failed["status"] == "failed", failed
    assert "no address to ship to" in failed["error"]["message"], failed
    assert _ran(log) == Counter({"stage:Charge": 1, "stage:Pack": 1, "stage:Ship": 1})

    status, forked = _request(
        f"{base}/runs/{source}/fork",
        "POST",
        {"from_step": "Ship", "input": {**data, "address": "1 Main St"}},
    )
    assert status == 202, forked
    fork_id = forked["run_id"]
    assert fork_id != source

    run = _completed(base, fork_id)
    assert run["output"] == 13, run
    assert run["forked_from"] == {"run_id": source, "step_key": "Ship"}, run
    # Charge and Pack were copied from the failed run, not run again; only Ship ran again.
    assert _ran(log) == Counter({"stage:Charge": 1, "stage:Pack": 1, "stage:Ship": 2})
    assert _ran(log, "end") == Counter({"stage:Charge": 1, "stage:Pack": 1, "stage:Ship": 1})
    history = [(h["step_key"], h["status"]) for h in _history(base, fork_id)]
    assert history == [("Charge", "succeeded"), ("Pack", "succeeded"), ("Ship", "succeeded")]
    _, still = _request(f"{base}/runs/{source}")
    assert still["status"] == "failed"  # the source run is untouched
    status, unknown_step = _request(f"{base}/runs/{source}/fork", "POST", {"from_step": "Nope"})
    assert 400 <= status < 500, unknown_step

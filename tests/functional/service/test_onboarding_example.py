"""The onboarding example app, through the service and through ``lambda-flow demo``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg
import pytest

from examples import onboarding
from examples.onboarding import OnboardOut, Profile
from lambda_flow import (
    InvalidInput,
    PostgresStore,
    RunStatus,
    StepKind,
    StepStatus,
    WorkflowService,
)
from lambda_flow.cli import main
from lambda_flow.testing import TimeSkippingClock
from tests.conftest import count_rows

STEPS = [
    "Create profile",
    "Generate welcome message",
    "Wait before welcome email",
    "Send welcome email",
    "Provision workspace",
]


@pytest.fixture
def onboarding_service(store: PostgresStore, clock: TimeSkippingClock) -> WorkflowService:
    return WorkflowService(onboarding.flow, store=store, clock=clock)


def test_onboarding_completes_with_one_email_retry(
    onboarding_service: WorkflowService, clock: TimeSkippingClock
) -> None:
    data = {"email": "Grace.Hopper@Example.com", "user_id": "grace", "welcome_delay": "5min"}

    run_id = onboarding_service.start("onboard_user", data)

    run = onboarding_service.get_run(run_id)
    assert run is not None
    assert run.status is RunStatus.COMPLETED
    out = OnboardOut.model_validate(run.output)
    assert out.success is True
    assert out.profile == Profile(
        user_id="grace", email="grace.hopper@example.com", display_name="Grace Hopper"
    )
    assert out.welcome_message == "Welcome aboard, Grace Hopper! Your workspace is on its way."
    assert out.email_message_id.startswith("msg-")
    assert out.workspace_id == "ws-grace"
    # The sleep and the retry delay were waited for on the clock, not for real.
    assert clock.slept == [timedelta(minutes=5), timedelta(seconds=1)]

    history = onboarding_service.get_run_history(run_id)
    emails = [a for a in history if a.step_name == "Send welcome email"]
    assert [(a.attempt, a.status) for a in emails] == [
        (1, StepStatus.FAILED),
        (2, StepStatus.SUCCEEDED),
    ]
    assert emails[0].error is not None
    assert emails[0].error.type == "ConnectionError"
    others = [a for a in history if a.step_name != "Send welcome email"]
    assert [(a.step_name, a.attempt, a.status) for a in others] == [
        (name, 1, StepStatus.SUCCEEDED) for name in STEPS if name != "Send welcome email"
    ]
    assert {a.step_name: a.kind for a in history} == {
        "Create profile": StepKind.RPC,
        "Generate welcome message": StepKind.INLINE,
        "Wait before welcome email": StepKind.SLEEP,
        "Send welcome email": StepKind.RPC,
        "Provision workspace": StepKind.RPC,
    }
    assert [a.step_name for a in history] == [*STEPS[:4], STEPS[3], STEPS[4]]


def test_run_to_completion_returns_the_typed_output(onboarding_service: WorkflowService) -> None:
    out = onboarding_service.run_to_completion(
        "onboard_user", {"email": "alan@example.org", "user_id": "alan", "welcome_delay": "0s"}
    )

    assert isinstance(out, OnboardOut)
    assert out.profile.display_name == "Alan"


def test_the_welcome_delay_defaults_to_five_minutes(
    onboarding_service: WorkflowService, clock: TimeSkippingClock
) -> None:
    onboarding_service.start("onboard_user", {"email": "kay@example.com", "user_id": "kay"})

    assert clock.slept[0] == timedelta(minutes=5)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"email": "not-an-email", "user_id": "u"}, "email: Value error, not a valid email"),
        ({"email": "a@b.c"}, "user_id: Field required"),
        ({"email": "a@b.c", "user_id": ""}, "user_id: String should have at least 1 character"),
        (
            {"email": "a@b.c", "user_id": "u", "welcome_delay": "later"},
            "welcome_delay: Value error, invalid duration 'later'",
        ),
    ],
)
def test_bad_input_is_refused_before_anything_is_written(
    onboarding_service: WorkflowService,
    db: psycopg.Connection[Any],
    data: dict[str, Any],
    message: str,
) -> None:
    with pytest.raises(InvalidInput, match="invalid input for workflow 'onboard_user'") as info:
        onboarding_service.start("onboard_user", data)

    assert message in str(info.value)
    assert count_rows(db, "runs") == 0


def test_demo_command_runs_the_example(
    database_url: str,
    schema: str,
    db: psycopg.Connection[Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    clock = TimeSkippingClock()

    code = main(["--database-url", database_url, "--schema", schema, "demo"], clock=clock)

    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    rows = [line.split("  ") for line in out.splitlines()]
    table = {
        (cells[0], cells[2], cells[3])
        for cells in ([c.strip() for c in row if c.strip()] for row in rows)
        if len(cells) >= 5
    }
    assert ("Send welcome email", "failed", "1") in table
    assert ("Send welcome email", "succeeded", "2") in table
    for step in ("Create profile", "Generate welcome message", "Provision workspace"):
        assert (step, "succeeded", "1") in table
    assert "ConnectionError: email provider unreachable (simulated)" in out
    assert "status  completed" in out
    assert '"workspace_id": "ws-ada"' in out
    assert clock.slept == [timedelta(seconds=2), timedelta(seconds=1)]
    assert count_rows(db, "runs") == 1


def test_demo_takes_a_welcome_delay(
    database_url: str,
    schema: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    clock = TimeSkippingClock()
    argv = ["--database-url", database_url, "--schema", schema, "demo", "--welcome-delay", "0s"]

    assert main(argv, clock=clock) == 0

    assert "status  completed" in capsys.readouterr().out
    assert clock.slept == [timedelta(seconds=1)]  # only the email's retry delay

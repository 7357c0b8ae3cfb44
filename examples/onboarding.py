"""User onboarding: the example app behind ``lambda-flow demo``.

Run it with ``lambda-flow demo``, or start it yourself::

    lambda-flow --app examples.onboarding:flow start onboard_user \
        --input '{"email": "ada@example.com", "user_id": "ada", "welcome_delay": "2s"}'

Every side effect is simulated in memory (no network), so the example runs anywhere. The email
provider is flaky on purpose, and deterministically so: the first attempt of every send fails
with a ``ConnectionError`` and the retry succeeds, which shows retries in the run's history.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from pydantic import BaseModel, Field, field_validator

from lambda_flow import Flow, WorkflowContext, current_step, parse_duration

logger = logging.getLogger(__name__)

flow = Flow()

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")

# The simulated outside world, keyed by each step's idempotency key so that a retried or
# replayed call never creates a second profile, email or workspace.
PROFILES: dict[str, dict[str, Any]] = {}
OUTBOX: dict[str, dict[str, Any]] = {}
WORKSPACES: dict[str, dict[str, Any]] = {}


class OnboardIn(BaseModel):
    """What starting an onboarding needs."""

    email: str
    """Where the welcome email goes; checked with a simple pattern, stored lowercase."""
    user_id: str = Field(min_length=1, max_length=64)
    """The new user's id in the calling system."""
    welcome_delay: str = "5min"
    """How long to wait before the welcome email: ``'30s'``, ``'5min'``, ``'2h'``..."""

    @field_validator("email")
    @classmethod
    def _check_email(cls, value: str) -> str:
        value = value.strip()
        if not _EMAIL.match(value):
            raise ValueError("not a valid email address")
        return value.lower()

    @field_validator("welcome_delay")
    @classmethod
    def _check_delay(cls, value: str) -> str:
        parse_duration(value)  # InvalidDuration is a ValueError: pydantic reports it
        return value


class Profile(BaseModel):
    """The user's profile as the profile service stores it."""

    user_id: str
    email: str
    display_name: str


class WelcomeEmail(BaseModel):
    """One email for the email provider."""

    to: str
    subject: str
    body: str


class WorkspaceRequest(BaseModel):
    """What provisioning a workspace needs."""

    user_id: str
    plan: str = "free"


class OnboardOut(BaseModel):
    """What a finished onboarding returns."""

    success: bool
    profile: Profile
    welcome_message: str
    email_message_id: str
    workspace_id: str


def _idempotency_key(fallback: str) -> str:
    step = current_step()
    return step.idempotency_key if step is not None else fallback


@flow.function
def create_profile(data: OnboardIn) -> Profile:
    """Create (or find) the user's profile."""
    key = _idempotency_key(f"profile:{data.user_id}")
    if key not in PROFILES:
        display_name = data.email.split("@", 1)[0].replace(".", " ").title()
        PROFILES[key] = {"user_id": data.user_id, "email": data.email, "display_name": display_name}
        logger.info("profile created", extra={"user_id": data.user_id})
    return Profile.model_validate(PROFILES[key])


@flow.function
async def send_email(data: WelcomeEmail) -> dict[str, Any]:
    """Send an email through a provider that drops the first connection of every send."""
    step = current_step()
    if step is not None and step.attempt == 1:
        logger.info(
            "simulating a dropped connection to the email provider",
            extra={"to": data.to, "attempt": step.attempt, "step_id": step.step_id},
        )
        raise ConnectionError("email provider unreachable (simulated)")
    key = _idempotency_key(f"email:{data.to}:{data.subject}")
    if key not in OUTBOX:
        OUTBOX[key] = {"message_id": f"msg-{len(OUTBOX) + 1:06d}", **data.model_dump()}
        logger.info("email sent", extra={"to": data.to, "message_id": OUTBOX[key]["message_id"]})
    return {"message_id": OUTBOX[key]["message_id"], "to": data.to}


@flow.function
def provision_workspace(data: WorkspaceRequest) -> dict[str, Any]:
    """Create the user's workspace."""
    key = _idempotency_key(f"workspace:{data.user_id}")
    if key not in WORKSPACES:
        WORKSPACES[key] = {"workspace_id": f"ws-{data.user_id}", "plan": data.plan}
        logger.info("workspace provisioned", extra={"user_id": data.user_id, "plan": data.plan})
    return dict(WORKSPACES[key])


@flow.workflow(description="Create a profile, welcome the user by email, provision a workspace.")
async def onboard_user(wf: WorkflowContext, data: OnboardIn) -> OnboardOut:
    """Onboard one new user."""
    profile: Profile = await wf.do("Create profile", "create_profile", data)
    message: str = await wf.do(
        "Generate welcome message",
        lambda: f"Welcome aboard, {profile.display_name}! Your workspace is on its way.",
    )
    await wf.sleep("Wait before welcome email", data.welcome_delay)
    email = WelcomeEmail(to=profile.email, subject="Welcome!", body=message)
    receipt: dict[str, Any] = await wf.do(
        "Send welcome email", send_email, email, retries=3, retry_delay="1s"
    )
    workspace: dict[str, Any] = await wf.do(
        "Provision workspace", "provision_workspace", WorkspaceRequest(user_id=profile.user_id)
    )
    return OnboardOut(
        success=True,
        profile=profile,
        welcome_message=message,
        email_message_id=receipt["message_id"],
        workspace_id=workspace["workspace_id"],
    )

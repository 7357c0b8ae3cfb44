"""The application the queue and trigger end-to-end tests deploy (``LAMBDA_FLOW_APP``).

The handlers import it by name, exactly as a Lambda function would, so its state lives at module
level: :data:`calls` counts every RPC function call (what ran, and how often), and
:data:`crash_once` names functions whose next call kills the worker mid-step. Tests reset both
with :func:`reset`.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from pydantic import BaseModel, Field, field_validator

from lambda_flow import (
    Completion,
    Flow,
    RetryPolicy,
    WorkflowCancelled,
    WorkflowContext,
    current_step,
    parse_duration,
)
from lambda_flow.testing import SimulatedCrash

flow = Flow()

calls: Counter[str] = Counter()
"""RPC function calls by function name, attempts included."""
crash_once: set[str] = set()
"""Functions whose next call raises :class:`SimulatedCrash` (the worker process dies)."""


def reset() -> None:
    """Forget every call and pending crash (between tests)."""
    calls.clear()
    crash_once.clear()


def _called(name: str) -> None:
    calls[name] += 1
    if name in crash_once:
        crash_once.discard(name)
        raise SimulatedCrash(f"worker killed while running {name}")


# -- onboarding: three RPC steps (one flaky), an inline step and a sleep from the input ---------
class OnboardIn(BaseModel):
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    user_id: str = Field(min_length=1)
    welcome_delay: str = "5min"

    @field_validator("welcome_delay")
    @classmethod
    def _check_delay(cls, value: str) -> str:
        parse_duration(value)
        return value


class Profile(BaseModel):
    user_id: str
    email: str


class OnboardOut(BaseModel):
    profile: Profile
    greeting: str
    email: str
    workspace: str


@flow.function
def create_profile(data: OnboardIn) -> Profile:
    _called("create_profile")
    return Profile(user_id=data.user_id, email=data.email)


@flow.function
def send_email(data: dict[str, str]) -> str:
    """Fails its first attempt, as a flaky email provider would."""
    _called("send_email")
    step = current_step()
    if step is None or step.attempt == 1:
        raise ConnectionError("email provider unreachable")
    return f"sent to {data['to']} on attempt {step.attempt}"


@flow.function
def provision(data: Profile) -> str:
    _called("provision")
    return f"ws-{data.user_id}"


@flow.workflow
async def onboard_user(wf: WorkflowContext, data: OnboardIn) -> OnboardOut:
    profile: Profile = await wf.do("Create profile", "create_profile", data)
    greeting: str = await wf.do("Greet", lambda: f"Welcome, {profile.user_id}!")
    await wf.sleep("Wait before email", data.welcome_delay)
    email: str = await wf.do(
        "Send email", "send_email", {"to": profile.email}, retries=3, retry_delay="1s"
    )
    workspace: str = await wf.do("Provision", "provision", profile)
    return OnboardOut(profile=profile, greeting=greeting, email=email, workspace=workspace)


# -- small workflows for single behaviours ------------------------------------------------------
class NapIn(BaseModel):
    duration: str

    @field_validator("duration")
    @classmethod
    def _check_duration(cls, value: str) -> str:
        parse_duration(value)
        return value


@flow.workflow
async def nap(wf: WorkflowContext, data: NapIn) -> str:
    """One sleep, as long as the input says."""
    await wf.sleep("Nap", data.duration)
    return "rested"


@flow.function
def charge(data: dict[str, int]) -> str:
    _called("charge")
    return f"charged {data['cents']}"


@flow.workflow
async def pay(wf: WorkflowContext, data: dict[str, int]) -> str:
    """One RPC step, for crashing a worker in the middle of it (an interrupted attempt counts
    as a failed one, so it gets a retry)."""
    return str(await wf.do("Charge", "charge", data, retries=1))


class SignupIn(BaseModel):
    """The body of a message on the signups queue (the queue trigger's input)."""

    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    plan: str = "free"


@flow.workflow
async def signup(wf: WorkflowContext, data: SignupIn) -> str:
    """Started once per message of a queue by ``lambda_flow.handlers.queue_start``."""
    welcome: str = await wf.do("Welcome", lambda: f"{data.email} on {data.plan}")
    return welcome


class ReportIn(BaseModel):
    """A scheduled report's input (EventBridge rules send an empty ``detail``)."""

    period: str = "daily"


@flow.function
def count_signups(data: ReportIn) -> dict[str, Any]:
    _called("count_signups")
    return {"period": data.period, "signups": 3}


@flow.workflow
async def nightly_report(wf: WorkflowContext, data: ReportIn) -> dict[str, Any]:
    """Started by ``lambda_flow.handlers.schedule_start`` from an EventBridge schedule."""
    report: dict[str, Any] = await wf.do("Count signups", "count_signups", data)
    return report


submitted: list[str] = []
"""Callback ids handed to the payment provider by :func:`ask_provider` (issue 12)."""


@flow.function
def ask_provider(request: dict[str, Any]) -> None:
    _called("ask_provider")
    submitted.append(str(request["callback_id"]))


@flow.workflow
async def checkout(wf: WorkflowContext, data: dict[str, Any]) -> Any:
    """A payment webhook: the provider completes the callback its id was handed to."""
    return await wf.wait_for_callback(
        "Payment", ask_provider, data, timeout=data.get("timeout", "1d")
    )


@flow.workflow
async def poll_export(wf: WorkflowContext) -> Any:
    """A polling condition: three checks, a minute apart (timers, no compute)."""
    return await wf.wait_for_condition(
        "Export", lambda n: n + 1, initial_state=0, until=lambda n: n >= 3, interval="1min"
    )


# -- issue 12, items 3, 4 and 6: a retry policy, a step timeout, cancellation with cleanup -----
class RateBusy(Exception):
    """The rate service is busy: worth retrying."""


@flow.function(retry=RetryPolicy(max_attempts=3, initial_delay="10s", backoff=3.0, jitter="none"))
def fetch_rate(data: dict[str, int]) -> int:
    _called("fetch_rate")
    if calls["fetch_rate"] < 3:
        raise RateBusy("busy")
    return data["cents"] * 2


@flow.workflow
async def convert(wf: WorkflowContext, data: dict[str, int]) -> int:
    """An RPC step retried by its function's policy (waits of 10s, then 30s)."""
    return int(await wf.do("Fetch rate", fetch_rate, data, timeout="1min"))


@flow.function
def refund(data: dict[str, Any]) -> str:
    _called("refund")
    return f"refunded: {data['reason']}"


@flow.workflow
async def refundable_order(wf: WorkflowContext, data: dict[str, int]) -> str:
    """Charges (an RPC job), refunds when cancelled meanwhile."""
    try:
        return str(await wf.do("Charge", "charge", data))
    except WorkflowCancelled as cancelled:
        await wf.do("Refund", "refund", {"reason": cancelled.reason})
        raise


# -- issue 13: map and parallel with limits and completion policies, scopes, fork -------------
# ``calls`` counts these per item or stage (``bill:3``, ``stage:Pack``): what ran, and how often.
DECLINED = 3
"""The invoice :func:`bill_strictly` fails on."""


@flow.function
def bill(invoice: int) -> int:
    _called(f"bill:{invoice}")
    if invoice < 0:
        raise ValueError(f"card declined for invoice {-invoice}")
    return invoice * 10


@flow.workflow
async def bill_all(wf: WorkflowContext, count: int) -> list[Any]:
    """A map over a registered function, at most three invoices in flight."""
    batch = await wf.map("Bill", list(range(count)), bill, max_concurrency=3)
    return batch.values()


@flow.workflow
async def bill_strictly(wf: WorkflowContext, count: int) -> dict[str, Any]:
    """Two at a time; stops starting invoices at the first failure (invoice :data:`DECLINED`
    is sent negated, so :func:`bill` declines it)."""
    invoices = [-i if i == DECLINED else i for i in range(count)]
    batch = await wf.map(
        "Bill", invoices, bill, max_concurrency=2, completion=Completion(tolerated_failures=0)
    )
    return {
        "reason": batch.completion_reason,
        "results": batch.results,
        "failed": [index for index, _ in batch.failed()],
    }


@flow.function
def reserve(what: str) -> str:
    _called(f"reserve:{what}")
    return f"{what} reserved"


async def _hold_and_confirm(wf: WorkflowContext, what: str) -> list[str]:
    """The same helper in both branches of :func:`book_trip`: its keys must not clash."""
    held = await wf.do("Reserve", reserve, what)
    await wf.sleep("Hold", "1min")
    confirmed = await wf.do("Confirm", reserve, f"{what}!")
    return [held, confirmed]


async def _flight(wf: WorkflowContext) -> Any:
    return await wf.scope("Seat", _hold_and_confirm, "seat")


async def _hotel(wf: WorkflowContext) -> Any:
    return await wf.scope("Room", _hold_and_confirm, "room")


@flow.workflow
async def book_trip(wf: WorkflowContext) -> list[Any]:
    """A parallel of two branches, each a scope calling the same helper."""
    batch = await wf.parallel("Book", {"flight": _flight, "hotel": _hotel})
    return batch.values()


@flow.function
def stage(data: dict[str, Any]) -> int:
    _called(f"stage:{data['stage']}")
    return int(data["amount"]) + 1


@flow.workflow
async def fulfil(wf: WorkflowContext, amount: int) -> int:
    """Three RPC steps in a row, for forking from the second."""
    charged = await wf.do("Charge", stage, {"stage": "Charge", "amount": amount})
    packed = await wf.do("Pack", stage, {"stage": "Pack", "amount": charged})
    return int(await wf.do("Ship", stage, {"stage": "Ship", "amount": packed}))

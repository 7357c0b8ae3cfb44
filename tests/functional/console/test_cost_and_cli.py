"""Per-run cost (the benchmark's cost model in the library), ``lambda-flow status --cost`` and
``lambda-flow console``'s server."""

from __future__ import annotations

import json
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from lambda_flow import Flow, PostgresStore, WorkflowContext, WorkflowService
from lambda_flow.cli import main
from lambda_flow.console import CostModel, count_run, run_cost
from lambda_flow.core import StepAttempt, StepKind, StepStatus
from lambda_flow.local.web_console import BackgroundDriver, ConsoleServer
from lambda_flow.testing import TimeSkippingClock

T0 = datetime(2026, 1, 1, tzinfo=UTC)
CLAIM_DELAY = timedelta(milliseconds=5)
"""A queued step's worker claims it after its pass wrote it; a chained one, in that statement."""

cli_app = Flow()


@cli_app.workflow
async def nap(wf: WorkflowContext, data: dict[str, Any]) -> str:
    await wf.do("Prepare", lambda: "ready")
    await wf.sleep("Nap", "2h")  # longer than SQS's 15 minutes: a Scheduler schedule
    return "rested"


def _attempt(
    key: str,
    kind: StepKind,
    attempt: int,
    start: float,
    end: float,
    *,
    chained: bool = False,
    status: StepStatus = StepStatus.SUCCEEDED,
) -> StepAttempt:
    created = T0 + timedelta(seconds=start)
    return StepAttempt(
        step_key=key, step_name=key, kind=kind, status=status, attempt=attempt,
        created_at=created,
        started_at=created if chained or kind is not StepKind.RPC else created + CLAIM_DELAY,
        finished_at=T0 + timedelta(seconds=end),
    )  # fmt: skip


# The benchmark's onboarding run (bench/results.json, docs/performance.md): 3 RPC steps (the
# email retried once, the last one chained), 1 inline step, a five-minute sleep.
ONBOARDING = [
    _attempt("Create profile", StepKind.RPC, 1, 0.0, 0.01),
    _attempt("Greet", StepKind.INLINE, 1, 0.02, 0.021),
    _attempt("Wait before welcome email", StepKind.SLEEP, 1, 0.03, 300.03),
    _attempt("Send welcome email", StepKind.RPC, 1, 300.04, 300.05, status=StepStatus.FAILED),
    _attempt("Send welcome email", StepKind.RPC, 2, 301.06, 301.07),
    _attempt("Provision workspace", StepKind.RPC, 1, 301.08, 301.09, chained=True),
]


def test_the_counts_of_the_benchmarks_onboarding_run_are_its_measured_ones() -> None:
    counts = count_run(ONBOARDING)

    # bench/results.json: 6 invocations, 6 messages, 21 SQL statements per onboarding run
    assert (counts.invocations, counts.sqs_sends, counts.sql_statements) == (6, 6, 21)
    assert (counts.step_messages, counts.chained_steps, counts.timers) == (3, 1, 2)
    assert counts.scheduler_calls == 0


def test_the_default_prices_are_the_benchmarks_and_give_its_figure() -> None:
    cost = run_cost(count_run(ONBOARDING))

    # docs/performance.md: $2.76 per million steps for this 5-step run, so ~$13.8 per million runs
    assert cost.total * 1e6 == pytest.approx(13.8, abs=0.6)
    assert cost.model == CostModel()
    assert CostModel().lambda_request == 0.20 / 1e6
    assert CostModel().memory_gb == 0.5  # template.yaml's MemorySize: 512
    cheaper = run_cost(count_run(ONBOARDING), CostModel(db_io=0))
    assert cheaper.database == 0
    assert cheaper.total == pytest.approx(cost.total - cost.database)


def test_a_long_timer_goes_through_scheduler_and_a_fork_pays_only_its_own_steps() -> None:
    long_sleep = [_attempt("Nap", StepKind.SLEEP, 1, 0, 7200)]
    assert count_run(long_sleep).scheduler_calls == 1

    copied = ONBOARDING[:3]
    mine = [_attempt("Send welcome email", StepKind.RPC, 1, 400, 400.01)]
    forked = count_run([*copied, *mine], since=T0 + timedelta(seconds=399))
    assert forked.step_messages == 1
    assert forked.timers == 0


def test_cost_model_overrides_are_checked_by_name() -> None:
    assert CostModel.with_overrides({"db_io": 0.0}).db_io == 0.0
    with pytest.raises(ValueError, match="unknown cost parameter nope"):
        CostModel.with_overrides({"nope": 1.0})
    with pytest.raises(ValueError, match="must not be negative"):
        CostModel.with_overrides({"db_io": -1.0})


# -- the CLI --------------------------------------------------------------------------------
@pytest.fixture
def cli(  # noqa: PLR0917 - pytest passes fixtures by position
    database_url: str,
    schema: str,
    store: PostgresStore,
    capsys: pytest.CaptureFixture[str],
    clock: TimeSkippingClock,
    monkeypatch: pytest.MonkeyPatch,
) -> Any:
    for name in (
        "LAMBDA_FLOW_APP",
        "LAMBDA_FLOW_ORCHESTRATOR_QUEUE_URL",
        "LAMBDA_FLOW_STEP_QUEUE_URL",
    ):
        monkeypatch.delenv(name, raising=False)

    def run(*args: str) -> tuple[int, str, str]:
        argv = ["--database-url", database_url, "--schema", schema, "--app", f"{__name__}:cli_app"]
        capsys.readouterr()
        code = main([*argv, *args], clock=clock)
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_status_cost_prints_what_the_run_page_shows(
    cli: Any, store: PostgresStore, clock: TimeSkippingClock
) -> None:
    service = WorkflowService(cli_app, store=store, clock=clock)
    run_id = service.start("nap", {})
    expected = run_cost(count_run(service.get_run_history(run_id)))

    code, out, err = cli("status", run_id, "--cost")
    json_code, json_out, _ = cli("status", run_id, "--cost", "--json")
    free_code, free_out, _ = cli("status", run_id, "--cost", "--json", "--price", "db_io=0")

    assert code == 0, err
    assert "Database I/O" in out
    assert "EventBridge Scheduler" in out
    assert f"${expected.total:.8f}" in out
    assert json_code == 0
    data = json.loads(json_out)
    assert data["run_id"] == run_id
    assert data["total_usd"] == pytest.approx(expected.total)
    assert data["counts"]["scheduler_calls"] == 1
    assert free_code == 0
    assert json.loads(free_out)["items_usd"]["database"] == 0


@pytest.mark.parametrize("price", ["db_io", "nope=1", "db_io=x", "db_io=-1"])
def test_status_cost_refuses_a_bad_price(
    cli: Any, store: PostgresStore, clock: TimeSkippingClock, price: str
) -> None:
    run_id = WorkflowService(cli_app, store=store, clock=clock).start("nap", {})

    code, out, err = cli("status", run_id, "--cost", "--price", price)

    assert code == 2
    assert err.startswith("error: ")
    assert out == ""


def test_the_console_command_serves_pages_and_drives_actions_in_the_background(
    store: PostgresStore, flow: Flow
) -> None:
    @flow.workflow
    async def approval(wf: WorkflowContext, data: dict[str, Any]) -> Any:
        return {"decision": await wf.suspend("decide")}

    driver = BackgroundDriver()
    service = WorkflowService(flow, store=store, driver=driver)
    run_id = service.start("approval", {})
    with ConsoleServer(service, port=0) as server:
        with urllib.request.urlopen(server.url) as page:  # noqa: S310 - loopback
            body = page.read().decode()
            cookie = page.headers["Set-Cookie"].split(";")[0]
        root = server.url.removesuffix("/console")
        with urllib.request.urlopen(root + "/") as redirected:  # noqa: S310
            assert redirected.url == server.url
        token = cookie.split("=", 1)[1]
        form = f"csrf={token}&payload=%7B%7D&confirm=yes".encode()
        request = urllib.request.Request(  # noqa: S310
            f"{server.url}/runs/{run_id}/resume", data=form, method="POST",
            headers={"Cookie": cookie, "Origin": root,
                     "Content-Type": "application/x-www-form-urlencoded"},
        )  # fmt: skip
        with urllib.request.urlopen(request) as done:  # noqa: S310 - follows the 303
            assert done.status == 200
        assert run_id in body
    driver.join(timeout=30)  # the resume drives the run in a thread of its own
    run = service.get_run(run_id)
    assert run is not None
    assert (run.status.value, run.output) == ("completed", {"decision": {}})

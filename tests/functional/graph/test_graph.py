"""Graph workflows on a real Postgres, inline mode: semantics, failures, cancel and replay."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest

from lambda_flow import (
    Flow,
    InvalidRunState,
    PostgresStore,
    RunStatus,
    RunTimedOut,
    StepKind,
    StepStatus,
    WorkflowService,
    branch,
    current_step,
    ref,
)
from lambda_flow.testing import CrashBeforeWrite, SimulatedCrash, TimeSkippingClock


def _history(service: WorkflowService, run_id: str) -> list[tuple[str, int, StepStatus]]:
    return [(h.step_name, h.attempt, h.status) for h in service.get_run_history(run_id)]


def _run(service: WorkflowService, run_id: str) -> Any:
    run = service.get_run(run_id)
    assert run is not None
    return run


# -- semantics, inline ------------------------------------------------------------------------
def test_linear_graph_passes_outputs_along(flow: Flow, service: WorkflowService) -> None:
    @flow.function
    def add_one(n: int) -> int:
        return n + 1

    @flow.function
    def describe(data: dict[str, Any]) -> str:
        return f"{data['first']} then {data['second']}"

    flow.graph(
        "linear",
        nodes={"a": add_one, "b": "add_one", "c": "describe"},
        config={
            "a": {"next": "b"},  # an entry node without input gets the run's input
            "b": {"next": "c"},  # one predecessor, no input: gets its output
            "c": {"input": lambda ref: {"first": ref("a"), "second": ref("b")}},
        },
    )

    run_id = service.start("linear", 1)

    run = _run(service, run_id)
    assert run.status is RunStatus.COMPLETED, run.error
    assert run.output == {"c": "2 then 3"}
    history = service.get_run_history(run_id)
    assert [(h.step_name, h.kind, h.status, h.result) for h in history] == [
        ("a", StepKind.RPC, StepStatus.SUCCEEDED, {"output": 2, "branch": None}),
        ("b", StepKind.RPC, StepStatus.SUCCEEDED, {"output": 3, "branch": None}),
        ("c", StepKind.RPC, StepStatus.SUCCEEDED, {"output": "2 then 3", "branch": None}),
    ]


@pytest.mark.parametrize(
    ("amount", "path", "output"),
    [
        (5, ["measure", "auto"], {"auto": "approved 5"}),
        (500, ["measure", "review"], {"review": "queued 500"}),
        (-1, ["measure"], {"measure": -1}),  # a key matching no edge ends that path
    ],
)
def test_branching_follows_the_key_the_node_picked(
    amount: int, path: list[str], output: Any, flow: Flow, service: WorkflowService
) -> None:
    @flow.function
    def measure(data: dict[str, int]) -> int:
        size = data["amount"]
        branch("nothing" if size < 0 else "big" if size > 100 else "small")
        return size

    @flow.function
    def decide(data: dict[str, Any]) -> str:
        return f"{data['verdict']} {data['size']}"

    flow.graph(
        "route",
        nodes={"measure": measure, "auto": decide, "review": decide},
        config={
            "measure": {"next": {"small": "auto", "big": "review"}},
            "auto": {"input": lambda ref: {"verdict": "approved", "size": ref("measure")}},
            # input may also be the value itself, with ref() imported from lambda_flow
            "review": {"input": {"verdict": "queued", "size": ref("trigger", "amount")}},
        },
    )

    run_id = service.start("route", {"amount": amount})

    assert _run(service, run_id).output == output
    assert [name for name, _, _ in _history(service, run_id)] == path


def test_fan_out_runs_in_parallel_and_the_join_runs_once_seeing_all_outputs(
    flow: Flow, service: WorkflowService
) -> None:
    calls: Counter[str] = Counter()
    all_started = asyncio.Event()

    @flow.function
    async def fetch(data: dict[str, Any]) -> dict[str, Any]:
        step = current_step()
        assert step is not None
        calls[step.step_name] += 1
        if sum(calls[n] for n in ("b", "c", "d")) == 3:
            all_started.set()
        # Finishes only if its siblings started too: one node at a time would deadlock here.
        await asyncio.wait_for(all_started.wait(), timeout=5)
        return {"source": step.step_name, "user": data["user"]}

    @flow.function
    def merge(data: dict[str, Any]) -> list[str]:
        calls["join"] += 1
        return [data["b"], data["c"], data["d"], data["user"]]

    flow.function(name="begin")(lambda data: data)
    flow.graph(
        "fan",
        nodes={"start": "begin", "b": fetch, "c": fetch, "d": fetch, "join": merge},
        config={
            "start": {"next": ["b", "c", "d"]},
            "b": {"next": "join"},
            "c": {"next": "join"},
            "d": {"next": "join"},
            "join": {
                "input": lambda ref: {
                    "b": ref("b", "source"),
                    "c": ref("c", "source"),
                    "d": ref("d", "source"),
                    "user": ref("input", "user"),  # "input" is an alias of "trigger"
                }
            },
        },
    )

    run_id = service.start("fan", {"user": "ada"})

    run = _run(service, run_id)
    assert run.status is RunStatus.COMPLETED, run.error
    assert run.output == {"join": ["b", "c", "d", "ada"]}
    assert calls == {"b": 1, "c": 1, "d": 1, "join": 1}
    assert [n for n, _, _ in _history(service, run_id)][-1] == "join"


def test_a_join_waits_only_for_the_predecessors_that_were_activated(
    flow: Flow, service: WorkflowService
) -> None:
    @flow.function
    def pick(data: dict[str, str]) -> str:
        branch(data["way"])
        return data["way"]

    @flow.function
    def echo(data: Any) -> Any:
        return data

    flow.graph(
        "diamond",
        nodes={"pick": pick, "left": echo, "right": echo, "join": echo},
        config={
            "pick": {"next": {"left": "left", "right": "right"}},
            "left": {"next": "join", "input": "went left"},
            "right": {"next": "join", "input": "went right"},
            "join": {"input": lambda ref: [ref("left"), ref("right")]},
        },
    )

    run_id = service.start("diamond", {"way": "right"})

    assert _run(service, run_id).output == {"join": [None, "went right"]}
    assert [n for n, _, _ in _history(service, run_id)] == ["pick", "right", "join"]


def test_a_failed_node_runs_its_on_error_node_then_fails_the_run(
    flow: Flow, service: WorkflowService, clock: TimeSkippingClock
) -> None:
    compensations: list[Any] = []
    ran: Counter[str] = Counter()

    @flow.function
    def charge(data: dict[str, Any]) -> None:
        ran["charge"] += 1
        raise ConnectionError(f"card {data['card']} declined")

    @flow.function
    def refund(data: dict[str, Any]) -> str:
        compensations.append(data)
        return "refunded"

    @flow.function
    def step(data: Any) -> str:
        name = current_step().step_name  # type: ignore[union-attr]
        ran[name] += 1
        return name

    flow.graph(
        "pay",
        nodes={"start": step, "charge": charge, "refund": refund, "ship": step, "audit": step},
        config={
            "start": {"next": ["charge", "audit"]},
            "charge": {
                "next": "ship",
                "input": lambda ref: {"card": ref("trigger", "card")},
                "retries": 1,
                "retry_delay": "10s",
                "on_error": "refund",
            },
        },
    )

    run_id = service.start("pay", {"card": "4242"})

    run = _run(service, run_id)
    assert run.status is RunStatus.FAILED
    assert run.error.type == "StepFailed"
    assert run.error.step_key == "charge"
    assert "after 2 attempts: ConnectionError: card 4242 declined" in run.error.message
    assert compensations == [
        {
            "error": {
                "message": "card 4242 declined",
                "type": "ConnectionError",
                "node": "charge",
                "attempts": 2,
            },
            "input": {"card": "4242"},
        }
    ]
    # The independent branch ran to its end; the failed node's successor never ran.
    assert ran == {"start": 1, "charge": 2, "audit": 1}
    history = sorted(_history(service, run_id))
    assert history == [
        ("audit", 1, StepStatus.SUCCEEDED),
        ("charge", 1, StepStatus.FAILED),
        ("charge", 2, StepStatus.FAILED),
        ("refund", 1, StepStatus.SUCCEEDED),
        ("start", 1, StepStatus.SUCCEEDED),
    ]
    assert clock.slept == [timedelta(seconds=10)]


def test_a_shared_on_error_node_runs_once_per_failed_node(
    flow: Flow, service: WorkflowService
) -> None:
    @flow.function
    def boom(data: Any) -> None:
        raise ValueError(f"{current_step().step_name} broke")  # type: ignore[union-attr]

    @flow.function
    def alert(data: dict[str, Any]) -> str:
        return str(data["error"]["message"])

    flow.graph(
        "two_failures",
        nodes={"x": boom, "y": boom, "alert": alert},
        config={"x": {"on_error": "alert"}, "y": {"on_error": "alert"}},
    )

    run_id = service.start("two_failures")

    run = _run(service, run_id)
    assert run.error.step_key == "x"  # the first failed node in definition order
    results = {h.step_name: h.result for h in service.get_run_history(run_id) if h.result}
    assert results == {
        "alert for x": {"output": "x broke", "branch": None},
        "alert for y": {"output": "y broke", "branch": None},
    }


def test_a_failing_on_error_node_leaves_the_run_failing_with_the_original_error(
    flow: Flow, service: WorkflowService
) -> None:
    flow.function(name="pay")(lambda: 1 / 0)
    flow.function(name="undo")(lambda: {}["refund"])
    flow.graph("doubly", nodes={"pay": "pay", "undo": "undo"}, config={"pay": {"on_error": "undo"}})

    run_id = service.start("doubly")

    run = _run(service, run_id)
    assert (run.error.type, run.error.step_key) == ("StepFailed", "pay")
    assert "ZeroDivisionError" in run.error.message
    assert _history(service, run_id) == [
        ("pay", 1, StepStatus.FAILED),
        ("undo", 1, StepStatus.FAILED),
    ]


def test_retries_on_a_node(flow: Flow, service: WorkflowService, clock: TimeSkippingClock) -> None:
    @flow.function
    def flaky() -> str:
        step = current_step()
        assert step is not None
        if step.attempt < 3:
            raise TimeoutError(f"attempt {step.attempt} timed out")
        return f"ok on {step.attempt}"

    flow.graph(
        "retrying", nodes={"call": flaky}, config={"call": {"retries": 3, "retry_delay": "1s"}}
    )

    run_id = service.start("retrying")

    assert _run(service, run_id).output == {"call": "ok on 3"}
    assert _history(service, run_id) == [
        ("call", 1, StepStatus.FAILED),
        ("call", 2, StepStatus.FAILED),
        ("call", 3, StepStatus.SUCCEEDED),
    ]
    assert clock.slept == [timedelta(seconds=1)] * 2


def test_a_ref_path_missing_from_an_output_fails_the_run_naming_it(
    flow: Flow, service: WorkflowService
) -> None:
    flow.function(name="profile")(lambda: {"email": "a@b.c"})
    flow.function(name="send")(lambda data: data)
    flow.graph(
        "typo",
        nodes={"profile": "profile", "send": "send"},
        config={"profile": {"next": "send"}, "send": {"input": {"to": ref("profile", "mail")}}},
    )

    run = _run(service, service.start("typo"))

    assert run.status is RunStatus.FAILED
    assert run.error.type == "GraphInputError"
    assert run.error.message == (
        "input of node 'send': ref('profile', 'mail'): no 'mail' at the top of 'profile''s value"
    )


# -- operator actions and durability ----------------------------------------------------------
def test_cancel_a_graph_run_waiting_for_a_retry(
    flow: Flow, service: WorkflowService, clock: TimeSkippingClock
) -> None:
    calls: list[int] = []

    @flow.function
    def slow_provider() -> None:
        calls.append(1)
        raise ConnectionError("provider down")

    flow.function(name="after")(lambda: "never")
    flow.graph(
        "patient",
        nodes={"call": slow_provider, "after": "after"},
        config={"call": {"next": "after", "retries": 5, "retry_delay": "1h"}},
    )
    with pytest.raises(RunTimedOut):
        service.run_to_completion("patient", timeout="1min")
    run_id = service.list_runs()[0].id

    cancelled = service.cancel(run_id, reason="gave up")
    clock.advance("1d")

    assert cancelled.status is RunStatus.CANCELLED
    with pytest.raises(InvalidRunState):
        service.resume(run_id)
    assert calls == [1]
    assert _history(service, run_id) == [("call", 1, StepStatus.FAILED)]


def test_a_crashed_graph_run_resumes_without_rerunning_finished_nodes(
    flow: Flow, store: PostgresStore, clock: TimeSkippingClock
) -> None:
    effects: Counter[str] = Counter()

    @flow.function
    def work(data: Any) -> str:
        name = current_step().step_name  # type: ignore[union-attr]
        effects[name] += 1
        return name

    flow.graph(
        "crashy",
        nodes={"a": work, "b": work, "c": work, "d": work},
        config={"a": {"next": ["b", "c"]}, "b": {"next": "d"}, "c": {"next": "d"}},
    )
    crashing = CrashBeforeWrite(
        store, when=lambda w: w.key == "c" and w.status is StepStatus.SUCCEEDED
    )
    with pytest.raises(SimulatedCrash):
        WorkflowService(flow, store=crashing, clock=clock).start("crashy")  # type: ignore[arg-type]
    run_id = store.list_runs()[0].id
    assert effects == {"a": 1, "b": 1, "c": 1}

    clock.advance("31s")  # the dead process's lease runs out
    run = WorkflowService(flow, store=store, clock=clock).resume(run_id)

    assert run.status is RunStatus.COMPLETED, run.error
    assert run.output == {"d": "d"}
    assert effects == {"a": 1, "b": 1, "c": 2, "d": 1}  # only the node that never committed


def test_a_node_function_also_works_as_a_plain_step(flow: Flow, service: WorkflowService) -> None:
    @flow.function
    def check_plan(data: dict[str, str]) -> str:
        branch(data["plan"])  # does nothing outside a graph
        return data["plan"]

    @flow.workflow
    async def plain(wf: Any, data: dict[str, str]) -> str:
        return str(await wf.do("plan", check_plan, data))

    assert service.run_to_completion("plain", {"plan": "pro"}) == "pro"

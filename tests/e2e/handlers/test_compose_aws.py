"""Map, parallel, scopes and fork through the real handlers on moto (issue 13, items 2, 3, 5).

Every batch is delivered twice (SQS's at-least-once delivery): no item runs twice, and the
concurrency limit holds between any two deliveries.
"""

from __future__ import annotations

from collections import Counter

import pytest

from lambda_flow import RunStatus
from tests.e2e import app, aws
from tests.e2e.aws import Harness

moto_server = aws.moto_server
harness = aws.harness

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

IN_FLIGHT = ("scheduled", "running")


def _in_flight(harness: Harness, run_id: str, prefix: str) -> int:
    """Steps under ``prefix`` queued for a worker or claimed by one."""
    return sum(
        1
        for step in harness.runtime.store.get_steps(run_id)
        if step.key.startswith(prefix) and step.status.value in IN_FLIGHT
    )


def _drain_observing(harness: Harness, run_id: str, prefix: str, *, limit: int = 200) -> int:
    """Pump both queues, every batch twice, one batch at a time; return the peak number of
    ``prefix`` steps in flight seen after any delivery."""
    peak = 0
    for _ in range(limit):
        delivered = harness.deliver("orchestrator", times=2) or harness.deliver(
            "step_worker", times=2
        )
        if delivered is None and not harness.release_next_delayed():
            return peak
        peak = max(peak, _in_flight(harness, run_id, prefix))
    raise AssertionError(f"the queues did not drain in {limit} deliveries")


def test_a_map_keeps_its_limit_and_runs_each_item_once(harness: Harness) -> None:
    run_id = harness.service.start("bill_all", 12)

    peak = _drain_observing(harness, run_id, "Bill/")

    run = harness.run(run_id)
    assert run.status is RunStatus.COMPLETED, run.error
    assert run.output == [i * 10 for i in range(12)]
    assert app.calls == Counter({f"bill:{i}": 1 for i in range(12)})
    assert peak == 3  # never above the limit, and the limit reached
    item_keys = {s.key for s in harness.runtime.store.get_steps(run_id)} - {"Bill"}
    assert item_keys == {f"Bill/{i}" for i in range(12)}
    step_invocations = [i for i in harness.invocations if i.function == "step_worker"]
    assert all(len(i.bodies) <= 3 for i in step_invocations)  # one batch never exceeds it


def test_a_parallel_of_scopes_calling_the_same_helper(harness: Harness) -> None:
    run_id = harness.service.start("book_trip")
    harness.pump(times=2)

    run = harness.run(run_id)
    assert run.status is RunStatus.COMPLETED, run.error
    assert run.output == [
        ["seat reserved", "seat! reserved"],
        ["room reserved", "room! reserved"],
    ]
    assert app.calls == Counter(
        {"reserve:seat": 1, "reserve:seat!": 1, "reserve:room": 1, "reserve:room!": 1}
    )
    keys = {s.key for s in harness.runtime.store.get_steps(run_id)}
    for branch, scope in (("flight", "Seat"), ("hotel", "Room")):
        for step in ("Reserve", "Hold", "Confirm"):
            assert f"Book/{branch}/{scope}/{step}" in keys


def test_a_map_stops_starting_items_past_its_failure_tolerance(harness: Harness) -> None:
    run_id = harness.service.start("bill_strictly", 8)

    peak = _drain_observing(harness, run_id, "Bill/")

    run = harness.run(run_id)
    assert run.status is RunStatus.COMPLETED, run.error
    declined = app.DECLINED
    assert run.output["reason"] == "failure_tolerance_exceeded"
    assert run.output["failed"] == [declined]
    assert peak <= 2
    # Items before the failure ran; at most one beside it (the limit is 2) may have been
    # running when it failed; none after that was started.
    for index in range(declined):
        assert app.calls[f"bill:{index}"] == 1
        assert run.output["results"][index] == index * 10
    assert app.calls[f"bill:{-declined}"] == 1
    assert app.calls[f"bill:{declined + 1}"] <= 1
    later = range(declined + 2, 8)
    assert all(app.calls[f"bill:{index}"] == 0 for index in later)
    assert all(run.output["results"][index] is None for index in later)
    keys = {s.key for s in harness.runtime.store.get_steps(run_id)}
    assert not keys & {f"Bill/{index}" for index in later}


def test_a_fork_from_the_second_step_runs_only_the_rest_on_the_workers(
    harness: Harness,
) -> None:
    source = harness.service.start("fulfil", 10)
    harness.pump(times=2)
    assert harness.run(source).output == 13
    assert app.calls == Counter({"stage:Charge": 1, "stage:Pack": 1, "stage:Ship": 1})
    workers_before = harness.count("step_worker")
    sent_before = len(harness.recorder.sent)

    forked = harness.service.fork(source, from_step="Pack")

    orchestrator = harness.queues["orchestrator"].url
    assert [m.queue_url for m in harness.recorder.sent[sent_before:]] == [orchestrator]
    assert harness.run(forked).status is not RunStatus.COMPLETED  # queued, not run here
    harness.pump(times=2)
    run = harness.run(forked)
    assert run.status is RunStatus.COMPLETED, run.error
    assert run.output == 13
    assert run.forked_from == {"run_id": source, "step_key": "Pack"}
    assert app.calls == Counter({"stage:Charge": 1, "stage:Pack": 2, "stage:Ship": 2})
    # Pack's job, delivered twice; Ship is the one step Pack's pass schedules: the worker that
    # ran Pack runs it too (chained, no message).
    assert harness.count("step_worker") - workers_before == 2
    steps = {s.key: s for s in harness.runtime.store.get_steps(forked)}
    assert list(steps) == ["Charge", "Pack", "Ship"]
    assert steps["Charge"].result == 11  # copied from the source run, not run again
    assert harness.run(source).output == 13  # the source run is untouched

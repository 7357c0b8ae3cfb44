"""Child workflows and ``wf.map`` survive a crash at every point of their life (remote mode).

Each test kills a "process" (``SimulatedCrash``) at one point: (a) before the parent's
``start_child`` statement commits, (b) after it and before the child's message is sent, (c) in
the child's last pass before its finish commits, (d) after the child's finish commits and before
the parent's wake-up is sent, (e) in the parent's pass right after it read the child's result;
and a ``wf.map`` with ``max_concurrency`` killed after some items committed. Recovery is what
production does: the dead process's message comes back after its visibility timeout, and/or the
sweeper re-drives what lost its way. Then: the parent's output is right, exactly one child run
exists, and every side effect happened exactly once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from lambda_flow import (
    Flow,
    PostgresStore,
    RetryPolicy,
    RunStatus,
    StepStatus,
    WorkflowContext,
    WorkflowService,
)
from lambda_flow.store.base import RunLease, RunOutcome
from lambda_flow.testing import SimulatedCrash, TimeSkippingClock
from lambda_flow.transport.local import LocalMessage, LocalQueue
from lambda_flow.worker import Dispatcher
from tests.functional.worker.test_remote import deliver, drain

LEASE_GONE = "31s"
"""Past the dead pass's lease (30 s): another process may take the run."""
SWEEP_DUE = "3min"
"""Past the sweeper's unsent age (2 min): a run or job without a message is re-driven."""


# -- crashing a "process" at a chosen point -----------------------------------------------------
class CrashAt:
    """A store whose ``method`` "kills the process" once: before its statement commits, or
    (``after=True``) right after it committed. Everything else goes to the real store."""

    def __init__(
        self,
        store: PostgresStore,
        method: str,
        when: Callable[..., bool],
        *,
        after: bool = False,
    ) -> None:
        self._store = store
        self._method = method
        self._when = when
        self._after = after
        self.crashed = False

    def __getattr__(self, name: str) -> Any:
        real = getattr(self._store, name)
        if name != self._method:
            return real

        def call(*args: Any, **kwargs: Any) -> Any:
            hit = not self.crashed and self._when(*args, **kwargs)
            if hit and not self._after:
                self.crashed = True
                raise SimulatedCrash(f"process killed before {name} committed")
            result = real(*args, **kwargs)
            if hit:
                self.crashed = True
                raise SimulatedCrash(f"process killed after {name} committed")
            return result

        return call


class CrashBeforeWriting:
    """A pass "killed" before the statement that writes step ``key`` commits, whichever
    statement that is (``write_steps`` mid-pass, or ``finish_pass`` with the pass's outbox)."""

    def __init__(self, store: PostgresStore, key: str) -> None:
        self._store = store
        self._key = key
        self.crashed = False

    def _check(self, writes: Any) -> None:
        if not self.crashed and any(w.key == self._key for w in writes):
            self.crashed = True
            raise SimulatedCrash(f"process killed before {self._key} was written")

    def write_steps(self, lease: RunLease, writes: Any, *args: Any) -> int:
        self._check(writes)
        return self._store.write_steps(lease, writes, *args)

    def finish_pass(
        self, lease: RunLease, outcome: RunOutcome, writes: Any, *args: Any, **kw: Any
    ) -> int:
        self._check(writes)
        return self._store.finish_pass(lease, outcome, writes, *args, **kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


class SendCrash:
    """The process dies at its first ``enqueue_run`` that ``when(run_id)`` picks, before the
    message leaves; everything else reaches the real (shared) queue."""

    def __init__(self, queue: LocalQueue, when: Callable[[str], bool]) -> None:
        self._queue = queue
        self._when = when
        self.crashed = False

    def enqueue_run(self, run_id: str, **kwargs: Any) -> None:
        if not self.crashed and self._when(run_id):
            self.crashed = True
            raise SimulatedCrash("process killed before its message was sent")
        self._queue.enqueue_run(run_id, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._queue, name)


def doomed(
    flow: Flow, clock: TimeSkippingClock, *, store: Any, queue: Any
) -> tuple[WorkflowService, Dispatcher]:
    """The service and dispatcher of a process that will die (its store or queue crashes)."""
    service = WorkflowService(flow, store=store, queue=queue, clock=clock)
    return service, Dispatcher(service)


def until_crash(queue: LocalQueue, dispatcher: Dispatcher, limit: int = 100) -> LocalMessage:
    """Deliver due messages until one kills the process; that message (never deleted)."""
    for _ in range(limit):
        message = queue.receive()
        assert message is not None, "the queue drained without the crash"
        try:
            deliver(dispatcher, message)
        except SimulatedCrash:
            return message
    raise AssertionError("no crash")


def finish(
    queue: LocalQueue, dispatcher: Dispatcher, clock: TimeSkippingClock, run_id: str
) -> list[list[str]]:
    """Healthy processes carry on: drain, then sweep while the run is unfinished (bounded).

    Returns what each sweep re-drove (run ids), for the test to assert on.
    """
    sweeps: list[list[str]] = []
    drain(queue, dispatcher)
    for _ in range(5):
        run = dispatcher.service.get_run(run_id)
        assert run is not None
        if run.status is not RunStatus.RUNNING:
            break
        clock.advance(SWEEP_DUE)
        sweeps.append(dispatcher.sweep().runs)
        drain(queue, dispatcher)
    return sweeps


@dataclass(frozen=True)
class Rig:
    """Remote mode in one process: the healthy service and dispatcher, and what they share."""

    flow: Flow
    store: PostgresStore
    clock: TimeSkippingClock
    queue: LocalQueue
    service: WorkflowService
    dispatcher: Dispatcher


@pytest.fixture
def rig(
    flow: Flow, store: PostgresStore, clock: TimeSkippingClock, queue: LocalQueue, remote: Any
) -> Rig:
    return Rig(flow, store, clock, queue, *remote)


@pytest.fixture
def effects(flow: Flow) -> Counter[str]:
    """An order that provisions a workspace in a child run, then notifies with its result."""
    calls: Counter[str] = Counter()

    @flow.function
    def provision(name: str) -> str:
        calls["provision"] += 1
        return f"ws-{name}"

    @flow.function
    def notify(workspace: str) -> str:
        calls["notify"] += 1
        return f"told {workspace}"

    @flow.workflow
    async def setup(wf: WorkflowContext, name: str) -> str:
        return str(await wf.do("Provision", provision, name))

    @flow.workflow
    async def order(wf: WorkflowContext, name: str) -> str:
        workspace = await wf.child("Setup", setup, name)
        return str(await wf.do("Notify", notify, workspace))

    return calls


def assert_done_once(service: WorkflowService, run_id: str, effects: Counter[str]) -> None:
    run = service.get_run(run_id)
    assert run is not None
    assert run.status is RunStatus.COMPLETED, run
    assert run.output == "told ws-a"
    [child] = service.list_runs(parent_id=run_id)
    assert child.status is RunStatus.COMPLETED
    assert child.output == "ws-a"
    assert effects == {"provision": 1, "notify": 1}
    history = [(a.step_key, a.attempt, a.status) for a in service.get_run_history(run_id)]
    assert history == [
        ("Setup", 1, StepStatus.SUCCEEDED),
        ("Notify", 1, StepStatus.SUCCEEDED),
    ]
    assert [(a.step_key, a.attempt) for a in service.get_run_history(child.id)] == [
        ("Provision", 1)
    ]


def _terminal_finish_of(run_id: Callable[[], str | None]) -> Callable[..., bool]:
    def when(lease: RunLease, outcome: RunOutcome, *args: Any, **kwargs: Any) -> bool:
        return lease.run_id == run_id() and outcome.status.is_terminal

    return when


# -- (a) before the parent's start_child statement commits ---------------------------------------
def test_a_crash_before_the_child_is_recorded_starts_it_once_on_redelivery(
    rig: Rig,
    effects: Counter[str],
) -> None:
    flow, store, clock, queue = rig.flow, rig.store, rig.clock, rig.queue
    service, dispatcher = rig.service, rig.dispatcher
    crashing = CrashAt(store, "start_child", lambda *a, **k: True)
    _, dying = doomed(flow, clock, store=crashing, queue=queue)
    run_id = service.start("order", "a")

    message = until_crash(queue, dying)
    assert crashing.crashed
    assert service.list_runs(parent_id=run_id) == []  # nothing of the child was written
    assert service.get_run_history(run_id) == []

    clock.advance(LEASE_GONE)
    deliver(dispatcher, message)  # SQS redelivers the message the dead process never deleted
    assert finish(queue, dispatcher, clock, run_id) == []  # no sweep was needed

    assert_done_once(service, run_id, effects)


# -- (b) after start_child committed, before the child's message is sent -------------------------
def test_a_child_whose_message_died_with_its_parents_pass_is_driven_by_the_sweeper(
    rig: Rig,
    effects: Counter[str],
) -> None:
    flow, store, clock, queue = rig.flow, rig.store, rig.clock, rig.queue
    service, dispatcher = rig.service, rig.dispatcher
    run_id = service.start("order", "a")
    sending = SendCrash(queue, lambda target: target != run_id)
    _, dying = doomed(flow, clock, store=store, queue=sending)

    message = until_crash(queue, dying)
    assert sending.crashed
    [child] = service.list_runs(parent_id=run_id)  # committed with the parent's step
    assert child.status is RunStatus.RUNNING
    assert queue.messages == []

    clock.advance(LEASE_GONE)
    deliver(dispatcher, message)  # the parent's pass again: the child exists, not started again
    sweeps = finish(queue, dispatcher, clock, run_id)
    assert sweeps[0] == [child.id]  # the sweeper finds the child that never got its message

    assert_done_once(service, run_id, effects)


def test_a_parents_pass_that_died_after_starting_the_child_is_taken_over_by_the_sweeper(
    rig: Rig,
    effects: Counter[str],
) -> None:
    flow, store, clock, queue = rig.flow, rig.store, rig.clock, rig.queue
    service, dispatcher = rig.service, rig.dispatcher
    crashing = CrashAt(store, "start_child", lambda *a, **k: True, after=True)
    _, dying = doomed(flow, clock, store=crashing, queue=queue)
    run_id = service.start("order", "a")

    until_crash(queue, dying)  # and its message is gone for good (no redelivery)
    [child] = service.list_runs(parent_id=run_id)
    assert child.status is RunStatus.RUNNING

    finish(queue, dispatcher, clock, run_id)

    assert_done_once(service, run_id, effects)


# -- (c) in the child's last pass, before its finish commits -------------------------------------
def test_a_child_killed_before_its_end_committed_ends_once_and_wakes_its_parent(
    rig: Rig,
    effects: Counter[str],
) -> None:
    flow, store, clock, queue = rig.flow, rig.store, rig.clock, rig.queue
    service, dispatcher = rig.service, rig.dispatcher
    run_id = service.start("order", "a")
    children: list[str] = []
    crashing = CrashAt(
        store, "finish_pass", _terminal_finish_of(lambda: children[0] if children else None)
    )
    _, dying = doomed(flow, clock, store=crashing, queue=queue)
    deliver(dispatcher, queue.receive())  # the parent's first pass starts the child
    children.extend(r.id for r in service.list_runs(parent_id=run_id))

    message = until_crash(queue, dying)  # the step worker of Provision, handing the child on
    assert message.queue == "step"
    [child] = service.list_runs(parent_id=run_id)
    assert child.status is RunStatus.RUNNING
    assert effects == {"provision": 1}  # its result is committed: it never runs again

    clock.advance(LEASE_GONE)
    deliver(dispatcher, message)  # redelivered: the step is done, the child needs a pass
    assert finish(queue, dispatcher, clock, run_id) == []

    assert_done_once(service, run_id, effects)


def test_a_child_killed_before_its_end_committed_is_found_by_the_sweeper(
    rig: Rig,
    effects: Counter[str],
) -> None:
    flow, store, clock, queue = rig.flow, rig.store, rig.clock, rig.queue
    service, dispatcher = rig.service, rig.dispatcher
    run_id = service.start("order", "a")
    children: list[str] = []
    crashing = CrashAt(
        store, "finish_pass", _terminal_finish_of(lambda: children[0] if children else None)
    )
    _, dying = doomed(flow, clock, store=crashing, queue=queue)
    deliver(dispatcher, queue.receive())
    children.extend(r.id for r in service.list_runs(parent_id=run_id))

    until_crash(queue, dying)  # the message is lost for good
    sweeps = finish(queue, dispatcher, clock, run_id)
    assert children[0] in sweeps[0]

    assert_done_once(service, run_id, effects)


# -- (d) after the child's finish committed, before the parent's wake-up is sent ----------------
@pytest.mark.parametrize("redelivered", [True, False])
def test_a_crash_between_a_childs_completion_and_its_parents_wake_up(
    rig: Rig,
    effects: Counter[str],
    redelivered: bool,
) -> None:
    flow, store, clock, queue = rig.flow, rig.store, rig.clock, rig.queue
    service, dispatcher = rig.service, rig.dispatcher
    run_id = service.start("order", "a")
    sending = SendCrash(queue, lambda target: target == run_id)
    _, dying = doomed(flow, clock, store=store, queue=sending)
    deliver(dispatcher, queue.receive())  # the parent's first pass starts the child
    [child] = service.list_runs(parent_id=run_id)

    message = until_crash(queue, dying)
    assert sending.crashed
    assert service.get_run(child.id).status is RunStatus.COMPLETED  # type: ignore[union-attr]
    parent = service.get_run(run_id)
    assert parent is not None
    assert parent.status is RunStatus.RUNNING
    steps = service.get_run_history(run_id)
    assert [(s.step_key, s.status) for s in steps] == [("Setup", StepStatus.SUCCEEDED)]
    assert queue.messages == []  # nothing will wake the parent but the sweeper

    if redelivered:
        deliver(dispatcher, message)  # a redelivered job of a finished step: harmless
        drain(queue, dispatcher, skip_time=False)
    clock.advance("6s")
    assert dispatcher.sweep().runs == [run_id]  # unsettled: a result no pass has seen
    drain(queue, dispatcher)

    assert_done_once(service, run_id, effects)


# -- (e) in the parent's pass right after it read the child's result ---------------------------
@pytest.mark.parametrize("redelivered", [True, False])
def test_a_parent_killed_right_after_reading_its_childs_result(
    rig: Rig,
    effects: Counter[str],
    redelivered: bool,
) -> None:
    flow, store, clock, queue = rig.flow, rig.store, rig.clock, rig.queue
    service, dispatcher = rig.service, rig.dispatcher
    crashing = CrashBeforeWriting(store, "Notify")
    _, dying = doomed(flow, clock, store=crashing, queue=queue)
    run_id = service.start("order", "a")

    message = until_crash(queue, dying)
    assert crashing.crashed
    assert message.queue == "orchestrator"  # the parent's pass woken by its child's end
    [child] = service.list_runs(parent_id=run_id)
    assert child.status is RunStatus.COMPLETED
    assert effects == {"provision": 1}

    if redelivered:
        clock.advance(LEASE_GONE)
        deliver(dispatcher, message)
    finish(queue, dispatcher, clock, run_id)

    assert_done_once(service, run_id, effects)


def test_a_parent_killed_before_its_end_committed_completes_once(
    rig: Rig,
    effects: Counter[str],
) -> None:
    flow, store, clock, queue = rig.flow, rig.store, rig.clock, rig.queue
    service, dispatcher = rig.service, rig.dispatcher
    run_id = service.start("order", "a")
    crashing = CrashAt(store, "finish_pass", _terminal_finish_of(lambda: run_id))
    _, dying = doomed(flow, clock, store=crashing, queue=queue)

    until_crash(queue, dying)  # Notify's worker, carrying the parent to its end
    assert effects == {"provision": 1, "notify": 1}
    finish(queue, dispatcher, clock, run_id)

    assert_done_once(service, run_id, effects)


# -- wf.map with max_concurrency, killed after some items committed -----------------------------
ITEMS = 10
LIMIT = 3


@pytest.fixture
def charges(flow: Flow) -> Counter[int]:
    calls: Counter[int] = Counter()

    # An interrupted attempt counts as failed (invariant 10): the items need retries.
    @flow.function(retry=RetryPolicy(max_attempts=3, initial_delay="1s"))
    def charge(cents: int) -> int:
        calls[cents] += 1
        return cents * 2

    @flow.workflow
    async def invoice(wf: WorkflowContext, items: list[int]) -> list[Any]:
        batch = await wf.map("Charge", items, charge, max_concurrency=LIMIT)
        return list(batch.results)

    return calls


def _scheduled_at_once(service: WorkflowService, run_id: str) -> None:
    """At most ``LIMIT`` items were scheduled and unfinished at any time (history order)."""
    history = service.get_run_history(run_id)
    items = [a for a in history if a.step_key.startswith("Charge/")]
    for attempt in items:
        overlapping = [
            other
            for other in items
            if other.started_at is not None
            and attempt.started_at is not None
            and other.started_at <= attempt.started_at
            and (other.finished_at is None or other.finished_at > attempt.started_at)
        ]
        assert len(overlapping) <= LIMIT


@pytest.mark.parametrize(
    "point",
    [
        "pass records the plan",  # the pass dies before the statement that starts the map
        "worker after item 4",  # item 4's worker dies after its commit (which started item 7
        # in the same statement), before sending item 7's job
        "worker during item 6",  # item 6's worker dies after the charge, before its commit
    ],
)
def test_a_map_killed_midway_loses_no_item_and_reruns_no_committed_one(
    rig: Rig,
    charges: Counter[int],
    point: str,
) -> None:
    flow, store, clock, queue = rig.flow, rig.store, rig.clock, rig.queue
    service, dispatcher = rig.service, rig.dispatcher
    items = list(range(100, 100 + ITEMS))
    crashing: Any
    if point == "pass records the plan":
        crashing = CrashAt(store, "start_batch", lambda *a, **k: True)
    elif point == "worker after item 4":
        crashing = CrashAt(
            store, "complete_step", lambda claim, *a, **k: claim.step_key == "Charge/4", after=True
        )
    else:
        crashing = CrashAt(
            store, "complete_step", lambda claim, *a, **k: claim.step_key == "Charge/6"
        )
    _, dying = doomed(flow, clock, store=crashing, queue=queue)
    run_id = service.start("invoice", items)

    message = until_crash(queue, dying)
    committed = {
        a.step_key for a in service.get_run_history(run_id) if a.status is StepStatus.SUCCEEDED
    }
    assert bool(committed) is (point != "pass records the plan")  # items done before it
    ran_before = Counter(charges)

    clock.advance(LEASE_GONE)
    deliver(dispatcher, message)  # SQS redelivers what the dead process never deleted
    finish(queue, dispatcher, clock, run_id)

    run = service.get_run(run_id)
    assert run is not None
    assert run.status is RunStatus.COMPLETED, run
    assert run.output == [i * 2 for i in items]
    for key in committed:  # a committed item never ran again
        index = int(key.removeprefix("Charge/"))
        assert charges[items[index]] == ran_before[items[index]] == 1
    if point == "worker during item 6":
        # At least once: its charge ran, its result was never committed, so it ran again.
        assert charges == {**dict.fromkeys(items, 1), 106: 2}
    else:
        assert charges == dict.fromkeys(items, 1)
    succeeded = [
        a.step_key
        for a in service.get_run_history(run_id)
        if a.step_key.startswith("Charge/") and a.status is StepStatus.SUCCEEDED
    ]
    assert sorted(succeeded) == sorted(f"Charge/{i}" for i in range(ITEMS))
    _scheduled_at_once(service, run_id)


def test_a_lost_wake_up_while_the_parent_maps_is_recovered_once(
    rig: Rig, charges: Counter[int], effects: Counter[str]
) -> None:
    flow, store, clock, queue = rig.flow, rig.store, rig.clock, rig.queue
    service, dispatcher = rig.service, rig.dispatcher

    @flow.workflow
    async def bundle(wf: WorkflowContext, items: list[int]) -> dict[str, Any]:
        child = await wf.start_child("Setup", "setup", "a")  # runs while the parent maps
        batch = await wf.map("Charge", items, "charge", max_concurrency=LIMIT)
        return {"workspace": await child.result(), "charged": list(batch.results)}

    items = list(range(100, 100 + ITEMS))
    run_id = service.start("bundle", items)
    sending = SendCrash(queue, lambda target: target == run_id)
    _, dying = doomed(flow, clock, store=store, queue=sending)

    until_crash(queue, dying)  # the child's end is committed; the wake-up dies with it
    [child] = service.list_runs(parent_id=run_id)
    assert child.status is RunStatus.COMPLETED
    finish(queue, dispatcher, clock, run_id)

    run = service.get_run(run_id)
    assert run is not None
    assert run.status is RunStatus.COMPLETED, run
    assert run.output == {"workspace": "ws-a", "charged": [i * 2 for i in items]}
    assert service.list_runs(parent_id=run_id) == [child]
    assert effects == {"provision": 1}
    assert charges == dict.fromkeys(items, 1)

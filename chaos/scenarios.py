"""The scenarios: one kind of fault each, every run audited afterwards.

Each scenario is a function of a :class:`Suite` returning its :class:`~chaos.figures.Figures`.
Sizes come from :class:`Sizes` (``--quick`` picks the small ones).
"""

from __future__ import annotations

import contextlib
import json
import random
import signal
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from chaos._faults import KillPoint
from chaos.cluster import Cluster, Timing
from chaos.figures import Figures
from chaos.stage import Stage, staged

QUEUE_ROLES = ("orchestrator", "step_worker")


@dataclass(frozen=True, slots=True)
class Sizes:
    """How much of everything a scenario does."""

    kill_nth: tuple[int, ...] = (1,)
    """Which call of each method the exact kills hit."""
    victims_per_batch: int = 8
    random_kill_seconds: float = 20.0
    random_kill_runs: int = 40
    stalls: int = 3
    stall_runs: int = 16
    duplicate_runs: int = 30
    backlog_runs: int = 80
    restarts: int = 1
    restart_runs: int = 30
    poison_healthy_runs: int = 10
    poison_runs: int = 2
    fuzz_examples: int = 20
    child_kill_nth: tuple[int, ...] = (2,)
    """Which call of each method the kills of the children scenario hit."""
    child_random_seconds: float = 15.0
    child_runs: int = 24
    recovery_bound: float = 60.0


QUICK = Sizes()
FULL = Sizes(
    kill_nth=(1, 3),
    random_kill_seconds=90.0,
    random_kill_runs=150,
    stalls=10,
    stall_runs=50,
    duplicate_runs=100,
    backlog_runs=200,
    restarts=2,
    restart_runs=100,
    poison_healthy_runs=30,
    poison_runs=4,
    fuzz_examples=100,
    child_kill_nth=(1, 3),
    child_random_seconds=60.0,
    child_runs=80,
    recovery_bound=90.0,
)


@dataclass(slots=True)
class Suite:
    """The servers, the scaled clock, the sizes and the random source of one suite run."""

    cluster: Cluster
    timing: Timing
    sizes: Sizes
    rng: random.Random

    def stage(self, name: str) -> contextlib.AbstractContextManager[Stage]:
        """A fresh deployment for scenario ``name``."""
        return staged(self.cluster, name, self.timing, random.Random(self.rng.random()))


# -- (a) a SIGKILL at every store and queue call --------------------------------------------------
def _reachable_points(stage: Stage) -> list[str]:
    """``role:method`` of every store, queue and delete call the handlers make (traced)."""
    # Kept alive (and so the only runtime): recover() would otherwise start a healthy runtime
    # that may take every message while the tracer is still starting, tracing nothing.
    tracer = stage.fleet.spawn("runtime", extra={"CHAOS_TRACE": "1"})
    stage.start_mixed(7)
    stage.recover(stage.timing.lease_ttl * 10)
    stage.fleet.retire(tracer)
    return sorted(
        key.removeprefix("seen:")
        for key in stage.counters()
        if key.startswith("seen:") and key.split(":")[1] in QUEUE_ROLES
    )


def _kill_batch(
    stage: Stage, points: list[KillPoint], limit: float, feed: Callable[[int], None] | None = None
) -> None:
    """Victims with one point each take runs (fed all along, by ``feed`` or the mix) until each
    died or ``limit`` passed; then a healthy runtime recovers what they left."""
    feed = feed or stage.start_mixed
    feed(len(points) * 2)
    victims = [
        stage.fleet.spawn("runtime", extra={"CHAOS_KILL_AT": str(p)}, keep_alive=False)
        for p in points
    ]
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and any(v.alive for v in victims):
        feed(1)
        stage.wait(1.0)
    for victim in victims:
        if victim.alive:
            stage.fleet.retire(victim)
    healer = stage.fleet.spawn("runtime", keep_alive=False)
    stage.recover(stage.timing.lease_ttl * 8)
    stage.fleet.retire(healer)


def kill_points(suite: Suite) -> Figures:
    """(a) SIGKILL before and after every store/queue call of the orchestrator and step
    worker (and their SQS delete), each point in a victim process of its own."""
    with suite.stage("kill_points") as stage:
        stage.fleet.spawn("sweeper")
        reached = _reachable_points(stage)
        points = [
            KillPoint(role, method, when, nth)
            for role, method in (key.split(":") for key in reached)
            for when in ("before", "after")
            for nth in suite.sizes.kill_nth
        ]
        size = suite.sizes.victims_per_batch
        for start in range(0, len(points), size):
            _kill_batch(stage, points[start : start + size], limit=25.0)
        stage.recover(suite.sizes.recovery_bound)
        killed = stage.kills()
        missed = sorted({str(p) for p in points} - set(killed))
        figures = stage.conclude(trials=len(killed))
        figures.notes.insert(
            0, f"{len(points)} points over {len(reached)} calls: {', '.join(reached)}"
        )
        if missed:
            figures.notes.append(f"points not reached: {', '.join(missed)}")
    return figures


# -- (b) random kills under load -------------------------------------------------------------------
def random_kills(suite: Suite) -> Figures:
    """(b) SIGKILL a random runtime or the sweeper every second or two while runs pour in."""
    sizes = suite.sizes
    with suite.stage("random_kills") as stage:
        stage.fleet.spawn("sweeper")
        for _ in range(3):
            stage.fleet.spawn("runtime")
        kills = 0
        deadline = time.monotonic() + sizes.random_kill_seconds
        per_tick = max(1, round(sizes.random_kill_runs / sizes.random_kill_seconds * 1.5))
        while time.monotonic() < deadline:
            if len(stage.runs) < sizes.random_kill_runs:
                stage.start_mixed(min(per_tick, sizes.random_kill_runs - len(stage.runs)))
            targets = stage.fleet.of_role("runtime") + stage.fleet.of_role("sweeper")
            stage.fleet.signal(stage.rng.choice(targets), signal.SIGKILL)
            kills += 1
            stage.wait(stage.rng.uniform(0.8, 2.0))
        stage.recover(sizes.recovery_bound)
        figures = stage.conclude(trials=kills)
        figures.notes.append(f"workers restarted: {stage.fleet.restarts}")
    return figures


# -- (c) stalls past the lease --------------------------------------------------------------------
def stalls(suite: Suite) -> Figures:
    """(c) SIGSTOP a runtime (mid-step: steps take 0.3-1.2 s) for longer than the pass lease
    and the step claim, then SIGCONT it: its late writes must be fenced off."""
    sizes, timing = suite.sizes, suite.timing
    stall = max(timing.lease_ttl, timing.step_timeout) * 2 + 1
    with suite.stage("stalls") as stage:
        stage.fleet.spawn("sweeper")
        for _ in range(2):
            stage.fleet.spawn("runtime")
        stage.start_mixed(sizes.stall_runs, pause_ms=stage.rng.randrange(300, 1200))
        for _ in range(sizes.stalls):
            stage.wait(stage.rng.uniform(0.5, 1.5))
            victim = stage.rng.choice(stage.fleet.of_role("runtime"))
            stage.fleet.signal(victim, signal.SIGSTOP)
            stage.wait(stall)
            stage.fleet.signal(victim, signal.SIGCONT)
            stage.start_mixed(max(1, sizes.stall_runs // sizes.stalls), pause_ms=600)
        stage.recover(sizes.recovery_bound)
        figures = stage.conclude(trials=sizes.stalls)
        figures.notes.append(f"each stall {stall:.0f} s (lease {timing.lease_ttl:.0f} s)")
    return figures


# -- (d) duplicated and reordered delivery --------------------------------------------------------
def duplicates(suite: Suite) -> Figures:
    """(d) Every message handled is sent again once, shuffled and delayed 0-2 s; every batch
    is shuffled before the handler sees it."""
    with suite.stage("duplicates") as stage:
        stage.fleet.spawn("sweeper")
        for _ in range(2):
            stage.fleet.spawn("runtime", extra={"CHAOS_DUPLICATE": "1"})
        stage.start_mixed(suite.sizes.duplicate_runs)
        stage.recover(suite.sizes.recovery_bound)
        counters = stage.counters()
        duplicated = sum(v for k, v in counters.items() if k.startswith("duplicates:"))
        return stage.conclude(trials=duplicated)


# -- (e) four racing runtimes, under a backlog ---------------------------------------------------
def racing_backlog(suite: Suite) -> Figures:
    """(e) Runs queued while no runtime runs (a backlog older than the sweeper's unsent age,
    swept meanwhile), then 4 runtimes race for them. Counts the sweeper's orchestrator messages."""
    sizes, timing = suite.sizes, suite.timing
    with suite.stage("racing_backlog") as stage:
        stage.fleet.spawn("sweeper")
        stage.start_mixed(sizes.backlog_runs)
        stage.wait(timing.unsent_after + timing.sweep_every * 2)
        for _ in range(4):
            stage.fleet.spawn("runtime")
        stage.recover(sizes.recovery_bound)
        counters = stage.counters()
        figures = stage.conclude(trials=4)
        figures.extra_orchestrator = counters.get("orchestrator_sent:sweeper", 0)
        figures.backlog_runs = len(stage.runs)
        sent = sum(v for k, v in counters.items() if k.startswith("orchestrator_sent:"))
        figures.notes.append(f"orchestrator messages sent in all: {sent}")
    return figures


# -- (f) Postgres restarted with runs in flight ---------------------------------------------------
def _steady_load(stage: Stage, count: int, seconds: float, stop: threading.Event) -> None:
    """Start ``count`` runs over ``seconds``, reading one back after each start."""
    for _ in range(count):
        if stop.is_set():
            return
        run_id = stage.start_mixed_one()
        if run_id is not None:
            stage.client.call("GET", f"/runs/{run_id}")
        stop.wait(seconds / count)


def postgres_restart(suite: Suite) -> Figures:
    """(f) ``pg_ctl restart -m fast`` while runs are in flight and starts and reads keep coming
    through the API."""
    sizes = suite.sizes
    window = 4.0 * sizes.restarts + 4.0
    with suite.stage("postgres_restart") as stage:
        stage.fleet.spawn("sweeper")
        for _ in range(2):
            stage.fleet.spawn("runtime")
        stage.start_mixed(sizes.restart_runs // 3)
        stop = threading.Event()
        loader = threading.Thread(
            target=_steady_load, args=(stage, sizes.restart_runs * 2 // 3, window, stop)
        )
        loader.start()
        took = []
        for _ in range(sizes.restarts):
            stage.wait(3.0)
            took.append(suite.cluster.database.restart())
        loader.join(window * 3)
        stop.set()
        stage.recover(sizes.recovery_bound)
        counters = stage.counters()
        figures = stage.conclude(trials=sizes.restarts)
        errors = {k: v for k, v in counters.items() if k.startswith("handler_errors:")}
        failed = {k: v for k, v in counters.items() if k.startswith("failed_messages:")}
        statuses = {k: v for k, v in counters.items() if k.startswith("api_status:5")}
        figures.notes.append(
            f"restarts took {', '.join(f'{t:.1f}' for t in took)} s; failed messages {failed};"
            f" handler errors {errors}; API 5xx answers {statuses}"
        )
    return figures


# -- (g) poison messages and poison steps --------------------------------------------------------
def _junk(run_ids: list[str]) -> list[tuple[str, str]]:
    """(queue, body) pairs: malformed bodies, and bodies naming real runs with wrong jobs."""
    bodies: list[tuple[str, str]] = []
    for queue in ("orchestrator", "step"):
        bodies += [
            (queue, "not json"),
            (queue, "[]"),
            (queue, json.dumps({"run_id": "not-a-uuid"})),
            (queue, json.dumps({"run_id": str(uuid.uuid4())})),
        ]
    for run_id in run_ids:
        bodies += [
            ("step", json.dumps({"run_id": run_id, "attempt": 0})),
            ("step", json.dumps({"run_id": run_id, "step_key": "A", "attempt": 0})),
            ("step", json.dumps({"run_id": run_id, "step_key": "No such step", "attempt": 1})),
            ("step", json.dumps({"run_id": run_id, "step_key": "A", "attempt": 7})),
            ("orchestrator", json.dumps({"run_id": run_id, "junk": True})),
        ]
    return bodies


def poison(suite: Suite) -> Figures:
    """(g) Junk messages on both queues (some naming healthy runs), and runs whose RPC or inline
    step ends its process on every attempt: those must fail with a reason, nothing else may."""
    import boto3

    sizes = suite.sizes
    with suite.stage("poison") as stage:
        stage.fleet.spawn("sweeper")
        for _ in range(2):
            stage.fleet.spawn("runtime")
        # Healthy runs nap long enough for junk naming them to reach its last receive.
        nap = f"{suite.timing.visibility * (suite.timing.max_receives + 1)}s"
        healthy = [
            stage.start("chain", {**stage.inputs("chain"), "nap": nap})
            for _ in range(sizes.poison_healthy_runs)
        ]
        for index in range(sizes.poison_runs):
            workflow = "poison" if index % 2 == 0 else "poison_inline"
            stage.start(workflow, {"seed": index})
        sqs = boto3.client("sqs")
        urls = {
            "orchestrator": stage.deployment.orchestrator.url,
            "step": stage.deployment.step.url,
        }
        junk = _junk([r for r in healthy if r is not None][:4])
        for queue, body in junk:
            sqs.send_message(QueueUrl=urls[queue], MessageBody=body)
        stage.recover(sizes.recovery_bound)
        figures = stage.conclude(trials=len(junk) + sizes.poison_runs)
        figures.notes.append(f"worker processes restarted: {stage.fleet.restarts}")
    return figures


# -- (h) child workflows and a map, killed at a child's end and mid-map --------------------------
CHILD_POINTS = (
    ("orchestrator", "start_child"),  # the parent's statement recording and creating its child
    ("orchestrator", "enqueue_run"),  # the child's start message (or a parent's wake-up)
    ("orchestrator", "finish_pass"),  # a parent's pass that scheduled map items, a child's end
    ("step_worker", "complete_step"),  # a map item's or a child step's result
    ("step_worker", "finish_pass"),  # the child's last pass (its end hands over to its parent)
    ("step_worker", "enqueue_run"),  # the parent's wake-up after its child's end
    ("step_worker", "write_steps"),  # a pass scheduling the next map items
)
"""The calls a child's life and a map go through, killed before and after."""


def children(suite: Suite) -> Figures:
    """(h) Runs of ``compose`` (a child workflow of two RPC steps running while its parent maps
    RPC items two at a time): SIGKILL before and after each call of :data:`CHILD_POINTS` (a
    victim process per point), then random SIGKILLs of runtimes and the sweeper under load."""
    sizes = suite.sizes
    with suite.stage("children") as stage:
        stage.fleet.spawn("sweeper")

        def feed(count: int) -> None:
            stage.start_many("compose", count, pause_ms=stage.rng.randrange(0, 400))

        points = [
            KillPoint(role, method, when, nth)
            for role, method in CHILD_POINTS
            for when in ("before", "after")
            for nth in sizes.child_kill_nth
        ]
        size = suite.sizes.victims_per_batch
        for start in range(0, len(points), size):
            _kill_batch(stage, points[start : start + size], limit=20.0, feed=feed)
        killed = stage.kills()
        for _ in range(3):
            stage.fleet.spawn("runtime")
        kills = 0
        deadline = time.monotonic() + sizes.child_random_seconds
        while time.monotonic() < deadline:
            if len(stage.runs) < sizes.child_runs + len(killed) * 2:
                feed(2)
            targets = stage.fleet.of_role("runtime") + stage.fleet.of_role("sweeper")
            stage.fleet.signal(stage.rng.choice(targets), signal.SIGKILL)
            kills += 1
            stage.wait(stage.rng.uniform(0.8, 2.0))
        stage.recover(sizes.recovery_bound)
        missed = sorted({str(p) for p in points} - set(killed))
        figures = stage.conclude(trials=len(killed) + kills)
        figures.notes.insert(0, f"{len(killed)} kill points hit, then {kills} random kills")
        if missed:
            figures.notes.append(f"points not reached: {', '.join(missed)}")
        figures.notes.append(f"workers restarted: {stage.fleet.restarts}")
    return figures


Scenario = Callable[[Suite], Figures]
SCENARIOS: dict[str, Scenario] = {
    "kill_points": kill_points,
    "random_kills": random_kills,
    "stalls": stalls,
    "duplicates": duplicates,
    "racing_backlog": racing_backlog,
    "postgres_restart": postgres_restart,
    "poison": poison,
    "children": children,
}
"""Every scenario but the HTTP fuzzing (:mod:`chaos.fuzz`), in the order they run."""

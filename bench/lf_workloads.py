"""The lambda-flow side of ``python -m bench compare``: every workload, run in this process.

Each function takes the URL of a fresh, empty database on the benchmark's server and returns a
JSON-safe dict. The workloads shared with DBOS (``inline``, ``concurrent``, ``fanout_inline``)
return the same shape as ``bench/dbos_workloads.py`` and are measured by the same code
(``bench/_pgstats.py``); the others are lambda-flow's own (``fanout_remote``, ``replay``,
``onboarding``, ``cold_start``, ``pass_memory``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import io
import json
import os
import re
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from psycopg.conninfo import make_conninfo

from lambda_flow import Flow, PostgresStore, RunStatus, WorkflowContext, WorkflowService
from lambda_flow.core import SystemClock
from lambda_flow.store.base import LeasedRun, RunOutcome
from lambda_flow.transport.base import StepJob
from lambda_flow.transport.local import LocalQueue
from lambda_flow.worker import Dispatcher

from ._pgstats import ServerMonitor, WireCounter, measured

ROOT = Path(__file__).resolve().parent.parent
WARM_UP_STEPS = 10
SEQUENTIAL = "bench_sequential"
FAN_OUT = "bench_fan_out"
REPLAY = "bench_replay"


def _identity(value: int) -> int:
    """An inline step's work: its own index (a def, so type checkers infer the step's type)."""
    return value


def build_flow() -> Flow:
    """The application under test: the same workflows as ``bench/dbos_workloads.py``."""
    flow = Flow()

    @flow.function
    def work(data: dict[str, int]) -> int:
        return data["i"]

    @flow.workflow(name=SEQUENTIAL)
    async def sequential(wf: WorkflowContext, steps: int) -> int:
        total = 0
        for i in range(steps):
            total += await wf.do("step", functools.partial(_identity, i))
        return total

    @flow.workflow(name=FAN_OUT)
    async def fan_out(wf: WorkflowContext, steps: int) -> int:
        results = await asyncio.gather(*(wf.do("work", "work", {"i": i}) for i in range(steps)))
        return sum(results)

    @flow.workflow(name=REPLAY)
    async def replay(wf: WorkflowContext, data: dict[str, int]) -> int:
        total = 0
        for i in range(data["steps"]):
            total += await wf.do("step", functools.partial(_identity, i))
        for _ in range(data["holds"]):
            await wf.suspend("hold")  # each resume replays every step above, then parks here
        return total

    return flow


def _triangle(n: int) -> int:
    return n * (n - 1) // 2


def _result(workload: str, steps: int, workflows: int, m: Any, **extra: Any) -> dict[str, Any]:
    return {
        "engine": "lambda_flow",
        "workload": workload,
        "steps": steps,
        "workflows": workflows,
        **m.as_dict(),
        **extra,
    }


def _check(service: WorkflowService, run_id: str, expected: int) -> None:
    run = service.get_run(run_id)
    if run is None or run.status is not RunStatus.COMPLETED or run.output != expected:
        raise RuntimeError(f"run {run_id} ended {run.status if run else None}: {run}")


# -- (a) one workflow of N sequential inline steps ---------------------------------------------
def inline(
    url: str, monitor: ServerMonitor, dbid: int, wire: WireCounter, steps: int
) -> dict[str, Any]:
    store = PostgresStore(url, max_connections=1)
    service = WorkflowService(build_flow(), store=store)
    try:
        with measured(monitor, dbid, wire) as base:  # also the warm-up
            service.start(SEQUENTIAL, WARM_UP_STEPS)
        with measured(monitor, dbid, wire) as m:
            run_id = service.start(SEQUENTIAL, steps)
        _check(service, run_id, _triangle(steps))
    finally:
        service.close()
    return _result("inline", steps, 1, m, baseline={"steps": WARM_UP_STEPS, **base.as_dict()})


# -- (b) many workflows of a few steps, started and awaited ------------------------------------
def concurrent(
    url: str,
    monitor: ServerMonitor,
    dbid: int,
    wire: WireCounter,
    *,
    workflows: int,
    steps: int,
    connections: int,
) -> dict[str, Any]:
    """``workflows`` inline runs on a pool of ``connections`` threads sharing one service whose
    store holds as many connections: each thread runs one workflow start to finish, as DBOS's
    executor threads do with ``DBOS.start_workflow`` on a pool of as many connections."""
    store = PostgresStore(url, min_connections=connections, max_connections=connections)
    service = WorkflowService(build_flow(), store=store)
    try:
        with ThreadPoolExecutor(connections, thread_name_prefix="bench") as pool:
            list(pool.map(lambda _: service.start(SEQUENTIAL, steps), range(connections)))
            with measured(monitor, dbid, wire) as m:
                run_ids = list(
                    pool.map(lambda _: service.start(SEQUENTIAL, steps), range(workflows))
                )
        for run_id in run_ids:
            _check(service, run_id, _triangle(steps))
    finally:
        service.close()
    return _result("concurrent", workflows * steps, workflows, m)


# -- (c) fan-out ---------------------------------------------------------------------------------
def fanout_inline(
    url: str, monitor: ServerMonitor, dbid: int, wire: WireCounter, steps: int
) -> dict[str, Any]:
    """``asyncio.gather`` of ``steps`` RPC steps run in the pass (inline mode): DBOS's analog."""
    store = PostgresStore(url, max_connections=1)
    service = WorkflowService(build_flow(), store=store)
    try:
        service.start(FAN_OUT, WARM_UP_STEPS)
        with measured(monitor, dbid, wire) as m:
            run_id = service.start(FAN_OUT, steps)
        _check(service, run_id, _triangle(steps))
    finally:
        service.close()
    return _result("fanout_inline", steps, 1, m)


class PassCounter:
    """Counts orchestration passes, and the step jobs each one queued (it stands between the
    service and its queue)."""

    def __init__(self, queue: LocalQueue) -> None:
        self.queue = queue
        self.counting = False
        self.passes: list[int] = []
        """Step jobs queued by each pass that ran, in order."""
        self.refused = 0
        """Calls that found the run's lease taken or the run no longer running."""

    def watch(self, service: WorkflowService) -> None:
        """Count every pass of ``service``: each one starts by taking its run's lease (acquire,
        or a worker's completion that takes it)."""
        store = service.store
        acquire = store.acquire

        def counted(
            run_id: str, owner: str, now: datetime, lease_until: datetime
        ) -> LeasedRun | None:
            leased = acquire(run_id, owner, now, lease_until)
            if self.counting:
                if leased is None:
                    self.refused += 1
                else:
                    self.passes.append(0)
            return leased

        store.acquire = counted  # type: ignore[method-assign]
        complete = store.complete_step

        def completed(claim: Any, outcome: Any, now: datetime, **lease: Any) -> Any:
            # A worker's completion takes the run's lease for its pass when it is free.
            done = complete(claim, outcome, now, **lease)
            if self.counting and done is not None and done.run_changed:
                if done.leased is None:
                    self.refused += 1
                else:
                    self.passes.append(0)
            return done

        store.complete_step = completed  # type: ignore[method-assign]

    # -- the JobQueue protocol --------------------------------------------------------------
    def enqueue_run(self, run_id: str, *, delay: timedelta | None = None) -> None:
        self.queue.enqueue_run(run_id, delay=delay)

    def enqueue_steps(self, jobs: Sequence[StepJob]) -> None:
        if self.counting and self.passes:
            self.passes[-1] += len(jobs)
        self.queue.enqueue_steps(jobs)

    def wake_at(self, run_id: str, when: datetime, now: datetime) -> None:
        self.queue.wake_at(run_id, when, now)

    def backlog(self) -> int | None:
        return self.queue.backlog()


def fanout_remote(
    url: str, monitor: ServerMonitor, dbid: int, wire: WireCounter, steps: int
) -> dict[str, Any]:
    """One workflow gathering ``steps`` RPC steps in remote mode, through a LocalQueue (SQS's
    contract, in process) and the Dispatcher the Lambda handlers use, one message at a time."""
    store = PostgresStore(url, max_connections=2)
    queue = LocalQueue(SystemClock())
    counter = PassCounter(queue)
    service = WorkflowService(build_flow(), store=store, queue=counter)
    counter.watch(service)
    dispatcher = Dispatcher(service, step_timeout=timedelta(minutes=5))

    def drain() -> dict[str, int]:
        handled = {"orchestrator": 0, "step": 0}
        while (message := queue.receive()) is not None:
            handled[message.queue] += 1
            if message.queue == "orchestrator":
                dispatcher.run_message(message.body)
            else:
                dispatcher.step_message(message.body)
        return handled

    try:
        service.start(FAN_OUT, WARM_UP_STEPS)
        drain()
        counter.counting = True
        sent, batches = queue.sent, len(queue.batches)
        with measured(monitor, dbid, wire) as m:
            run_id = service.start(FAN_OUT, steps)
            handled = drain()
        _check(service, run_id, _triangle(steps))
        sent, batches = queue.sent - sent, len(queue.batches) - batches
    finally:
        service.close()
    first = counter.passes[0] if counter.passes else 0
    return _result(
        "fanout_remote",
        steps,
        1,
        m,
        passes=len(counter.passes),
        passes_that_queued=sum(1 for jobs in counter.passes if jobs),
        queued_in_first_pass=first,
        refused_passes=counter.refused,
        messages_sent=sent,
        send_batches=batches,
        handled=handled,
    )


# -- (d) replay, and (f) the memory of one pass ---------------------------------------------------
def _record(url: str, flow: Flow, steps: int, holds: int) -> str:
    """Record a run of ``steps`` inline steps that then parks at its first ``hold``.

    Recording is not what is measured, so its connection commits asynchronously
    (``synchronous_commit = off`` for that session only): 10,000 steps take seconds, not tens.
    """
    dsn = make_conninfo(url, options="-c synchronous_commit=off")
    service = WorkflowService(flow, store=PostgresStore(dsn, max_connections=1))
    try:
        run_id = service.start(REPLAY, {"steps": steps, "holds": holds})
        run = service.get_run(run_id)
        if run is None or run.status is not RunStatus.SUSPENDED:
            raise RuntimeError(f"recording ended {run}")
    finally:
        service.close()
    return run_id


@contextlib.contextmanager
def _timed_acquire(store: PostgresStore, into: list[float]) -> Iterator[None]:
    acquire = store.acquire

    def timed(*args: Any, **kwargs: Any) -> LeasedRun | None:
        started = time.process_time()
        try:
            return acquire(*args, **kwargs)
        finally:
            into.append(time.process_time() - started)

    store.acquire = timed  # type: ignore[method-assign]
    try:
        yield
    finally:
        del store.acquire


def replay(url: str, *, steps: int, passes: int) -> dict[str, Any]:
    """CPU time of one pass that replays ``steps`` recorded steps, ``passes`` times.

    One run is recorded, parked at a suspension; each measured pass follows a resume, replays
    every recorded step (and the suspensions before), records the next suspension and parks
    again; the last one completes the run. ``acquire`` (taking the lease and loading every
    step in one query) is timed apart from the rest of the pass (replay and its commit).
    """
    flow = build_flow()
    run_id = _record(url, flow, steps, passes)
    store = PostgresStore(url, max_connections=1)
    service = WorkflowService(flow, store=store)
    cpu: list[float] = []
    wall: list[float] = []
    load: list[float] = []

    async def one_pass() -> RunOutcome | None:
        started_cpu, started = time.process_time(), time.perf_counter()
        outcome = await service.run_pass(run_id)
        cpu.append(time.process_time() - started_cpu)
        wall.append(time.perf_counter() - started)
        return outcome

    try:
        with _timed_acquire(store, load):
            for i in range(passes):
                store.resume(run_id, service.clock.now())
                # Start each pass from a collected heap: the garbage earlier passes left must
                # not be collected (and timed) in this one. Collections the pass's own
                # allocations trigger still count.
                gc.collect()
                outcome = asyncio.run(one_pass())
                want = RunStatus.COMPLETED if i == passes - 1 else RunStatus.SUSPENDED
                if outcome is None or outcome.status is not want:
                    raise RuntimeError(f"replay pass {i} ended {outcome}")
        _check(service, run_id, _triangle(steps))
    finally:
        service.close()
    return {
        "engine": "lambda_flow",
        "workload": "replay",
        "steps": steps,
        "passes": passes,
        "cpu_ms": [round(c * 1e3, 2) for c in cpu],
        "wall_ms": [round(w * 1e3, 2) for w in wall],
        "acquire_cpu_ms": [round(a * 1e3, 2) for a in load],
        "cpu_ms_median": statistics.median(cpu) * 1e3,
        "wall_ms_median": statistics.median(wall) * 1e3,
        "acquire_cpu_ms_median": statistics.median(load) * 1e3,
    }


def pass_memory(url: str, *, steps: int) -> dict[str, Any]:
    """Peak memory (tracemalloc) of one pass replaying ``steps`` recorded steps."""
    flow = build_flow()
    run_id = _record(url, flow, steps, 1)
    store = PostgresStore(url, max_connections=1)
    service = WorkflowService(flow, store=store)
    try:
        store.resume(run_id, service.clock.now())
        gc.collect()
        tracemalloc.start()
        try:
            outcome = asyncio.run(service.run_pass(run_id))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        if outcome is None or outcome.status is not RunStatus.COMPLETED:
            raise RuntimeError(f"pass ended {outcome}")
    finally:
        service.close()
    return {"engine": "lambda_flow", "workload": "pass_memory", "steps": steps, "peak_bytes": peak}


# -- (e) the onboarding workflow through the AWS handlers on moto -------------------------------
def onboarding(url: str) -> dict[str, Any]:
    """``bench/remote_steps.py``'s measurement, summed the way the cost model needs it."""
    from . import remote_steps

    with contextlib.redirect_stdout(io.StringIO()):
        measurement = remote_steps._measure(url, verbose=False)
    if measurement.status is not RunStatus.COMPLETED:
        raise RuntimeError(f"onboarding ended {measurement.status}: {measurement.error}")
    invocations = measurement.invocations
    by_function: dict[str, dict[str, float]] = {}
    for invocation, seconds in zip(invocations, measurement.durations, strict=True):
        row = by_function.setdefault(
            invocation.function,
            {"invocations": 0, "sqs_messages": 0, "sqs_calls": 0, "sql_round_trips": 0, "ms": 0.0},
        )
        row["invocations"] += 1
        row["sqs_messages"] += invocation.sqs_sent
        row["sqs_calls"] += invocation.sqs_calls
        row["sql_round_trips"] += invocation.round_trips
        row["ms"] += seconds * 1e3
    start = measurement.start
    return {
        "engine": "lambda_flow",
        "workload": "onboarding",
        "rpc_attempts": remote_steps.RPC_ATTEMPTS,
        "rpc_steps": 3,
        "inline_steps": 1,
        "sleeps": 1,
        "timers": remote_steps.TIMERS,
        "start": {
            "sqs_messages": start.messages,
            "sqs_calls": start.sqs_calls,
            "sql_round_trips": start.round_trips,
        },
        "by_function": by_function,
        "invocations": len(invocations),
        "sqs_messages": start.messages + sum(i.sqs_sent for i in invocations),
        "sqs_calls": start.sqs_calls + sum(i.sqs_calls for i in invocations),
        "sql_round_trips": start.round_trips + sum(i.round_trips for i in invocations),
        "handler_ms": [round(s * 1e3, 2) for s in measurement.durations],
        "invocation_details": [
            {
                "function": i.function,
                "ms": round(seconds * 1e3, 3),
                "sql_round_trips": i.round_trips,
                "sqs_calls": i.sqs_calls,
                "sqs_messages": i.sqs_sent,
            }
            for i, seconds in zip(invocations, measurement.durations, strict=True)
        ],
    }


# -- (f) cold start -------------------------------------------------------------------------------
HANDLER_MODULES = ("api", "orchestrator", "step_worker", "sweeper", "queue_start", "schedule_start")
_IMPORT_LINE = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|\s*(\S.*)$")


def handler_environment(url: str) -> dict[str, str]:
    """What template.yaml gives every function, with the database as a URL instead of a secret
    and queue URLs of the AWS form (no call is made to them at import)."""
    queue = "https://sqs.us-east-1.amazonaws.com/123456789012/lambda-flow-{}"
    # The driver's own environment may hold settings of earlier workloads (moto, tracing off):
    # only what the template sets counts here.
    prefixes = ("LAMBDA_FLOW_", "AWS_", "POWERTOOLS_")
    keep = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    return {
        **keep,
        "LAMBDA_FLOW_APP": "examples.onboarding:flow",
        "LAMBDA_FLOW_DATABASE_URL": url,
        "LAMBDA_FLOW_SCHEMA": "workflows",
        "LAMBDA_FLOW_ORCHESTRATOR_QUEUE_URL": queue.format("orchestrator"),
        "LAMBDA_FLOW_STEP_QUEUE_URL": queue.format("step"),
        "LAMBDA_FLOW_TRIGGER_WORKFLOW": "onboard_user",
        "POWERTOOLS_METRICS_NAMESPACE": "LambdaFlow",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "AWS_LAMBDA_FUNCTION_NAME": "lambda-flow-bench",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "PYTHONPATH": str(ROOT),
    }


@dataclass
class ImportTimes:
    """One fresh interpreter's ``import lambda_flow.handlers.<module>``."""

    cumulative_us: int
    """The module's cumulative import time, its module-level setup included."""
    wall_s: float
    """The whole interpreter, start to exit."""
    self_us: int
    """The handler module's own code: building the runtime (connection pool, clients)."""
    by_package: dict[str, int]
    """Self time of every module imported, summed by top-level package (us)."""


def _import_once(module: str, env: dict[str, str]) -> ImportTimes:
    """Import ``module`` in a fresh interpreter and read ``-X importtime``'s report."""
    started = time.perf_counter()
    done = subprocess.run(  # noqa: S603 - this interpreter, a module name of ours
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"importing {module} failed:\n{done.stderr[-2000:]}")
    by_package: dict[str, int] = {}
    for line in done.stderr.splitlines():
        match = _IMPORT_LINE.match(line)
        if not match:
            continue
        name = match.group(3).strip()
        if name == module:
            return ImportTimes(int(match.group(2)), wall, int(match.group(1)), by_package)
        package = name.split(".")[0]
        by_package[package] = by_package.get(package, 0) + int(match.group(1))
    raise RuntimeError(f"no import time reported for {module}")


def cold_start(url: str, *, repeats: int) -> dict[str, Any]:
    """Per handler module: median import time over ``repeats`` fresh interpreters (the first,
    unmeasured import compiles the bytecode and migrates the schema), as the template configures
    the functions (X-Ray tracing active), and again with tracing off."""
    env = handler_environment(url)
    untraced = {**env, "POWERTOOLS_TRACE_DISABLED": "true"}
    _import_once("lambda_flow.handlers.orchestrator", env)  # migrate, compile the bytecode
    modules: dict[str, Any] = {}
    for name in HANDLER_MODULES:
        module = f"lambda_flow.handlers.{name}"
        _import_once(module, env)
        runs = [_import_once(module, env) for _ in range(repeats)]
        quiet = [_import_once(module, untraced) for _ in range(repeats)]
        median = sorted(runs, key=lambda r: r.cumulative_us)[len(runs) // 2]
        top = sorted(median.by_package.items(), key=lambda kv: -kv[1])[:8]
        modules[name] = {
            "import_ms": statistics.median(r.cumulative_us for r in runs) / 1e3,
            "process_ms": statistics.median(r.wall_s for r in runs) * 1e3,
            "import_ms_tracing_off": statistics.median(r.cumulative_us for r in quiet) / 1e3,
            "module_setup_ms": median.self_us / 1e3,
            "top_packages_ms": {package: us / 1e3 for package, us in top},
        }
    return {
        "engine": "lambda_flow",
        "workload": "cold_start",
        "repeats": repeats,
        "modules": modules,
    }


def dumps(value: Any) -> str:
    return json.dumps(value, default=str)


Workload = Callable[..., dict[str, Any]]

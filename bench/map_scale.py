"""What a large ``wf.map`` costs in remote mode, and how it grows with the items (issue 13).

``python -m bench map-scale`` runs, in this one process, the workflow

    await wf.map("Charge", list(range(N)), charge, max_concurrency=100)

over a trivial registered function (``charge(n) = n * 2``) in remote mode: a ``LocalQueue``
(SQS's contract, in process) and the ``Dispatcher`` the Lambda handlers use, delivering one
message at a time, on a time-skipping clock. The database is a private embedded Postgres in a
temporary folder (or ``--database-url``), with a fresh schema dropped afterwards.

Two engines' paths, side by side in the same run:

  chained      the service's own ``RemoteDriver``: the pass records the map's plan and its
               first ``max_concurrency`` items; each item's step worker starts the next item in
               the statement that stores its result; the body is replayed at the start and end
  per-item     a ``RemoteDriver`` with ``chains_batches = False`` (the path other drivers take):
               every item's completion carries the run on with a pass that replays the whole
               body, so the work grows with the square of the items (run at small N only)

Figures per N:
  msgs        SQS messages the application sent (step jobs + orchestrator messages)
  invocations messages delivered (handler calls: ``run_message`` / ``step_message``)
  passes      ``OrchestrationPass.run`` calls for the run
  CPU         ``time.process_time()`` of this process (the dispatcher, the engine, psycopg;
              the Postgres server's CPU is separate: its processes' CPU, read with psutil, is
              shown apart when the server is the private embedded one)
  SQL RT      statements the store sent (``PostgresStore.stats.round_trips``)
  wire RT     psycopg's client-server exchanges (``bench/_pgstats.WireCounter``): the store's
              statements, the pool's check of a connection on each checkout (an empty query)
              and the Parse of statements psycopg prepares
  peak mem    ``tracemalloc`` peak of the Python heap during the run (a separate, traced run
              of the same N, so tracing does not inflate the CPU figures), and ``ru_maxrss``
              of the process so far (a high-water mark: it never goes down)

Targets (chained): at most one message and one invocation per item plus a constant, a constant
number of passes (<= 3) whatever N, and a flat CPU per item (CPU/item at the largest N over
CPU/item at the smallest, <= 1.5). ``--check`` exits 1 when one is missed.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import resource
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from lambda_flow import Flow, PostgresStore, RunStatus, WorkflowContext, WorkflowService
from lambda_flow.engine import OrchestrationPass
from lambda_flow.testing import TimeSkippingClock
from lambda_flow.transport.base import StepJob
from lambda_flow.transport.local import LocalQueue
from lambda_flow.worker import Dispatcher, RemoteDriver

from ._pgstats import WireCounter

SUMMARY = "a remote wf.map of N items: messages, invocations, passes, CPU and memory per item"
WORKFLOW = "bench_map_scale"
DEFAULT_ITEMS = (1000, 5000, 10000)
DEFAULT_BASELINE_ITEMS = (500, 1000)
CONCURRENCY = 100
WARM_UP_ITEMS = 20
TARGET_EXTRA_MESSAGES = 3
"""Messages (and invocations) allowed beyond one per item: the start, and a spare."""
TARGET_PASSES = 3
TARGET_CPU_GROWTH = 1.5
"""CPU per item at the largest N over CPU per item at the smallest."""


def charge(n: int) -> int:
    """The registered function every item runs."""
    return n * 2


def build_flow() -> Flow:
    flow = Flow()
    registered = flow.function(charge)

    @flow.workflow(name=WORKFLOW)
    async def map_scale(wf: WorkflowContext, data: dict[str, int]) -> dict[str, int]:
        batch = await wf.map(
            "Charge", list(range(data["n"])), registered, max_concurrency=data["limit"]
        )
        values = batch.values()
        return {"items": len(values), "sum": sum(v or 0 for v in values)}

    return flow


class PerItemDriver(RemoteDriver):
    """Remote mode without chained batches: every item's completion runs a pass."""

    chains_batches = False


class CountingQueue(LocalQueue):
    """A ``LocalQueue`` counting what the application sends, by queue."""

    def __init__(self, clock: TimeSkippingClock) -> None:
        super().__init__(clock)
        self.run_messages = 0
        self.step_messages = 0

    def enqueue_run(self, run_id: str, *, delay: timedelta | None = None) -> None:
        self.run_messages += 1
        super().enqueue_run(run_id, delay=delay)

    def wake_at(self, run_id: str, when: Any, now: Any) -> None:
        self.run_messages += 1
        super().wake_at(run_id, when, now)

    def enqueue_steps(self, jobs: Sequence[StepJob]) -> None:
        jobs = list(jobs)
        self.step_messages += len(jobs)
        super().enqueue_steps(jobs)


class PassCounter:
    """Counts ``OrchestrationPass.run`` calls per run id while installed."""

    def __init__(self) -> None:
        self.passes: Counter[str] = Counter()

    @contextmanager
    def installed(self) -> Iterator[None]:
        original = OrchestrationPass.run
        counted = self.passes

        async def run(self: OrchestrationPass) -> Any:
            counted[self.run_id] += 1
            return await original(self)

        OrchestrationPass.run = run  # type: ignore[method-assign]
        try:
            yield
        finally:
            OrchestrationPass.run = original  # type: ignore[method-assign]


class ServerCpu:
    """CPU seconds of a local Postgres server's processes (postmaster and children), by psutil.

    A process that exits between two readings loses its share; the store's connections stay
    open for the whole measurement, so the backends doing the work are all counted.
    """

    def __init__(self, postmaster_pid: int | None) -> None:
        self.process: Any = None
        if postmaster_pid is None:
            return
        try:
            psutil = importlib.import_module("psutil")  # optional: not a dependency
            self.process = psutil.Process(postmaster_pid)
        except Exception:  # no psutil, or no such process: the figure is n/a
            self.process = None

    @property
    def available(self) -> bool:
        return self.process is not None

    def reading(self) -> dict[int, float]:
        if self.process is None:
            return {}
        out: dict[int, float] = {}
        for proc in [self.process, *self.process.children(recursive=True)]:
            try:
                times = proc.cpu_times()
            except Exception:  # noqa: S112 - exited meanwhile
                continue
            out[proc.pid] = times.user + times.system
        return out

    @staticmethod
    def delta(before: dict[int, float], after: dict[int, float]) -> float:
        return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


@dataclass
class Figures:
    """One measured run of the map."""

    path: str
    items: int
    run_messages: int
    step_messages: int
    send_calls: int
    invocations: int
    passes: int
    cpu_s: float
    server_cpu_s: float | None
    round_trips: int
    wire_round_trips: int | None
    wall_s: float
    tracemalloc_peak_mib: float | None = None
    maxrss_mib: float = 0.0

    @property
    def messages(self) -> int:
        return self.run_messages + self.step_messages

    @property
    def cpu_ms_per_item(self) -> float:
        return 1000 * self.cpu_s / self.items

    @property
    def server_cpu_ms_per_item(self) -> float | None:
        return None if self.server_cpu_s is None else 1000 * self.server_cpu_s / self.items

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "messages": self.messages,
            "messages_per_item": self.messages / self.items,
            "invocations_per_item": self.invocations / self.items,
            "cpu_ms_per_item": self.cpu_ms_per_item,
            "server_cpu_ms_per_item": self.server_cpu_ms_per_item,
            "round_trips_per_item": self.round_trips / self.items,
            "wire_round_trips_per_item": (
                None if self.wire_round_trips is None else self.wire_round_trips / self.items
            ),
        }


class Bench:
    """One flow, one store and schema; a service, queue and dispatcher per path."""

    def __init__(self, dsn: str, schema: str, server: ServerCpu, concurrency: int) -> None:
        self.store = PostgresStore(dsn, schema=schema, min_connections=2, max_connections=2)
        self.flow = build_flow()
        self.server = server
        self.concurrency = concurrency
        self.counter = PassCounter()
        self.wire = WireCounter()

    def close(self) -> None:
        self.store.close()

    def _service(
        self, path: str
    ) -> tuple[WorkflowService, CountingQueue, Dispatcher, TimeSkippingClock]:
        clock = TimeSkippingClock()
        queue = CountingQueue(clock)
        driver = RemoteDriver(queue) if path == "chained" else PerItemDriver(queue)
        service = WorkflowService(self.flow, store=self.store, driver=driver, clock=clock)
        return service, queue, Dispatcher(service, step_timeout=timedelta(minutes=5)), clock

    def measure(self, path: str, items: int, *, trace: bool = False) -> Figures:
        """Run the map of ``items`` on ``path`` to completion; with ``trace``, under
        tracemalloc (for the memory peak only: its CPU figures are inflated)."""
        service, queue, dispatcher, clock = self._service(path)
        stats = self.store.stats
        gc.collect()
        if trace:
            tracemalloc.start()
        with self.counter.installed(), self.wire.installed():
            server_before = self.server.reading()
            rt_before, wire_before = stats.round_trips, self.wire.exchanges
            wall, cpu = time.perf_counter(), time.process_time()
            run_id = service.start(WORKFLOW, {"n": items, "limit": self.concurrency})
            invocations = drain(queue, dispatcher, clock)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            round_trips = stats.round_trips - rt_before
            wire = self.wire.exchanges - wire_before if self.wire.available else None
            server_after = self.server.reading()
        peak = None
        if trace:
            peak = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
        run = service.get_run(run_id)
        expected = {"items": items, "sum": items * (items - 1)}
        if run is None or run.status is not RunStatus.COMPLETED or run.output != expected:
            status = run.status.value if run else None
            raise RuntimeError(f"{path} map of {items}: run ended {status}: {run and run.error}")
        return Figures(
            path=path,
            items=items,
            run_messages=queue.run_messages,
            step_messages=queue.step_messages,
            send_calls=queue.run_messages + len(queue.batches),
            invocations=invocations,
            passes=self.counter.passes[run_id],
            cpu_s=cpu,
            server_cpu_s=(
                ServerCpu.delta(server_before, server_after) if self.server.available else None
            ),
            round_trips=round_trips,
            wire_round_trips=wire,
            wall_s=wall,
            tracemalloc_peak_mib=peak,
            maxrss_mib=_maxrss_mib(),
        )


def drain(queue: LocalQueue, dispatcher: Dispatcher, clock: TimeSkippingClock) -> int:
    """Deliver every message, one at a time, skipping the clock to delayed ones; the count."""
    handled = 0
    while True:
        message = queue.receive()
        if message is None:
            upcoming = queue.next_delivery()
            if upcoming is None:
                return handled
            clock.advance(max(upcoming - clock.now(), timedelta(0)))
            continue
        handled += 1
        if message.queue == "orchestrator":
            dispatcher.run_message(message.body)
        else:
            dispatcher.step_message(message.body)


def _maxrss_mib() -> float:
    # Linux reports kilobytes, macOS bytes.
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (2**20 if sys.platform == "darwin" else 2**10)


def _loadavg() -> str:
    try:
        return "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    except OSError:
        return "n/a"


def _embedded() -> tuple[str, int | None]:
    """A private embedded server in a temporary folder (removed at exit): its URL and pid."""
    import atexit
    import shutil

    from lambda_flow.store.embedded import embedded_database_url, running_server

    root = Path(tempfile.mkdtemp(prefix="lambda-flow-bench-map-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    url = embedded_database_url(root / "pgdata")
    server = running_server(root / "pgdata")
    return url, server.pid if server else None


# -- the command -----------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--items",
        type=int,
        nargs="+",
        default=list(DEFAULT_ITEMS),
        help="map sizes measured on the chained path (default: 1000 5000 10000)",
    )
    parser.add_argument(
        "--baseline-items",
        type=int,
        nargs="*",
        default=list(DEFAULT_BASELINE_ITEMS),
        help="map sizes measured on the per-item (not chained) path (default: 500 1000; "
        "none to skip it)",
    )
    parser.add_argument(
        "--concurrency", type=int, default=CONCURRENCY, help="max_concurrency (default 100)"
    )
    parser.add_argument(
        "--no-memory",
        action="store_true",
        help="skip the traced runs that measure the tracemalloc peak",
    )
    parser.add_argument(
        "--database-url",
        default=None,
        help="an existing Postgres to use (default: a private embedded one in a temp folder; "
        "the server's CPU is only read for that one)",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON last")
    parser.add_argument(
        "--check", action="store_true", help="exit with status 1 when a target is missed"
    )


def run(args: argparse.Namespace) -> int:
    items = sorted(set(args.items))
    baseline = sorted(set(args.baseline_items))
    if not items or min(items) < 1 or any(n < 1 for n in baseline) or args.concurrency < 1:
        raise SystemExit("--items, --baseline-items and --concurrency must be >= 1")
    if args.database_url:
        dsn, pid, where = args.database_url, None, "--database-url (server CPU not read)"
    else:
        dsn, pid = _embedded()
        where = "embedded (private, temp folder)"
    server = ServerCpu(pid)
    load_before = _loadavg()
    print(f"lambda-flow bench: map-scale ({SUMMARY})")
    print(
        f"workflow    : await wf.map('Charge', list(range(N)), charge, "
        f"max_concurrency={args.concurrency}); charge(n) = n * 2, a registered function"
    )
    print(f"database    : {where}; server CPU: {'psutil' if server.available else 'n/a'}")
    print(f"machine     : {os.cpu_count()} CPUs, load average {load_before} (1, 5, 15 min)")
    print(f"date        : {time.strftime('%Y-%m-%d %H:%M:%S %Z')}")
    sys.stdout.flush()

    schema = f"bench_map_{uuid.uuid4().hex[:12]}"
    bench = Bench(dsn, schema, server, args.concurrency)
    chained: list[Figures] = []
    per_item: list[Figures] = []
    began = time.perf_counter()
    try:
        for path in ("chained", *(("per-item",) if baseline else ())):
            bench.measure(path, WARM_UP_ITEMS)  # prepared statements, imports, caches
        for n in baseline:
            per_item.append(_measured(bench, "per-item", n, memory=not args.no_memory))
        for n in items:
            chained.append(_measured(bench, "chained", n, memory=not args.no_memory))
    finally:
        bench.close()
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    load_after = _loadavg()
    print()
    print(_table([*chained, *per_item]))
    print()
    targets = _targets(chained, per_item)
    for line, _ok in targets:
        print(line)
    print(
        f"\nmachine load: {load_before} before, {load_after} after; "
        f"{time.perf_counter() - began:.0f}s in all"
    )
    missed = any(ok is False for _, ok in targets)
    if args.json:
        print(
            json.dumps(
                {
                    "benchmark": "map-scale",
                    "concurrency": args.concurrency,
                    "load_before": load_before,
                    "load_after": load_after,
                    "chained": [f.as_dict() for f in chained],
                    "per_item": [f.as_dict() for f in per_item],
                    "targets": [{"target": line, "met": ok} for line, ok in targets],
                }
            )
        )
    return 1 if args.check and missed else 0


def _measured(bench: Bench, path: str, n: int, *, memory: bool) -> Figures:
    figures = bench.measure(path, n)
    if memory:
        traced = bench.measure(path, n, trace=True)
        figures.tracemalloc_peak_mib = traced.tracemalloc_peak_mib
        figures.maxrss_mib = traced.maxrss_mib
    print(
        f"  measured {path:<8} N={n:<6} wall {figures.wall_s:6.1f}s  cpu {figures.cpu_s:6.1f}s"
        f"  passes {figures.passes}",
        flush=True,
    )
    return figures


def _table(rows: Sequence[Figures]) -> str:
    def opt(value: float | None, fmt: str) -> str:
        return "n/a" if value is None else format(value, fmt)

    columns: list[tuple[str, Callable[[Figures], str]]] = [
        ("path", lambda f: f.path),
        ("N", lambda f: f"{f.items:,}"),
        ("msgs (step+orch)", lambda f: f"{f.messages:,} ({f.step_messages:,}+{f.run_messages})"),
        ("msgs/item", lambda f: f"{f.messages / f.items:.4f}"),
        ("invocations", lambda f: f"{f.invocations:,}"),
        ("inv/item", lambda f: f"{f.invocations / f.items:.4f}"),
        ("passes", lambda f: f"{f.passes:,}"),
        ("CPU s", lambda f: f"{f.cpu_s:.2f}"),
        ("CPU ms/item", lambda f: f"{f.cpu_ms_per_item:.2f}"),
        ("PG CPU ms/item", lambda f: opt(f.server_cpu_ms_per_item, ".2f")),
        ("SQL RT/item", lambda f: f"{f.round_trips / f.items:.2f}"),
        (
            "wire RT/item",
            lambda f: opt(
                None if f.wire_round_trips is None else f.wire_round_trips / f.items, ".2f"
            ),
        ),
        ("wall s", lambda f: f"{f.wall_s:.1f}"),
        ("peak MiB", lambda f: opt(f.tracemalloc_peak_mib, ".1f")),
        ("maxrss MiB", lambda f: f"{f.maxrss_mib:.0f}"),
    ]
    cells = [[name for name, _ in columns], *([get(f) for _, get in columns] for f in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = []
    for index, row in enumerate(cells):
        lines.append(
            "  ".join(
                cell.ljust(w) if i == 0 else cell.rjust(w)
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if index == 0:
            lines.append("-" * len(lines[0]))
    return "\n".join(lines)


def _targets(
    chained: Sequence[Figures], per_item: Sequence[Figures]
) -> list[tuple[str, bool | None]]:
    out: list[tuple[str, bool | None]] = []

    def verdict(ok: bool) -> str:
        return "met" if ok else "MISSED"

    extra = max(
        max(f.messages - f.items, f.invocations - f.items) for f in chained
    )  # beyond one per item
    ok = all(
        f.messages <= f.items + TARGET_EXTRA_MESSAGES
        and f.invocations <= f.items + TARGET_EXTRA_MESSAGES
        for f in chained
    )
    out.append(
        (
            f"target      : messages and invocations <= 1 per item + {TARGET_EXTRA_MESSAGES}: "
            f"at most {extra:+d} beyond N: {verdict(ok)}",
            ok,
        )
    )
    passes = sorted({f.passes for f in chained})
    ok = max(passes) <= TARGET_PASSES
    out.append(
        (
            f"target      : passes a constant <= {TARGET_PASSES} whatever N: "
            f"{', '.join(map(str, passes))}: {verdict(ok)}",
            ok,
        )
    )
    first, last = chained[0], chained[-1]
    if last.items > first.items:
        growth = last.cpu_ms_per_item / first.cpu_ms_per_item
        ok = growth <= TARGET_CPU_GROWTH
        server = ""
        first_pg, last_pg = first.server_cpu_ms_per_item, last.server_cpu_ms_per_item
        if first_pg and last_pg is not None:
            server = f" (Postgres server: {last_pg / first_pg:.2f}x, not part of the target)"
        out.append(
            (
                f"target      : CPU per item flat: at N={last.items:,} / N={first.items:,} = "
                f"{growth:.2f}x (<= {TARGET_CPU_GROWTH}x){server}: {verdict(ok)}",
                ok,
            )
        )
    if len(per_item) >= 2:
        a, b = per_item[0], per_item[-1]
        out.append(
            (
                f"per-item    : (not chained, for comparison) passes {a.passes:,} at N={a.items:,},"
                f" {b.passes:,} at N={b.items:,}; CPU per item {b.cpu_ms_per_item:.2f} /"
                f" {a.cpu_ms_per_item:.2f} ms = {b.cpu_ms_per_item / a.cpu_ms_per_item:.2f}x"
                f" for {b.items / a.items:.1f}x the items",
                None,
            )
        )
    same = [(c, p) for p in per_item for c in chained if c.items == p.items]
    for c, p in same:
        out.append(
            (
                f"chained vs per-item at N={c.items:,}: passes {c.passes} vs {p.passes:,}, CPU"
                f" {c.cpu_s:.2f} vs {p.cpu_s:.2f} s ({p.cpu_s / c.cpu_s:.1f}x), SQL RT"
                f" {c.round_trips:,} vs {p.round_trips:,}",
                None,
            )
        )
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.map_scale",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

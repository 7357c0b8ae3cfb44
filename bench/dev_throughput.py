"""``lambda-flow dev``'s throughput: steps/s and step-to-step latency of sequential RPC steps.

``python -m bench dev-throughput`` starts a :class:`~lambda_flow.local.dev.DevRuntime` in this
process (the code ``lambda-flow dev`` runs: local queues, one thread per orchestrator and step
worker, the Orchestrator and StepWorker batch handlers) on a private embedded Postgres in a
temporary folder (or ``--database-url``), with a workflow of ``--steps`` (10) sequential RPC
steps over a trivial registered function. For each concurrency setting (``--config
WORKERSxORCHESTRATORS``, repeatable; a fresh schema each):

1. one unmeasured run warms the threads' connections and prepared statements;
2. ``--runs`` (200) runs are started at once through the service (``WorkflowService.start``,
   which queues each run's first pass) and the store is polled (every 20 ms) until all finish;
   steps/s is the steps of all runs over the time from the first start to the last run's end
   (its ``updated_at``);
3. ``--alone`` (5) runs are then started one at a time, each alone in the runtime.

Step-to-step latency is read from ``step_attempts``: a step attempt's ``started_at`` (its claim)
less the previous step's ``finished_at`` (its completion) in the same run: the time the engine
takes to hand a run from one step to the next. p50 and p99 over every pair. Also printed: this
process's CPU and the embedded server's (its processes', from ``/proc``) over the wall time of
the batch (1.0 = one core busy), and the load average before and after. Targets: >= 500
steps/s for 200 runs (2x the 250 of issue 14) and a one-run p50 under 5 ms. ``--check``
exits 1 when the first setting misses one; ``--json`` adds a JSON line; ``--profile FILE``
writes a cProfile (thread CPU time) of the pump threads' handler calls during the first
setting's batch.
"""

from __future__ import annotations

import argparse
import atexit
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from lambda_flow import Flow, WorkflowContext

SUMMARY = "lambda-flow dev: steps/s and step-to-step latency, 200 runs x 10 RPC steps and one alone"
TARGET_STEPS_PER_S = 500.0
"""2x the 250 steps/s issue 14 measured with 200 runs in flight."""
TARGET_ALONE_P50_MS = 5.0
POLL = 0.02
"""Seconds between two looks at the store while runs are in flight."""
DEFAULT_CONFIGS = ("default",)

flow = Flow()


@flow.function
def bump(n: int) -> int:
    """The step: as cheap as a registered function gets."""
    return n + 1


@flow.workflow
async def sequential(wf: WorkflowContext, data: dict[str, Any]) -> int:
    """``data["steps"]`` sequential RPC steps."""
    n = 0
    for i in range(int(data["steps"])):
        n = await wf.do(f"step {i}", bump, n)
    return n


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0-1) of ``values``, nearest rank (nan when empty)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(math.ceil(q * len(ordered)) - 1, 0)
    return ordered[min(rank, len(ordered) - 1)]


@dataclass
class Figures:
    """One concurrency setting's figures."""

    label: str
    step_workers: int
    orchestrators: int
    runs: int = 0
    steps: int = 0
    wall_s: float = 0.0
    cpu: float = 0.0
    """This process's CPU seconds per wall second during the batch (1.0: one core)."""
    server_cpu: float | None = None
    """The embedded Postgres server's CPU seconds per wall second during the batch."""
    batch_gaps_ms: list[float] = field(default_factory=list)
    alone_gaps_ms: list[float] = field(default_factory=list)
    alone_run_ms: list[float] = field(default_factory=list)
    failed: int = 0

    @property
    def steps_per_s(self) -> float:
        return self.steps / self.wall_s if self.wall_s else 0.0

    def p(self, gaps: list[float], q: float) -> float:
        return percentile(gaps, q)

    @property
    def met(self) -> bool:
        return (
            self.failed == 0
            and self.steps_per_s >= TARGET_STEPS_PER_S
            and self.p(self.alone_gaps_ms, 0.5) < TARGET_ALONE_P50_MS
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "config": self.label,
            "step_workers": self.step_workers,
            "orchestrators": self.orchestrators,
            "runs": self.runs,
            "steps": self.steps,
            "wall_s": round(self.wall_s, 3),
            "steps_per_s": round(self.steps_per_s, 1),
            "process_cpu_per_wall": round(self.cpu, 2),
            "server_cpu_per_wall": None if self.server_cpu is None else round(self.server_cpu, 2),
            "batch_gap_p50_ms": round(self.p(self.batch_gaps_ms, 0.5), 2),
            "batch_gap_p99_ms": round(self.p(self.batch_gaps_ms, 0.99), 2),
            "alone_gap_p50_ms": round(self.p(self.alone_gaps_ms, 0.5), 2),
            "alone_gap_p99_ms": round(self.p(self.alone_gaps_ms, 0.99), 2),
            "alone_run_ms_median": round(statistics.median(self.alone_run_ms), 1)
            if self.alone_run_ms
            else None,
            "failed_runs": self.failed,
            "met": self.met,
        }


def _loadavg() -> str:
    try:
        return "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    except OSError:
        return "n/a"


def _embedded() -> tuple[str, Path]:
    """A private embedded server in a temporary folder (removed at exit): its URL and data."""
    from lambda_flow.store.embedded import embedded_database_url

    root = Path(tempfile.mkdtemp(prefix="lambda-flow-bench-dev-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return embedded_database_url(root / "pgdata"), root / "pgdata"  # stops when we exit


def server_cpu(pgdata: Path | None) -> float | None:
    """CPU seconds the embedded server's processes (postmaster and children) used so far.

    From ``/proc`` (Linux); None without an embedded server or ``/proc``. Backends that exited
    are not counted: the runtime's pooled connections live through a measurement.
    """
    if pgdata is None:
        return None
    try:
        postmaster = int((pgdata / "postmaster.pid").read_text().split()[0])
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(entry.name) == postmaster or int(fields[1]) == postmaster:
                total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / ticks
    except (OSError, ValueError, IndexError):
        return None


def parse_config(text: str) -> tuple[str, int | None, int | None]:
    """``"default"`` or ``"WxO"`` (step workers x orchestrators): label, workers, orchestrators."""
    if text == "default":
        return text, None, None
    workers, sep, orchestrators = text.partition("x")
    if not sep or not workers.isdigit() or not orchestrators.isdigit():
        raise SystemExit(
            f"--config takes 'default' or WORKERSxORCHESTRATORS (e.g. 4x2), not {text!r}"
        )
    if int(workers) < 1 or int(orchestrators) < 1:
        raise SystemExit(f"--config {text}: both counts must be at least 1")
    return text, int(workers), int(orchestrators)


class _Probe:
    """A connection of its own to watch the runs and read their attempts."""

    def __init__(self, url: str, schema: str) -> None:
        self.conn = psycopg.connect(url, autocommit=True)
        self.schema = sql.Identifier(schema)

    def close(self) -> None:
        self.conn.close()

    def unfinished(self, run_ids: list[str]) -> tuple[int, int]:
        """(runs not finished, runs failed or cancelled) among ``run_ids``."""
        row = self.conn.execute(
            sql.SQL(
                "SELECT count(*) FILTER (WHERE status IN ('running', 'suspended')),"
                " count(*) FILTER (WHERE status IN ('failed', 'cancelled'))"
                " FROM {}.runs WHERE id = ANY(%s::uuid[])"
            ).format(self.schema),
            [run_ids],
        ).fetchone()
        assert row is not None
        return int(row[0]), int(row[1])

    def last_end(self, run_ids: list[str]) -> float:
        """When the last of ``run_ids`` ended (epoch seconds)."""
        row = self.conn.execute(
            sql.SQL(
                "SELECT extract(epoch FROM max(updated_at)) FROM {}.runs WHERE id = ANY(%s::uuid[])"
            ).format(self.schema),
            [run_ids],
        ).fetchone()
        assert row is not None
        return float(row[0])

    def gaps_ms(self, run_ids: list[str]) -> list[float]:
        """Each step attempt's start less the previous attempt's end, in the same run (ms)."""
        rows = self.conn.execute(
            sql.SQL(
                "SELECT extract(epoch FROM started_at - prev) * 1000 FROM ("
                " SELECT started_at, lag(finished_at) OVER (PARTITION BY run_id ORDER BY"
                " started_at, id) AS prev FROM {}.step_attempts"
                " WHERE run_id = ANY(%s::uuid[]) AND kind = 'rpc') g WHERE prev IS NOT NULL"
            ).format(self.schema),
            [run_ids],
        ).fetchall()
        return [float(r[0]) for r in rows]

    def wait(self, run_ids: list[str], timeout: float) -> int:
        """Poll until every run finished; the number that failed."""
        deadline = time.monotonic() + timeout
        while True:
            open_, failed = self.unfinished(run_ids)
            if open_ == 0:
                return failed
            if time.monotonic() > deadline:
                raise SystemExit(
                    f"{open_} of {len(run_ids)} runs still unfinished after {timeout}s"
                )
            time.sleep(POLL)


def _drop_schema(url: str, schema: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def measure(
    url: str,
    config: str,
    *,
    runs: int,
    steps: int,
    alone: int,
    timeout: float,
    profile: str | None = None,
    pgdata: Path | None = None,
) -> Figures:
    """Figures of one concurrency setting, on a fresh schema (dropped afterwards)."""
    from lambda_flow.local import DEFAULT_ORCHESTRATORS, DEFAULT_STEP_WORKERS
    from lambda_flow.local.dev import DevRuntime

    label, workers, orchestrators = parse_config(config)
    workers = workers or DEFAULT_STEP_WORKERS
    orchestrators = orchestrators or DEFAULT_ORCHESTRATORS
    figures = Figures(label, workers, orchestrators, runs=runs, steps=runs * steps)
    schema = f"bench_dev_{uuid.uuid4().hex[:8]}"
    runtime = DevRuntime(
        flow,
        database_url=url,
        schema=schema,
        port=0,
        sweep_every=timedelta(minutes=10),
        step_workers=workers,
        orchestrators=orchestrators,
    )
    probe = _Probe(url, schema)
    data = {"steps": steps}
    try:
        with runtime:
            service = runtime.service
            warm = [service.start("sequential", data) for _ in range(max(workers, orchestrators))]
            probe.wait(warm, timeout)

            profiles = _Profiles(runtime) if profile else None
            cpu0, server0, t0 = time.process_time(), server_cpu(pgdata), time.time()
            started = [service.start("sequential", data) for _ in range(runs)]
            figures.failed = probe.wait(started, timeout)
            cpu1, server1, t1 = time.process_time(), server_cpu(pgdata), time.time()
            if profiles is not None and profile:
                profiles.stop(profile)
            figures.wall_s = max(probe.last_end(started) - t0, 1e-9)
            figures.cpu = (cpu1 - cpu0) / max(t1 - t0, 1e-9)
            if server0 is not None and server1 is not None:
                figures.server_cpu = (server1 - server0) / max(t1 - t0, 1e-9)
            figures.batch_gaps_ms = probe.gaps_ms(started)

            for _ in range(alone):
                begin = time.perf_counter()
                run_id = service.start("sequential", data)
                figures.failed += probe.wait([run_id], timeout)
                figures.alone_run_ms.append((time.perf_counter() - begin) * 1000)
                figures.alone_gaps_ms.extend(probe.gaps_ms([run_id]))
    finally:
        probe.close()
        _drop_schema(url, schema)
    return figures


class _Profiles:
    """A cProfile per draining thread around its handler calls, merged at the end."""

    def __init__(self, runtime: Any) -> None:
        self.pumps = list(runtime.pumps)
        self.originals = [pump.handler for pump in self.pumps]
        self.profiles: list[Any] = []
        self.local = threading.local()
        self.lock = threading.Lock()
        for pump, original in zip(self.pumps, self.originals, strict=True):
            pump.handler = self._wrap(original)

    def _wrap(self, original: Any) -> Any:
        def profiled(event: Any, context: Any) -> Any:
            import cProfile

            own = getattr(self.local, "profile", None)
            if own is None:
                own = self.local.profile = cProfile.Profile(time.thread_time)
                with self.lock:
                    self.profiles.append(own)
            own.enable()
            try:
                return original(event, context)
            finally:
                own.disable()

        return profiled

    def stop(self, path: str, top: int = 30) -> None:
        import pstats

        for pump, original in zip(self.pumps, self.originals, strict=True):
            pump.handler = original
        if not self.profiles:
            return
        stats = pstats.Stats(*self.profiles)
        stats.dump_stats(path)
        print(f"profile of the pump threads' handler calls written to {path}; top {top}:")
        stats.sort_stats("tottime").print_stats(top)


def report(figures: list[Figures]) -> str:
    lines = [
        f"{'config (WxO)':<13} {'steps/s':>8} {'cpu':>5} {'pg cpu':>6} {'p50':>7} {'p99':>7}"
        f" {'alone p50':>10} {'alone p99':>10} {'alone run':>10} {'failed':>6}  targets",
    ]
    for f in figures:
        label = f"{f.step_workers}x{f.orchestrators}" + (" (dflt)" if f.label == "default" else "")
        lines.append(
            f"{label:<13} {f.steps_per_s:8.0f} {f.cpu:5.2f}"
            f" {'n/a' if f.server_cpu is None else f'{f.server_cpu:.2f}':>6}"
            f" {f.p(f.batch_gaps_ms, 0.5):5.1f}ms {f.p(f.batch_gaps_ms, 0.99):5.1f}ms"
            f" {f.p(f.alone_gaps_ms, 0.5):8.2f}ms {f.p(f.alone_gaps_ms, 0.99):8.2f}ms"
            f" {statistics.median(f.alone_run_ms) if f.alone_run_ms else 0:8.1f}ms {f.failed:6d}"
            f"  {'met' if f.met else 'MISSED'}"
        )
    lines.append(
        f"targets: >= {TARGET_STEPS_PER_S:.0f} steps/s with the runs in flight (2x 250);"
        f" one run alone: step-to-step p50 < {TARGET_ALONE_P50_MS:.0f} ms"
    )
    lines.append(
        "p50/p99: step-to-step latency (an attempt's start less the previous step's end, same"
        " run); cpu, pg cpu: CPU seconds per wall second of this process and of the embedded"
        " server during the batch (2.0: both cores of a 2-core machine)"
    )
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs", type=int, default=200, help="runs started at once (200)")
    parser.add_argument("--steps", type=int, default=10, help="sequential RPC steps a run (10)")
    parser.add_argument("--alone", type=int, default=5, help="runs then measured one by one (5)")
    parser.add_argument(
        "--config",
        action="append",
        dest="configs",
        default=None,
        metavar="WxO",
        help="step workers x orchestrators, or 'default' (repeatable; default: 'default')",
    )
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="seconds a batch may take (300)"
    )
    parser.add_argument(
        "--database-url",
        default=None,
        help="an existing Postgres (default: a private embedded one in a temp folder)",
    )
    parser.add_argument(
        "--profile", default=None, metavar="FILE", help="cProfile the first batch into FILE"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON last")
    parser.add_argument(
        "--check", action="store_true", help="exit with status 1 when a target is missed"
    )


def run(args: argparse.Namespace) -> int:
    if args.runs < 1 or args.steps < 2 or args.alone < 1:
        raise SystemExit("--runs and --alone must be >= 1, --steps >= 2")
    configs = args.configs or list(DEFAULT_CONFIGS)
    for config in configs:
        parse_config(config)
    pgdata: Path | None = None
    if args.database_url:
        url = args.database_url
    else:
        url, pgdata = _embedded()
    where = "--database-url" if args.database_url else "embedded (private, temp folder)"
    load_before = _loadavg()
    print(f"lambda-flow bench: dev-throughput ({SUMMARY})")
    print(f"python      : {sys.version.split()[0]} ({sys.executable})")
    print(f"database    : {where}")
    print(f"machine     : {os.cpu_count()} CPUs, load average {load_before} (1, 5, 15 min)")
    print(f"date        : {time.strftime('%Y-%m-%d %H:%M:%S %Z')}")
    print(
        f"workload    : {args.runs} runs x {args.steps} RPC steps at once, then {args.alone} alone"
    )
    sys.stdout.flush()
    figures: list[Figures] = []
    for i, config in enumerate(configs):
        f = measure(
            url,
            config,
            runs=args.runs,
            steps=args.steps,
            alone=args.alone,
            timeout=args.timeout,
            profile=args.profile if i == 0 else None,
            pgdata=pgdata,
        )
        figures.append(f)
        print(
            f"  {config}: {f.steps_per_s:.0f} steps/s, alone p50"
            f" {f.p(f.alone_gaps_ms, 0.5):.2f} ms, load {_loadavg()}",
            flush=True,
        )
    load_after = _loadavg()
    print()
    print(report(figures))
    print(f"\nmachine load: {load_before} before, {load_after} after")
    if args.json:
        print(
            json.dumps(
                {
                    "benchmark": "dev-throughput",
                    "load_before": load_before,
                    "load_after": load_after,
                    "figures": [f.as_dict() for f in figures],
                }
            )
        )
    return 1 if args.check and not figures[0].met else 0

"""What a large step result costs a step worker in memory (issue 14, item 4).

``python -m bench worker-memory`` runs one remote step whose registered function returns about
5 MB of JSON made of small objects (``{"id", "name", "tags", "v"}`` dicts), through a
``LocalQueue`` and the ``Dispatcher`` the Lambda handlers use, on a private embedded Postgres
(or ``--database-url``). Each measurement runs in a fresh child process, so its high-water mark
(``ru_maxrss``) is its own:

  N            the result's size as stored (JSON bytes)
  objects      what the function's own result takes as Python objects (tracemalloc)
  peak         the traced peak while the worker handles the job: the function runs, its result
               is stored, and the pass that follows hands it to the workflow body
  overhead     peak - objects: what the engine adds to the function's own result
  RSS growth   the child's ru_maxrss after the job minus before it

Target: the engine's overhead at most 3N (the worker serializes the result once, straight to
JSON bytes, stores those bytes as they are, never reads back what it wrote, and releases the
function's result before carrying the run on). The function's own objects are the workflow's
to pay for: Python's small objects take several times their JSON size.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

SUMMARY = "a step worker's memory for a 5 MB result of small objects (peak vs the JSON size)"
TARGET_OVERHEAD = 3.0
"""The engine's overhead over the result's JSON size, at most."""


def _result(n: int) -> list[dict[str, Any]]:
    return [{"id": i, "name": f"item-{i}", "tags": ["a", "b"], "v": i * 0.5} for i in range(n)]


def _flow() -> Any:
    from lambda_flow import Flow, WorkflowContext

    flow = Flow()

    @flow.function
    def export_rows(n: int) -> list[dict[str, Any]]:
        return _result(n)

    @flow.workflow
    async def export(wf: WorkflowContext, n: int) -> int:
        rows = await wf.do("Export", export_rows, n)
        return len(rows)

    return flow


def measure(database_url: str, items: int, *, traced: bool) -> dict[str, Any]:
    """One job in this process: the figures above (run it in a fresh child).

    ``traced``: measure with tracemalloc (whose own bookkeeping inflates the RSS), else RSS only.
    """
    import gc
    import resource
    import tracemalloc
    import uuid

    from lambda_flow import PostgresStore, WorkflowService
    from lambda_flow.testing import TimeSkippingClock
    from lambda_flow.transport.local import LocalQueue
    from lambda_flow.worker import Dispatcher

    flow = _flow()
    schema = f"bench_mem_{uuid.uuid4().hex[:8]}"
    store = PostgresStore(database_url, schema=schema)
    clock = TimeSkippingClock()
    queue = LocalQueue(clock)
    service = WorkflowService(flow, store=store, queue=queue, clock=clock)
    dispatcher = Dispatcher(service)
    try:
        run_id = service.start("export", items)
        message = queue.receive()
        assert message is not None
        dispatcher.run_message(message.body)
        job = queue.receive("step")
        assert job is not None
        size = len(json.dumps(_result(items), separators=(",", ":")).encode())
        gc.collect()
        objects = peak = 0
        if traced:
            tracemalloc.start()
            rows = _result(items)
            objects = tracemalloc.get_traced_memory()[0]
            del rows
            gc.collect()
            tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0] if traced else 0
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        dispatcher.step_message(job.body)
        if traced:
            peak = tracemalloc.get_traced_memory()[1] - base
            tracemalloc.stop()
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        run = service.get_run(run_id)
        if run is None or run.output != items:
            raise RuntimeError(f"the run did not complete with {items}: {run}")
    finally:
        with store._connection() as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        store.close()
    return {
        "items": items,
        "json_bytes": size,
        "objects_bytes": objects,
        "peak_bytes": peak,
        "overhead_bytes": peak - objects,
        "rss_growth_kib": rss_after - rss_before,
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--items", type=int, default=70_000, help="rows in the result (default 70000: ~5 MB)"
    )
    parser.add_argument("--database-url", help="an existing Postgres (default: a private one)")
    parser.add_argument("--check", action="store_true", help="exit 1 if the target is missed")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    parser.add_argument("--child", choices=("traced", "rss"), help=argparse.SUPPRESS)


def _child(url: str, items: int, mode: str) -> dict[str, Any]:
    """The figures of one job in a fresh process (this module, run as a child)."""
    command = [sys.executable, "-m", "bench", "worker-memory", "--child", mode]
    command += ["--database-url", url, "--items", str(items)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)  # noqa: S603 - our own module
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _embedded() -> str:
    import atexit
    import shutil

    from lambda_flow.store.embedded import embedded_database_url

    root = Path(tempfile.mkdtemp(prefix="lambda-flow-bench-mem-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return embedded_database_url(root / "pgdata")


def run(args: argparse.Namespace) -> int:
    if args.child:
        print(json.dumps(measure(args.database_url, args.items, traced=args.child == "traced")))
        return 0
    url = args.database_url or _embedded()
    load = os.getloadavg()
    figures = _child(url, args.items, "traced")
    figures["rss_growth_kib"] = _child(url, args.items, "rss")["rss_growth_kib"]
    mb = 1024 * 1024
    n = figures["json_bytes"]
    overhead = figures["overhead_bytes"] / n
    print(f"load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"result: {figures['items']:,} rows, N = {n / mb:.2f} MiB of JSON")
    print(f"the function's own objects   {figures['objects_bytes'] / mb:8.2f} MiB")
    print(f"peak while handling the job  {figures['peak_bytes'] / mb:8.2f} MiB")
    verdict = "met" if overhead <= TARGET_OVERHEAD else "MISSED"
    print(
        f"engine overhead (peak - objects) {figures['overhead_bytes'] / mb:8.2f} MiB = "
        f"{overhead:.2f} N   target <= {TARGET_OVERHEAD:.0f} N: {verdict}"
    )
    print(
        f"RSS growth (ru_maxrss, untraced run) {figures['rss_growth_kib'] / 1024:8.2f} MiB "
        f"= {figures['rss_growth_kib'] * 1024 / n:.1f} N (the function's objects included)"
    )
    if args.json:
        print(json.dumps({**figures, "overhead_per_n": overhead}))
    return 1 if args.check and overhead > TARGET_OVERHEAD else 0

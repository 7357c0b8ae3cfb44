"""The DBOS Transact side of ``python -m bench compare``; runs in DBOS's own virtual environment.

    .venv-bench-dbos/bin/python -m bench.dbos_workloads --admin-url URL --database NAME \
        --workload inline|concurrent|fanout [--steps N] [--workflows N] [--connections N]

The driver creates the (empty) database ``NAME`` on the benchmark's server and runs this from the
repository's root; it prints one line ``RESULT {json}`` with what it measured, through the same
server-side counters (``bench/_pgstats.py``) as lambda-flow's runs. DBOS creates its system
tables when it launches, before anything is measured, and every workload is warmed up first.

The workloads are those of ``bench/lf_workloads.py``, written the way DBOS's documentation
writes them: ``@DBOS.step()`` functions called from a ``@DBOS.workflow()``. They use DBOS's
synchronous API, its faster flavour here (a probe of the async API was ~8% slower on the
1000-step workload), except ``fanout``, which needs ``asyncio.gather`` and so async steps.
DBOS runs with its default settings except the size of its connection pool, which the driver
sets equal to lambda-flow's for the concurrent workload.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import logging
import sys
from importlib import metadata
from typing import Any

from bench._pgstats import ServerMonitor, WireCounter, database_url, measured

WARM_UP_STEPS = 10


def main(argv: list[str] | None = None) -> int:  # noqa: PLR0915 - one script, read top down
    parser = argparse.ArgumentParser(prog="python -m bench.dbos_workloads")
    parser.add_argument("--admin-url", required=True)
    parser.add_argument("--database", required=True)
    parser.add_argument("--workload", choices=("inline", "concurrent", "fanout"), required=True)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--workflows", type=int, default=500)
    parser.add_argument("--connections", type=int, default=20)
    args = parser.parse_args(argv)

    logging.getLogger("dbos").setLevel(logging.WARNING)
    # Imported by name: dbos lives only in its own virtual environment, not where mypy runs.
    DBOS: Any = importlib.import_module("dbos").DBOS  # noqa: N806 - DBOS's own name

    config: dict[str, Any] = {
        "name": "lambda-flow-bench",
        "system_database_url": database_url(args.admin_url, args.database),
        "log_level": "WARNING",
        "sys_db_pool_size": args.connections,
    }
    DBOS(config=config)

    # As ``@DBOS.step()`` / ``@DBOS.workflow()`` would register them (applied by hand: the
    # decorators are untyped here).
    def _step(i: int) -> int:
        return i

    step = DBOS.step()(_step)

    def _sequential(steps: int) -> int:
        total = 0
        for i in range(steps):
            total += step(i)
        return total

    sequential = DBOS.workflow()(_sequential)

    async def _parallel_step(i: int) -> int:
        return i

    parallel_step = DBOS.step()(_parallel_step)

    async def _fan_out(steps: int) -> int:
        return sum(await asyncio.gather(*(parallel_step(i) for i in range(steps))))

    fan_out = DBOS.workflow()(_fan_out)

    DBOS.launch()
    monitor = ServerMonitor(args.admin_url)
    dbid = monitor.database_oid(args.database)
    wire = WireCounter()
    try:
        with wire.installed():
            wire.exclude = monitor.conn.pgconn
            if args.workload == "inline":
                with measured(monitor, dbid, wire) as base:  # also the warm-up
                    sequential(WARM_UP_STEPS)
                with measured(monitor, dbid, wire) as m:
                    output = sequential(args.steps)
                expected = args.steps * (args.steps - 1) // 2
                units = {
                    "steps": args.steps,
                    "workflows": 1,
                    "baseline": {"steps": WARM_UP_STEPS, **base.as_dict()},
                }
            elif args.workload == "concurrent":
                warm = [
                    DBOS.start_workflow(sequential, args.steps) for _ in range(args.connections)
                ]
                for handle in warm:
                    handle.get_result()
                with measured(monitor, dbid, wire) as m:
                    handles = [
                        DBOS.start_workflow(sequential, args.steps) for _ in range(args.workflows)
                    ]
                    output = sum(h.get_result() for h in handles)
                expected = args.workflows * args.steps * (args.steps - 1) // 2
                units = {"steps": args.workflows * args.steps, "workflows": args.workflows}
            else:
                asyncio.run(fan_out(WARM_UP_STEPS))
                with measured(monitor, dbid, wire) as m:
                    output = asyncio.run(fan_out(args.steps))
                expected = args.steps * (args.steps - 1) // 2
                units = {"steps": args.steps, "workflows": 1}
    finally:
        monitor.close()
        DBOS.destroy()
    if output != expected:
        print(f"error: the workflow returned {output}, expected {expected}", file=sys.stderr)
        return 2
    result = {
        "engine": "dbos",
        "version": metadata.version("dbos"),
        "workload": args.workload,
        **units,
        **m.as_dict(),
    }
    print("RESULT " + json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

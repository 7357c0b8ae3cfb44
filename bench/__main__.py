"""``python -m bench [BENCHMARK] [options]``; without a benchmark name, ``inline-steps`` runs."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from . import (
    callbacks,
    cold_start,
    compare,
    dev_throughput,
    history_scale,
    inline_steps,
    map_scale,
    remote_steps,
    worker_memory,
)


@dataclass(frozen=True, slots=True)
class Benchmark:
    summary: str
    description: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


BENCHMARKS = {
    "inline-steps": Benchmark(
        summary=inline_steps.SUMMARY,
        description=inline_steps.__doc__ or inline_steps.SUMMARY,
        add_arguments=inline_steps.add_arguments,
        run=inline_steps.run,
    ),
    "compare": Benchmark(
        summary=compare.SUMMARY,
        description=compare.__doc__ or compare.SUMMARY,
        add_arguments=compare.add_arguments,
        run=compare.run,
    ),
    "remote-steps": Benchmark(
        summary=remote_steps.SUMMARY,
        description=remote_steps.__doc__ or remote_steps.SUMMARY,
        add_arguments=remote_steps.add_arguments,
        run=remote_steps.run,
    ),
    "callbacks": Benchmark(
        summary=callbacks.SUMMARY,
        description=callbacks.__doc__ or callbacks.SUMMARY,
        add_arguments=callbacks.add_arguments,
        run=callbacks.run,
    ),
    "map-scale": Benchmark(
        summary=map_scale.SUMMARY,
        description=map_scale.__doc__ or map_scale.SUMMARY,
        add_arguments=map_scale.add_arguments,
        run=map_scale.run,
    ),
    "cold-start": Benchmark(
        summary=cold_start.SUMMARY,
        description=cold_start.__doc__ or cold_start.SUMMARY,
        add_arguments=cold_start.add_arguments,
        run=cold_start.run,
    ),
    "history-scale": Benchmark(
        summary=history_scale.SUMMARY,
        description=history_scale.__doc__ or history_scale.SUMMARY,
        add_arguments=history_scale.add_arguments,
        run=history_scale.run,
    ),
    "worker-memory": Benchmark(
        summary=worker_memory.SUMMARY,
        description=worker_memory.__doc__ or worker_memory.SUMMARY,
        add_arguments=worker_memory.add_arguments,
        run=worker_memory.run,
    ),
    "dev-throughput": Benchmark(
        summary=dev_throughput.SUMMARY,
        description=dev_throughput.__doc__ or dev_throughput.SUMMARY,
        add_arguments=dev_throughput.add_arguments,
        run=dev_throughput.run,
    ),
}
DEFAULT = "inline-steps"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or (args[0].startswith("-") and args[0] not in ("-h", "--help")):
        args.insert(0, DEFAULT)
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=f"lambda-flow benchmarks (default: {DEFAULT}).",
    )
    commands = parser.add_subparsers(dest="benchmark", required=True, metavar="BENCHMARK")
    for name, benchmark in BENCHMARKS.items():
        command = commands.add_parser(
            name,
            help=benchmark.summary,
            description=benchmark.description,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        benchmark.add_arguments(command)
    options = parser.parse_args(args)
    return BENCHMARKS[options.benchmark].run(options)


if __name__ == "__main__":
    sys.exit(main())

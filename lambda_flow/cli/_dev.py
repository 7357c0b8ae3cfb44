"""The local runtime commands: ``dev`` serves the whole stack, ``invoke`` runs one handler once."""

from __future__ import annotations

import argparse
import importlib.util

from ..core import setting
from ..local import DEFAULT_ORCHESTRATORS, DEFAULT_STEP_WORKERS
from ._output import to_json
from ._session import EXIT_OK, AddCommand, CommandError, Session, read_json_file

MAX_POOL_THREADS = 256
"""The most threads ``--step-workers`` or ``--orchestrators`` may ask for (each holds a
database connection while it works)."""


def _pool_size(value: str) -> int:
    """A thread count for ``--step-workers`` / ``--orchestrators``: a whole number, 1 to 256."""
    try:
        number = int(value)
    except ValueError:
        number = 0
    if not 1 <= number <= MAX_POOL_THREADS:
        raise argparse.ArgumentTypeError(
            f"must be a whole number from 1 to {MAX_POOL_THREADS}, got {value!r}"
        )
    return number


def _require_local_extra(command: str) -> None:
    """Refuse in one line when the handlers' packages (the ``aws`` extra) are missing."""
    if importlib.util.find_spec("aws_lambda_powertools") is None:
        raise CommandError(
            f"lambda-flow {command} runs the Lambda handlers' code: "
            "pip install 'lambda-flow[local]' (it brings the aws extra)"
        )


def _cmd_dev(session: Session) -> int:
    _require_local_extra("dev")
    from ..core import parse_duration
    from ..local.console import log_to_console
    from ..local.dev import LOCAL_IDENTITY, DevRuntime, aws_clients_from_environment

    args = session.args
    flow = session.app()
    sqs, scheduler = aws_clients_from_environment()
    pools = {
        name: value
        for name, value in (
            ("step_workers", args.step_workers),
            ("orchestrators", args.orchestrators),
        )
        if value is not None  # else the runtime's defaults
    }
    runtime = DevRuntime(
        flow,
        **pools,
        database_url=session.database_url(),
        schema=session.schema(),
        host=args.host,
        port=args.port,
        identity=None if args.anonymous else LOCAL_IDENTITY,
        allow_anonymous=args.anonymous,
        sweep_every=parse_duration(args.sweep_every),
        sqs_client=sqs,
        scheduler_client=scheduler,
    )
    queues = "SQS and Scheduler at $AWS_ENDPOINT_URL" if sqs is not None else "local queues"
    with log_to_console():
        runtime.serve_until_stopped(queues)
    return EXIT_OK


def _cmd_invoke(session: Session) -> int:
    _require_local_extra("invoke")
    from ..local.console import log_to_console
    from ..local.invoke import invoke

    args = session.args
    event = read_json_file(args.event, "event")
    with log_to_console():  # on stderr: stdout carries the invocation's JSON
        result = invoke(
            args.function,
            event,
            flow=session.app(),
            database_url=session.database_url(),
            schema=session.schema(),
            workflow=args.workflow or setting(None, "LAMBDA_FLOW_TRIGGER_WORKFLOW"),
        )
    print(to_json({"response": result.response, "queued": result.queued}))
    return EXIT_OK


def add_dev(command: AddCommand) -> None:
    """Add ``dev``.

    ``[--host HOST] [--port PORT] [--sweep-every DURATION] [--step-workers N]
    [--orchestrators N] [--anonymous]``.
    """
    dev = command(
        "dev",
        _cmd_dev,
        "serve the API on a loopback port and run queues, workers, timers and the sweeper "
        "in this process (no Docker, no AWS account)",
    )
    dev.add_argument("--host", default="127.0.0.1", help="address to listen on")
    dev.add_argument("--port", type=int, default=8000, help="port (0 picks a free one)")
    dev.add_argument("--sweep-every", default="30s", metavar="DURATION", help="sweeper interval")
    dev.add_argument(
        "--step-workers",
        type=_pool_size,
        metavar="N",
        help=f"step jobs run at once, one thread each (default {DEFAULT_STEP_WORKERS})",
    )
    dev.add_argument(
        "--orchestrators",
        type=_pool_size,
        metavar="N",
        help=f"orchestration passes run at once, one thread each (default {DEFAULT_ORCHESTRATORS})",
    )
    dev.add_argument(
        "--anonymous",
        action="store_true",
        help="send requests without the local IAM caller (and let them through)",
    )


def add_invoke(command: AddCommand) -> None:
    """Add ``invoke FUNCTION -e FILE [--workflow NAME]``."""
    invoke = command(
        "invoke",
        _cmd_invoke,
        "run one function's handler on one event, like `sam local invoke` (no Docker)",
    )
    invoke.add_argument("function", metavar="FUNCTION", help="Api, Orchestrator, StepWorker, "
                        "Sweeper, QueueStart or ScheduleStart")  # fmt: skip
    invoke.add_argument("-e", "--event", required=True, metavar="FILE", help="the event (JSON)")
    invoke.add_argument("--workflow", help="the workflow QueueStart/ScheduleStart start")

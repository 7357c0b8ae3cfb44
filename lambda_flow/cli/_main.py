"""The ``lambda-flow`` command: start, inspect, resume and cancel runs, draw graphs, run the demo.

Every command takes the global options ``--app module:attribute`` (the application's
:class:`~lambda_flow.Flow`, default ``LAMBDA_FLOW_APP``), ``--database-url`` (default
``LAMBDA_FLOW_DATABASE_URL``, else an embedded Postgres) and ``--schema`` (default
``LAMBDA_FLOW_SCHEMA``, else ``workflows``), before or after the command name.

Exit codes: 0 done; 1 the run failed (``start``, ``demo``, ``resume``) or the database could not
be reached; 2 bad usage or input (one ``error: ...`` line on stderr, nothing written).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import psycopg

from ..core import (
    DEFAULT_SCHEMA,
    ENV_APP,
    ENV_SCHEMA,
    Clock,
    ConfigurationError,
    LambdaFlowError,
    NonDeterminismError,
    Run,
    RunStatus,
    StepAttempt,
    setting,
)
from ..engine import Flow, load_flow
from ..graph import Flow as GraphFlow
from ..service import WorkflowService
from ..store.embedded import resolve_database_url

EXIT_OK = 0
EXIT_RUN_FAILED = 1
EXIT_USAGE = 2

DEMO_APP = "examples.onboarding:flow"
DEMO_WORKFLOW = "onboard_user"


class CommandError(Exception):
    """A problem with what the user asked for: reported as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    """An argument parser that reports a usage error as one line instead of exiting."""

    def error(self, message: str) -> NoReturn:
        raise CommandError(message)


# -- output helpers ------------------------------------------------------------------------
def _one_line(text: str) -> str:
    return " ".join(text.split())


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns; the last column is not padded."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))

    def line(cells: Sequence[str]) -> str:
        padded = [c.ljust(widths[i]) for i, c in enumerate(cells[:-1])]
        return "  ".join([*padded, cells[-1]]).rstrip()

    return "\n".join([line(headers), *(line(r) for r in rows)])


def _duration(ms: float | None) -> str:
    if ms is None:
        return "-"
    if ms < 1000:
        return f"{ms:.0f}ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _timestamp(value: datetime | None) -> str:
    return "-" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _history_table(history: Sequence[StepAttempt]) -> str:
    rows = [
        [
            a.step_key,
            a.kind.value,
            a.status.value,
            str(a.attempt),
            _duration(a.duration_ms),
            _one_line(str(a.error)) if a.error else "",
        ]
        for a in history
    ]
    return _table(["STEP", "KIND", "STATUS", "ATTEMPT", "DURATION", "ERROR"], rows)


def _runs_table(runs: Sequence[Run]) -> str:
    rows = [
        [r.id, r.workflow, r.status.value, _timestamp(r.created_at), _timestamp(r.updated_at)]
        for r in runs
    ]
    return _table(["RUN ID", "WORKFLOW", "STATUS", "CREATED (UTC)", "UPDATED (UTC)"], rows)


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, default=str)


def _print_outcome(run: Run) -> int:
    print(f"run_id  {run.id}")
    print(f"status  {run.status.value}")
    if run.error is not None:
        print(f"error   {_one_line(str(run.error))}")
    if run.status is RunStatus.COMPLETED:
        print(f"output  {json.dumps(run.output)}")
    return EXIT_RUN_FAILED if run.status is RunStatus.FAILED else EXIT_OK


# -- argument checks (all before anything touches the database) ---------------------------
def _run_status(value: str) -> RunStatus:
    try:
        return RunStatus(value)
    except ValueError:
        expected = ", ".join(s.value for s in RunStatus)
        raise argparse.ArgumentTypeError(
            f"unknown status {value!r}; expected one of {expected}"
        ) from None


def _limit(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if not 1 <= number <= 1000:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to 1000, got {value!r}")
    return number


def _parse_input(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CommandError(
            f"--input is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None


def _load_demo_app() -> Flow:
    try:
        return load_flow(DEMO_APP, option="--app")
    except ConfigurationError:
        # Outside the source checkout: try the checkout this package was installed from.
        checkout = str(Path(__file__).resolve().parents[2])
        if checkout in sys.path or not (Path(checkout) / "examples" / "onboarding.py").exists():
            raise
        sys.path.append(checkout)
        importlib.invalidate_caches()
        return load_flow(DEMO_APP, option="--app")


# -- the session a command works in ---------------------------------------------------------
class _Session:
    """The parsed options, with the app and the service built only when a command needs them."""

    def __init__(self, args: argparse.Namespace, clock: Clock | None) -> None:
        self.args = args
        self.clock = clock
        self._service: WorkflowService | None = None

    def app(self, *, required: bool = True) -> Flow:
        spec = setting(self.args.app, ENV_APP)
        if spec:
            return load_flow(spec, option="--app")
        if required:
            raise CommandError(f"no app given: pass --app module:attribute or set {ENV_APP}")
        return GraphFlow()

    def schema(self) -> str:
        return setting(self.args.schema, ENV_SCHEMA, DEFAULT_SCHEMA) or DEFAULT_SCHEMA

    def service(self, flow: Flow) -> WorkflowService:
        from ..store.postgres import PostgresStore

        store = PostgresStore(resolve_database_url(self.args.database_url), schema=self.schema())
        self._service = WorkflowService(flow, store=store, clock=self.clock)
        return self._service

    def close(self) -> None:
        if self._service is not None:
            self._service.close()


# -- commands ---------------------------------------------------------------------------------
def _cmd_demo(session: _Session) -> int:
    flow = _load_demo_app()
    data = {
        "email": "ada.lovelace@example.com",
        "user_id": "ada",
        "welcome_delay": session.args.welcome_delay,
    }
    flow.get_workflow(DEMO_WORKFLOW).validate_input(data)
    service = session.service(flow)
    print(
        f"Running {DEMO_WORKFLOW!r} from {DEMO_APP} for {data['email']} "
        f"(welcome email after {data['welcome_delay']}; the email provider fails once)..."
    )
    run_id = service.start(DEMO_WORKFLOW, data)
    run = service.get_run(run_id)
    if run is None:  # pragma: no cover - start() stored it
        raise CommandError(f"run {run_id} disappeared")
    print()
    print(_history_table(service.get_run_history(run_id)))
    print()
    print(f"run_id  {run.id}")
    print(f"status  {run.status.value}")
    if run.error is not None:
        print(f"error   {_one_line(str(run.error))}")
    if run.status is not RunStatus.COMPLETED:
        return EXIT_RUN_FAILED
    # Through the workflow's output model, so the fields print in the order they are declared.
    output = flow.get_workflow(DEMO_WORKFLOW).output
    print("output")
    print(_json(output.dump(output.load(run.output))))
    print()
    print(f"See it again with: lambda-flow history {run_id}")
    return EXIT_OK


def _cmd_start(session: _Session) -> int:
    flow = session.app()
    data = _parse_input(session.args.input)
    flow.get_workflow(session.args.workflow).validate_input(data)
    service = session.service(flow)
    run_id = service.start(
        session.args.workflow, data, idempotency_key=session.args.idempotency_key
    )
    run = service.get_run(run_id)
    if run is None:  # pragma: no cover - start() stored it
        raise CommandError(f"run {run_id} disappeared")
    return _print_outcome(run)


def _cmd_status(session: _Session) -> int:
    service = session.service(session.app(required=False))
    run = service.get_run(session.args.run_id)
    if run is None:
        raise CommandError(f"unknown run {session.args.run_id!r}")
    print(run.model_dump_json(indent=2))
    return EXIT_OK


def _cmd_history(session: _Session) -> int:
    service = session.service(session.app(required=False))
    history = service.get_run_history(session.args.run_id)
    if session.args.json:
        print(_json([{**a.model_dump(mode="json"), "duration_ms": a.duration_ms} for a in history]))
    elif history:
        print(_history_table(history))
    else:
        print("no steps yet")
    return EXIT_OK


def _cmd_runs(session: _Session) -> int:
    service = session.service(session.app(required=False))
    runs = service.list_runs(
        workflow=session.args.workflow, status=session.args.status, limit=session.args.limit
    )
    if session.args.json:
        print(_json([r.model_dump(mode="json") for r in runs]))
    elif runs:
        print(_runs_table(runs))
    else:
        print("no runs")
    return EXIT_OK


def _cmd_resume(session: _Session) -> int:
    flow = session.app()
    service = session.service(flow)
    run = service.get_run(session.args.run_id)
    if run is None:
        raise CommandError(f"unknown run {session.args.run_id!r}")
    if run.workflow not in flow.workflows:
        # Driving it with an app that lacks its workflow would fail the run: refuse instead.
        raise CommandError(
            f"run {run.id} is a run of workflow {run.workflow!r}, which the app does not define"
        )
    return _print_outcome(service.resume(run.id))


def _cmd_graph(session: _Session) -> int:
    flow = session.app()
    name = session.args.name
    graphs = flow.graphs if isinstance(flow, GraphFlow) else {}
    graph = graphs.get(name)
    if graph is None:
        if name in flow.workflows:
            raise CommandError(f"workflow {name!r} is not a graph workflow")
        known = ", ".join(sorted(graphs)) or "none"
        raise CommandError(f"unknown graph {name!r} (graphs in the app: {known})")
    if session.args.mermaid:
        print(graph.mermaid())
        return EXIT_OK
    rows = [
        [
            node.id,
            node.function,
            ", ".join(node.targets)
            if node.branches is None
            else " ".join(f"{k}={','.join(t) or '-'}" for k, t in node.branches.items()),
            node.on_error or "",
        ]
        for node in graph.nodes.values()
    ]
    print(_table(["NODE", "FUNCTION", "NEXT", "ON_ERROR"], rows))
    return EXIT_OK


def _read_json_file(path: str, what: str) -> Any:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except OSError as exc:
        raise CommandError(f"cannot read {what} file {path!r}: {exc.strerror}") from None
    except ValueError as exc:
        raise CommandError(f"{what} file {path!r} is not valid JSON: {exc}") from None


def _cmd_dev(session: _Session) -> int:
    from ..core import parse_duration
    from ..local.dev import LOCAL_IDENTITY, DevRuntime, aws_clients_from_environment

    args = session.args
    flow = session.app()
    sqs, scheduler = aws_clients_from_environment()
    runtime = DevRuntime(
        flow,
        database_url=resolve_database_url(args.database_url),
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
    runtime.serve_until_stopped(queues)
    return EXIT_OK


def _cmd_invoke(session: _Session) -> int:
    from ..local.invoke import invoke

    args = session.args
    event = _read_json_file(args.event, "event")
    result = invoke(
        args.function,
        event,
        flow=session.app(),
        database_url=resolve_database_url(args.database_url),
        schema=session.schema(),
        workflow=args.workflow or setting(None, "LAMBDA_FLOW_TRIGGER_WORKFLOW"),
    )
    print(_json({"response": result.response, "queued": result.queued}))
    return EXIT_OK


def _cmd_export(session: _Session) -> int:
    service = session.service(session.app(required=False))
    print(_json(service.export_run(session.args.run_id)))
    return EXIT_OK


def _cmd_replay(session: _Session) -> int:
    from ..engine import replay_history

    history = _read_json_file(session.args.history, "history")
    try:
        status = replay_history(session.app(), history)
    except NonDeterminismError as exc:
        print(f"diverged: {_one_line(str(exc))}", file=sys.stderr)
        return EXIT_RUN_FAILED
    steps = len(history.get("steps", []))
    print(f"ok: the code replays all {steps} recorded steps ({status.value} at the end)")
    return EXIT_OK


def _cmd_cancel(session: _Session) -> int:
    service = session.service(session.app(required=False))
    run = service.cancel(session.args.run_id, session.args.reason)
    return _print_outcome(run)


# -- the parser -----------------------------------------------------------------------------
def _global_options(parser: argparse.ArgumentParser, *, nested: bool) -> None:
    # On subcommands the defaults are suppressed so they never hide a value given before the
    # command name.
    default: Any = argparse.SUPPRESS if nested else None
    parser.add_argument(
        "--app",
        metavar="MODULE:ATTR",
        default=default,
        help=f"the application's Flow (default: ${ENV_APP})",
    )
    parser.add_argument(
        "--database-url",
        metavar="URL",
        default=default,
        help="Postgres URL (default: $LAMBDA_FLOW_DATABASE_URL, else an embedded Postgres)",
    )
    parser.add_argument(
        "--schema",
        default=default,
        help=f"schema of lambda-flow's tables (default: ${ENV_SCHEMA}, else {DEFAULT_SCHEMA!r})",
    )


def build_parser() -> argparse.ArgumentParser:
    """The ``lambda-flow`` argument parser."""
    parser = _Parser(
        prog="lambda-flow",
        description="Start, inspect, resume and cancel lambda-flow workflow runs.",
    )
    _global_options(parser, nested=False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(
        name: str, handler: Callable[[_Session], int], help_text: str
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        _global_options(sub, nested=True)
        sub.set_defaults(handler=handler)
        return sub

    demo = command(
        "demo", _cmd_demo, "run the onboarding example and print its history (no --app needed)"
    )
    demo.add_argument("--welcome-delay", default="2s", help=argparse.SUPPRESS)

    start = command("start", _cmd_start, "start a run and print its id and status")
    start.add_argument("workflow", metavar="WORKFLOW")
    start.add_argument("--input", default="null", metavar="JSON", help="the workflow's input")
    start.add_argument("--idempotency-key", metavar="KEY", help="start at most one run per key")

    status = command("status", _cmd_status, "print a run as JSON")
    status.add_argument("run_id", metavar="RUN_ID")

    history = command("history", _cmd_history, "print every attempt of every step of a run")
    history.add_argument("run_id", metavar="RUN_ID")
    history.add_argument("--json", action="store_true", help="print JSON instead of a table")

    runs = command("runs", _cmd_runs, "list runs, newest first")
    runs.add_argument("--workflow", metavar="NAME", help="only runs of this workflow")
    runs.add_argument(
        "--status",
        type=_run_status,
        metavar="STATUS",
        help="only runs in this status: " + ", ".join(s.value for s in RunStatus),
    )
    runs.add_argument("--limit", type=_limit, default=20, metavar="N", help="at most N (1-1000)")
    runs.add_argument("--json", action="store_true", help="print JSON instead of a table")

    resume = command("resume", _cmd_resume, "resume a suspended run and drive it on")
    resume.add_argument("run_id", metavar="RUN_ID")

    graph = command("graph", _cmd_graph, "show a graph workflow's nodes and edges")
    graph.add_argument("name", metavar="NAME")
    graph.add_argument("--mermaid", action="store_true", help="print a Mermaid flowchart")

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
        "--anonymous",
        action="store_true",
        help="send requests without the local IAM caller (and let them through)",
    )

    invoke = command(
        "invoke",
        _cmd_invoke,
        "run one function's handler on one event, like `sam local invoke` (no Docker)",
    )
    invoke.add_argument("function", metavar="FUNCTION", help="Api, Orchestrator, StepWorker, "
                        "Sweeper, QueueStart or ScheduleStart")  # fmt: skip
    invoke.add_argument("-e", "--event", required=True, metavar="FILE", help="the event (JSON)")
    invoke.add_argument("--workflow", help="the workflow QueueStart/ScheduleStart start")

    export = command("export", _cmd_export, "print a run and its steps as a replayable history")
    export.add_argument("run_id", metavar="RUN_ID")

    replay = command(
        "replay",
        _cmd_replay,
        "replay an exported history against the app's code, running nothing (exit 1: diverged)",
    )
    replay.add_argument("history", metavar="FILE")

    cancel = command("cancel", _cmd_cancel, "cancel a running or suspended run")
    cancel.add_argument("run_id", metavar="RUN_ID")
    cancel.add_argument("--reason", help="why (stored as the run's error)")
    return parser


def main(argv: Sequence[str] | None = None, *, clock: Clock | None = None) -> int:
    """Run the ``lambda-flow`` command and return its exit code.

    Args:
        argv: the arguments after the program name; ``sys.argv[1:]`` when None.
        clock: the service's clock (tests pass a time-skipping one); wall-clock time when None.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except CommandError as exc:
        print(f"error: {_one_line(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else EXIT_OK
    session = _Session(args, clock)
    try:
        handler: Callable[[_Session], int] = args.handler
        return handler(session)
    except (CommandError, LambdaFlowError) as exc:
        print(f"error: {_one_line(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except psycopg.Error as exc:  # includes the pool's timeout when the server is unreachable
        print(f"error: database: {_one_line(str(exc))}", file=sys.stderr)
        return EXIT_RUN_FAILED
    finally:
        session.close()


if __name__ == "__main__":
    sys.exit(main())

"""The run commands: ``start``, ``run``, ``status``, ``history``, ``runs``, ``resume``, ``cancel``.

Watching runs (``--follow``, ``watch``) lives in :mod:`._watch`.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING

from ..core import InvalidDuration, RunStatus, parse_duration
from ._output import history_table, print_outcome, runs_table, to_json
from ._placement import Placement, choose_placement
from ._session import (
    EXIT_OK,
    EXIT_RUN_FAILED,
    AddCommand,
    CommandError,
    Session,
    parse_input,
    read_input,
)
from ._watch import Progress, carry_on, interruptible, wait_for_run

if TYPE_CHECKING:
    from ..core import Run
    from ..service import WorkflowService


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


def _since(value: str) -> timedelta:
    try:
        age = parse_duration(value)
    except InvalidDuration:
        age = timedelta(0)
    if age <= timedelta(0):
        raise argparse.ArgumentTypeError(f"must be a positive duration (1h, 7d), got {value!r}")
    return age


def _search(value: str) -> str:
    if not value or len(value) > 200:  # the service's bound, said before it is asked
        raise argparse.ArgumentTypeError("must be 1 to 200 characters")
    return value


def _run_id(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a run id (a UUID), got {value!r}") from None


# -- commands ---------------------------------------------------------------------------------
def _start(session: Session) -> tuple[WorkflowService, Placement, str]:
    """Check the input, then store the run where it will be driven; nothing runs yet."""
    flow = session.app()
    definition = flow.get_workflow(session.args.workflow)
    data = read_input(session.args, definition)
    definition.validate_input(data)
    placement = choose_placement(session)
    service = session.service(flow, driver=placement.driver())
    run_id = placement.start(
        service,
        definition.name,
        data,
        session.args.idempotency_key,
        getattr(session.args, "run_timeout", None),
    )
    return service, placement, run_id


def _cmd_start(session: Session) -> int:
    service, placement, run_id = _start(session)
    return carry_on(session, service, placement, run_id)


def _cmd_run(session: Session) -> int:
    service, placement, run_id = _start(session)
    progress = Progress(sys.stderr, enabled=session.args.follow)

    def announce() -> None:
        if session.args.follow:
            print(f"run_id  {run_id}", file=sys.stderr, flush=True)

    def body() -> int:
        run = wait_for_run(
            service, run_id, progress, drive_here=placement.drives_here, announce=announce
        )
        if run.status is RunStatus.COMPLETED:
            print(to_json(run.output))
            return EXIT_OK
        with contextlib.redirect_stdout(sys.stderr):
            print_outcome(run)
        if run.status is RunStatus.SUSPENDED:
            print(f"resume it with: lambda-flow resume {run.id}", file=sys.stderr)
        return EXIT_RUN_FAILED

    return interruptible(run_id, body, drive_here=placement.drives_here, progress=progress)


def _cmd_status(session: Session) -> int:
    service = session.service(session.app(required=False))
    run = service.get_run(session.args.run_id)
    if run is None:
        raise CommandError(f"unknown run {session.args.run_id!r}")
    if session.args.cost or session.args.price:
        return _print_cost(service, run, session.args.price or [], as_json=session.args.json)
    print(run.model_dump_json(indent=2))
    return EXIT_OK


def _print_cost(service: WorkflowService, run: Run, prices: list[str], *, as_json: bool) -> int:
    """What the run costs on AWS, as the console's run page shows it."""
    from ..console import CostModel, count_run, run_cost

    overrides: dict[str, float] = {}
    for given in prices:
        name, sep, value = given.partition("=")
        try:
            overrides[name.strip().replace("-", "_")] = float(value)
        except ValueError:
            raise CommandError(f"--price takes NAME=NUMBER, got {given!r}") from None
        if not sep:
            raise CommandError(f"--price takes NAME=NUMBER, got {given!r}")
    try:
        model = CostModel.with_overrides(overrides)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    cost = run_cost(count_run(service.get_run_history(run.id), since=run.created_at), model)
    if as_json:
        print(to_json({"run_id": run.id, "workflow": run.workflow, **cost.to_json()}))
        return EXIT_OK
    print(f"run {run.id} ({run.workflow}, {run.status.value}) on AWS, remote mode:")
    for item, counted, dollars in cost.items():
        print(f"  {item:<22} {counted:<34} ${dollars:.8f}")
    print(f"  {'total':<22} {'':<34} ${cost.total:.8f} (${cost.total * 1e6:,.2f} per million runs)")
    return EXIT_OK


def _cmd_history(session: Session) -> int:
    service = session.service(session.app(required=False))
    history = service.get_run_history(session.args.run_id)
    if session.args.json:
        print(
            to_json([{**a.model_dump(mode="json"), "duration_ms": a.duration_ms} for a in history])
        )
    elif history:
        print(history_table(history, tracebacks=session.args.traceback))
    else:
        print("no steps yet")
    return EXIT_OK


def _cmd_runs(session: Session) -> int:
    service = session.service(session.app(required=False))
    since = session.args.since
    runs = service.list_runs(
        workflow=session.args.workflow, status=session.args.status, limit=session.args.limit,
        parent_id=session.args.parent, search=session.args.search,
        created_after=None if since is None else service.clock.now() - since,
    )  # fmt: skip
    if session.args.json:
        print(to_json([r.model_dump(mode="json") for r in runs]))
    elif runs:
        print(runs_table(runs))
    else:
        print("no runs")
    return EXIT_OK


def _cmd_resume(session: Session) -> int:
    flow = session.app()
    placement = choose_placement(session)
    service = session.service(flow, driver=placement.driver())
    run = service.get_run(session.args.run_id)
    if run is None:
        raise CommandError(f"unknown run {session.args.run_id!r}")
    if run.workflow not in flow.workflows:
        # Driving it with an app that lacks its workflow would fail the run: refuse instead.
        raise CommandError(
            f"run {run.id} is a run of workflow {run.workflow!r}, which the app does not define"
        )
    payload = (
        None if session.args.payload is None else parse_input(session.args.payload, "--payload")
    )
    placement.resume(service, run.id, payload)
    return carry_on(session, service, placement, run.id)


def _cmd_cancel(session: Session) -> int:
    service = session.service(session.app(required=False))
    run = service.cancel(
        session.args.run_id, session.args.reason, cleanup_timeout=session.args.cleanup_timeout
    )
    return print_outcome(run)


# -- their arguments --------------------------------------------------------------------------
_WAITING = (
    "Without a queue or a running `lambda-flow dev` on this database, the run is driven in "
    "this process after its id is printed; with one, it is queued for the workers."
)


def _input_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("workflow", metavar="WORKFLOW")
    given = parser.add_mutually_exclusive_group()
    given.add_argument(
        "--input", metavar="JSON", help="the workflow's input as JSON; `-` reads it from stdin"
    )
    given.add_argument(
        "--input-file", metavar="PATH", help="read the input (JSON) from a file; `-` is stdin"
    )
    parser.add_argument("--idempotency-key", metavar="KEY", help="start at most one run per key")
    parser.add_argument(
        "--run-timeout",
        metavar="DURATION",
        help="how long the run may take, e.g. 7d (past it the run fails: RunDeadlineExceeded)",
    )


def _follow_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--follow",
        action="store_true",
        help="show each step attempt as it finishes (and sleeps' wake times) until the run rests",
    )


def _no_wait_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-wait",
        action="store_true",
        help="only store the run and return (drive it later with `lambda-flow resume RUN_ID`)",
    )


def add_start(command: AddCommand) -> None:
    """Add ``start WORKFLOW [--input JSON | --input-file PATH] [--follow] [--no-wait] ...``."""
    start = command("start", _cmd_start, "start a run: print its id, then drive or queue it")
    start.epilog = _WAITING
    _input_options(start)
    _follow_option(start)
    _no_wait_option(start)


def add_run(command: AddCommand) -> None:
    """Add ``run WORKFLOW [--input JSON | --input-file PATH] [--follow]``."""
    run = command(
        "run",
        _cmd_run,
        "start a run, wait for it and print its output as JSON (exit 1 when it ends without "
        "output: failed, cancelled or suspended)",
    )
    run.epilog = _WAITING
    _input_options(run)
    _follow_option(run)


def add_status(command: AddCommand) -> None:
    """Add ``status RUN_ID [--cost [--json] [--price NAME=VALUE ...]]``."""
    status = command("status", _cmd_status, "print a run as JSON (--cost: what it costs on AWS)")
    status.add_argument("run_id", metavar="RUN_ID")
    status.add_argument(
        "--cost",
        action="store_true",
        help="print what the run costs on AWS, from its history at the benchmark's prices",
    )
    status.add_argument("--json", action="store_true", help="with --cost: print JSON")
    status.add_argument(
        "--price",
        action="append",
        metavar="NAME=VALUE",
        help="with --cost: override a CostModel field, e.g. --price db_io=0 --price memory_gb=1",
    )


def add_history(command: AddCommand) -> None:
    """Add ``history RUN_ID [--json] [--traceback]``."""
    history = command("history", _cmd_history, "print every attempt of every step of a run")
    history.add_argument("run_id", metavar="RUN_ID")
    history.add_argument("--json", action="store_true", help="print JSON instead of a table")
    history.add_argument(
        "-v",
        "--traceback",
        action="store_true",
        help="print each failed attempt's stored traceback under its row",
    )


def add_runs(command: AddCommand) -> None:
    """Add ``runs``: ``[--workflow NAME] [--status STATUS] [--parent ID] [--search TEXT]``.

    Also ``[--since AGE] [--limit N] [--json]``.
    """
    runs = command("runs", _cmd_runs, "list runs, newest first")
    runs.add_argument("--workflow", metavar="NAME", help="only runs of this workflow")
    runs.add_argument(
        "--parent", type=_run_id, metavar="ID", help="only the child runs of this run"
    )
    runs.add_argument(
        "--status",
        type=_run_status,
        metavar="STATUS",
        help="only runs in this status: " + ", ".join(s.value for s in RunStatus),
    )
    runs.add_argument(
        "--search",
        type=_search,
        metavar="TEXT",
        help="only runs whose id or idempotency key is TEXT or starts with it",
    )
    runs.add_argument(
        "--since", type=_since, metavar="AGE", help="only runs created in the last AGE (1h, 7d)"
    )
    runs.add_argument("--limit", type=_limit, default=20, metavar="N", help="at most N (1-1000)")
    runs.add_argument("--json", action="store_true", help="print JSON instead of a table")


def add_resume(command: AddCommand) -> None:
    """Add ``resume RUN_ID``."""
    resume = command(
        "resume",
        _cmd_resume,
        "resume a suspended run (or a running one nobody drives) and drive or queue it",
    )
    resume.epilog = _WAITING
    resume.add_argument("run_id", metavar="RUN_ID")
    resume.add_argument(
        "--payload", metavar="JSON", help="what the awaited wf.suspend returns (a decision)"
    )
    _follow_option(resume)
    _no_wait_option(resume)


def add_cancel(command: AddCommand) -> None:
    """Add ``cancel RUN_ID [--reason TEXT] [--cleanup-timeout DURATION]``."""
    cancel = command("cancel", _cmd_cancel, "cancel a running or suspended run")
    cancel.add_argument("run_id", metavar="RUN_ID")
    cancel.add_argument("--reason", help="why (stored as the run's error)")
    cancel.add_argument(
        "--cleanup-timeout",
        metavar="DURATION",
        help="how long the workflow may clean up after the cancellation (default: until done)",
    )

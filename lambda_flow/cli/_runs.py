"""The run commands: ``start``, ``status``, ``history``, ``runs``, ``resume`` and ``cancel``."""

from __future__ import annotations

import argparse

from ..core import RunStatus
from ._output import history_table, print_outcome, runs_table, to_json
from ._session import EXIT_OK, AddCommand, CommandError, Session, parse_input


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


# -- commands ---------------------------------------------------------------------------------
def _cmd_start(session: Session) -> int:
    flow = session.app()
    data = parse_input(session.args.input)
    flow.get_workflow(session.args.workflow).validate_input(data)
    service = session.service(flow)
    run_id = service.start(
        session.args.workflow, data, idempotency_key=session.args.idempotency_key
    )
    run = service.get_run(run_id)
    if run is None:  # pragma: no cover - start() stored it
        raise CommandError(f"run {run_id} disappeared")
    return print_outcome(run)


def _cmd_status(session: Session) -> int:
    service = session.service(session.app(required=False))
    run = service.get_run(session.args.run_id)
    if run is None:
        raise CommandError(f"unknown run {session.args.run_id!r}")
    print(run.model_dump_json(indent=2))
    return EXIT_OK


def _cmd_history(session: Session) -> int:
    service = session.service(session.app(required=False))
    history = service.get_run_history(session.args.run_id)
    if session.args.json:
        print(
            to_json([{**a.model_dump(mode="json"), "duration_ms": a.duration_ms} for a in history])
        )
    elif history:
        print(history_table(history))
    else:
        print("no steps yet")
    return EXIT_OK


def _cmd_runs(session: Session) -> int:
    service = session.service(session.app(required=False))
    runs = service.list_runs(
        workflow=session.args.workflow, status=session.args.status, limit=session.args.limit
    )
    if session.args.json:
        print(to_json([r.model_dump(mode="json") for r in runs]))
    elif runs:
        print(runs_table(runs))
    else:
        print("no runs")
    return EXIT_OK


def _cmd_resume(session: Session) -> int:
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
    return print_outcome(service.resume(run.id))


def _cmd_cancel(session: Session) -> int:
    service = session.service(session.app(required=False))
    run = service.cancel(session.args.run_id, session.args.reason)
    return print_outcome(run)


# -- their arguments --------------------------------------------------------------------------
def add_start(command: AddCommand) -> None:
    """Add ``start WORKFLOW [--input JSON] [--idempotency-key KEY]``."""
    start = command("start", _cmd_start, "start a run and print its id and status")
    start.add_argument("workflow", metavar="WORKFLOW")
    start.add_argument("--input", default="null", metavar="JSON", help="the workflow's input")
    start.add_argument("--idempotency-key", metavar="KEY", help="start at most one run per key")


def add_status(command: AddCommand) -> None:
    """Add ``status RUN_ID``."""
    status = command("status", _cmd_status, "print a run as JSON")
    status.add_argument("run_id", metavar="RUN_ID")


def add_history(command: AddCommand) -> None:
    """Add ``history RUN_ID [--json]``."""
    history = command("history", _cmd_history, "print every attempt of every step of a run")
    history.add_argument("run_id", metavar="RUN_ID")
    history.add_argument("--json", action="store_true", help="print JSON instead of a table")


def add_runs(command: AddCommand) -> None:
    """Add ``runs [--workflow NAME] [--status STATUS] [--limit N] [--json]``."""
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


def add_resume(command: AddCommand) -> None:
    """Add ``resume RUN_ID``."""
    resume = command("resume", _cmd_resume, "resume a suspended run and drive it on")
    resume.add_argument("run_id", metavar="RUN_ID")


def add_cancel(command: AddCommand) -> None:
    """Add ``cancel RUN_ID [--reason TEXT]``."""
    cancel = command("cancel", _cmd_cancel, "cancel a running or suspended run")
    cancel.add_argument("run_id", metavar="RUN_ID")
    cancel.add_argument("--reason", help="why (stored as the run's error)")

"""``lambda-flow fork RUN_ID --from-step KEY [--input JSON]``: re-run a run from a step."""

from __future__ import annotations

from ._placement import choose_placement
from ._session import AddCommand, CommandError, Session, parse_input
from ._watch import carry_on


def _cmd_fork(session: Session) -> int:
    args = session.args
    flow = session.app()
    placement = choose_placement(session)
    service = session.service(flow, driver=placement.driver())
    run = service.get_run(args.run_id)
    if run is None:
        raise CommandError(f"unknown run {args.run_id!r}")
    if run.workflow not in flow.workflows:
        raise CommandError(
            f"run {run.id} is a run of workflow {run.workflow!r}, which the app does not define"
        )
    data = None if args.input is None else parse_input(args.input)
    run_id = placement.fork(service, run.id, args.from_step, data)
    return carry_on(session, service, placement, run_id)


def add_fork(command: AddCommand) -> None:
    """Add ``fork RUN_ID --from-step KEY [--input JSON] [--follow] [--no-wait]``."""
    fork = command(
        "fork",
        _cmd_fork,
        "start a new run of a run's workflow from one of its steps, reusing the steps before it",
    )
    fork.add_argument("run_id", metavar="RUN_ID")
    fork.add_argument(
        "--from-step",
        required=True,
        metavar="KEY",
        help="the key of the first step to run again (as `lambda-flow history` shows it)",
    )
    fork.add_argument(
        "--input", metavar="JSON", help="the new run's input as JSON (default: the run's own)"
    )
    fork.add_argument("--follow", action="store_true", help="show each step attempt as it ends")
    fork.add_argument(
        "--no-wait", action="store_true", help="only store the new run and return its id"
    )

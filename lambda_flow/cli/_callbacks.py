"""The callback commands: ``callback succeed|fail|heartbeat CALLBACK_ID``.

Like ``resume``: the completion is stored and the run is driven where its runs are driven
(here, by the queue's workers, or by a running ``lambda-flow dev``).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..core import RunStatus
from ._placement import DevPlacement, choose_placement
from ._session import EXIT_OK, AddCommand, CommandError, Session, parse_input
from ._watch import carry_on


def _payload(args: argparse.Namespace) -> Any:
    if args.payload is not None and args.payload_file is not None:
        raise CommandError("give --payload or --payload-file, not both")
    if args.payload_file is not None:
        try:
            text = Path(args.payload_file).read_text("utf-8")
        except OSError as exc:
            raise CommandError(f"--payload-file {args.payload_file}: {exc.strerror}") from None
        return parse_input(text, f"--payload-file {args.payload_file}")
    return None if args.payload is None else parse_input(args.payload, "--payload")


def _cmd_callback(session: Session) -> int:
    args = session.args
    if args.action == "fail" and not args.error:
        raise CommandError("callback fail needs --error MESSAGE")
    if args.action != "fail" and (args.error or args.type):
        raise CommandError("--error and --type go with callback fail")
    payload = _payload(args) if args.action == "succeed" else None
    if args.action != "succeed" and (args.payload or args.payload_file):
        raise CommandError("--payload goes with callback succeed")
    flow = session.app(required=False)
    placement = choose_placement(session)
    service = session.service(flow, driver=placement.driver())
    state = service.find_callback(args.callback_id)  # CallbackNotFound: exit 2
    if isinstance(placement, DevPlacement):
        body = {"error": args.error, "type": args.type} if args.action == "fail" else payload
        placement.post(f"/callbacks/{args.callback_id}/{args.action}", body)
    elif args.action == "succeed":
        service.complete_callback(args.callback_id, payload)
    elif args.action == "fail":
        service.fail_callback(args.callback_id, args.error, error_type=args.type)
    else:
        service.heartbeat_callback(args.callback_id)
        print(f"callback {args.callback_id} heartbeat recorded")
        return EXIT_OK
    run = service.get_run(state.run_id)
    if run is None or run.status is not RunStatus.RUNNING or flow is None:
        print(f"callback {args.callback_id} {args.action}ed; run_id  {state.run_id}")
        return EXIT_OK
    return carry_on(session, service, placement, state.run_id)


def add_callback(command: AddCommand) -> None:
    """Add ``callback succeed|fail|heartbeat CALLBACK_ID [--payload JSON] [--error MSG]``."""
    parser = command(
        "callback",
        _cmd_callback,
        "complete, fail or heartbeat a callback a run waits on (its id: `lambda-flow status`)",
    )
    parser.add_argument("action", choices=("succeed", "fail", "heartbeat"))
    parser.add_argument("callback_id", metavar="CALLBACK_ID")
    parser.add_argument("--payload", metavar="JSON", help="succeed: the payload (JSON)")
    parser.add_argument(
        "--payload-file", metavar="PATH", help="succeed: read the payload from a file"
    )
    parser.add_argument("--error", metavar="MSG", help="fail: the error message")
    parser.add_argument("--type", metavar="T", help="fail: the error type (default CallbackFailed)")
    parser.add_argument("--follow", action="store_true", help="show the run's steps as they go")
    parser.add_argument("--no-wait", action="store_true", help="return once the callback is stored")

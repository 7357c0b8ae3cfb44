"""``lambda-flow gc --older-than 30d [--status S ...] [--dry-run]``: delete old finished runs.

Only runs that ended (``completed``, ``failed``, ``cancelled``) longer ago than ``--older-than``
go, with their steps, attempts and batches, in short batches that never wait on a run another
process holds; running and suspended runs are never touched. The deployed stack's sweeper does
the same on its own with the ``RetentionDays`` parameter.
"""

from __future__ import annotations

import argparse

from ..core import InvalidOption, RunStatus, parse_duration
from ..store.base import finished_statuses
from ._session import EXIT_OK, AddCommand, CommandError, Session

_FINISHED = ", ".join(s.value for s in RunStatus if s.is_terminal)


def _check(args: argparse.Namespace) -> tuple[RunStatus, ...]:
    """The statuses asked for, every option checked before the database is touched.

    Raises:
        CommandError: naming the option and the problem.
    """
    older_than: str = args.older_than
    try:
        age = parse_duration(older_than)
    except ValueError as exc:
        raise CommandError(f"--older-than: {exc} (e.g. 30d, 12h)") from None
    if age.total_seconds() <= 0:
        raise CommandError(f"--older-than must be positive, got {older_than!r} (e.g. 30d)")
    for option in ("batch_size", "max_batches"):
        value = getattr(args, option)
        if value is not None and value < 1:
            flag = "--" + option.replace("_", "-")
            raise CommandError(f"{flag} must be positive, got {value}")
    statuses: list[str] | None = args.status
    try:
        return finished_statuses(statuses)
    except InvalidOption as exc:
        message = str(exc).removeprefix("statuses: ")
        raise CommandError(f"--status: {message}") from None


def _cmd_gc(session: Session) -> int:
    args = session.args
    statuses = _check(args)
    service = session.service(session.app(required=False))
    count = service.gc(
        args.older_than,
        statuses=statuses,
        batch_size=args.batch_size,
        max_batches=args.max_batches,
        dry_run=args.dry_run,
    )
    before = service.clock.now() - parse_duration(args.older_than)
    which = ", ".join(s.value for s in statuses)
    verb = "would delete" if args.dry_run else "deleted"
    noun = "run" if count == 1 else "runs"
    print(
        f"{verb} {count} finished {noun} ({which}) that ended before "
        f"{before.isoformat(timespec='seconds')}"
    )
    return EXIT_OK


def add_gc(command: AddCommand) -> None:
    """Add ``gc --older-than DURATION [--status S ...] [--dry-run]``."""
    gc = command(
        "gc",
        _cmd_gc,
        "delete finished runs (with their steps) that ended longer ago than --older-than; "
        "running and suspended runs are never touched",
    )
    gc.add_argument(
        "--older-than",
        required=True,
        metavar="DURATION",
        help="how long ago a run must have ended, e.g. 30d, 12h",
    )
    gc.add_argument(
        "--status",
        action="append",
        metavar="STATUS",
        help=f"only runs that ended so: {_FINISHED} (repeatable; default: all three)",
    )
    gc.add_argument(
        "--dry-run",
        action="store_true",
        help="delete nothing; print how many runs would be deleted",
    )
    gc.add_argument(
        "--batch-size",
        type=int,
        default=500,
        metavar="N",
        help="runs deleted per statement (default: 500)",
    )
    gc.add_argument(
        "--max-batches",
        type=int,
        metavar="N",
        help="stop after N batches (default: until none is left)",
    )

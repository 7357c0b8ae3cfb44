"""The history commands: ``export`` a run as a history, ``replay`` one against the code."""

from __future__ import annotations

import sys

from ..core import NonDeterminismError
from ._output import one_line, to_json
from ._session import EXIT_OK, EXIT_RUN_FAILED, AddCommand, Session, read_json_file


def _cmd_export(session: Session) -> int:
    service = session.service(session.app(required=False))
    print(to_json(service.export_run(session.args.run_id)))
    return EXIT_OK


def _cmd_replay(session: Session) -> int:
    from ..engine import replay_history

    history = read_json_file(session.args.history, "history")
    try:
        status = replay_history(session.app(), history)
    except NonDeterminismError as exc:
        print(f"diverged: {one_line(str(exc))}", file=sys.stderr)
        return EXIT_RUN_FAILED
    steps = len(history.get("steps", []))
    print(f"ok: the code replays all {steps} recorded steps ({status.value} at the end)")
    return EXIT_OK


def add_export(command: AddCommand) -> None:
    """Add ``export RUN_ID``."""
    export = command("export", _cmd_export, "print a run and its steps as a replayable history")
    export.add_argument("run_id", metavar="RUN_ID")


def add_replay(command: AddCommand) -> None:
    """Add ``replay FILE``."""
    replay = command(
        "replay",
        _cmd_replay,
        "replay an exported history against the app's code, running nothing (exit 1: diverged)",
    )
    replay.add_argument("history", metavar="FILE")

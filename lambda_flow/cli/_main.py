"""The ``lambda-flow`` command: start, inspect, resume and cancel runs, draw graphs, run the demo.

Every command takes the global options ``--app module:attribute`` (the application's
:class:`~lambda_flow.Flow`, default ``LAMBDA_FLOW_APP``), ``--database-url`` (default
``LAMBDA_FLOW_DATABASE_URL``, else an embedded Postgres) and ``--schema`` (default
``LAMBDA_FLOW_SCHEMA``, else ``workflows``), before or after the command name.

Exit codes: 0 done; 1 the run failed (``start``, ``demo``, ``resume``) or the database could not
be reached; 2 bad usage or input (one ``error: ...`` line on stderr, nothing written).

This module assembles the parser and runs a command; each command group lives in its own
module (``_runs``, ``_histories``, ``_graph``, ``_dev``, ``_demo``, ``_gc``...) over the
``_session``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

import psycopg

from ..core import DEFAULT_SCHEMA, ENV_APP, ENV_SCHEMA, Clock, LambdaFlowError
from ._callbacks import add_callback
from ._console import add_console
from ._db import add_db
from ._demo import add_demo
from ._dev import add_dev, add_invoke
from ._fork import add_fork
from ._gc import add_gc
from ._graph import add_graph
from ._histories import add_export, add_replay
from ._init import add_init
from ._mcp import add_mcp
from ._output import one_line
from ._runs import (
    add_cancel,
    add_history,
    add_resume,
    add_run,
    add_runs,
    add_start,
    add_status,
)
from ._session import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_RUN_FAILED,
    EXIT_USAGE,
    AddCommand,
    CommandError,
    Handler,
    Session,
)
from ._watch import add_watch

_COMMANDS: tuple[Callable[[AddCommand], None], ...] = (
    add_demo,
    add_init,
    add_start,
    add_run,
    add_watch,
    add_status,
    add_history,
    add_runs,
    add_resume,
    add_callback,
    add_graph,
    add_dev,
    add_console,
    add_invoke,
    add_mcp,
    add_export,
    add_replay,
    add_cancel,
    add_fork,
    add_gc,
    add_db,
)
"""Every command, in the order ``lambda-flow --help`` lists them."""


class _Parser(argparse.ArgumentParser):
    """An argument parser that reports a usage error as one line instead of exiting."""

    def error(self, message: str) -> NoReturn:
        raise CommandError(message)


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
    """The ``lambda-flow`` argument parser.

    Returns:
        The parser; a usage error raises :class:`CommandError` instead of exiting.
    """
    parser = _Parser(
        prog="lambda-flow",
        description="Start, inspect, resume and cancel lambda-flow workflow runs.",
    )
    _global_options(parser, nested=False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        _global_options(sub, nested=True)
        sub.set_defaults(handler=handler)
        return sub

    for add in _COMMANDS:
        add(command)
    return parser


def _error(message: str, exit_code: int) -> int:
    print(f"error: {one_line(message)}", file=sys.stderr)
    return exit_code


def main(argv: Sequence[str] | None = None, *, clock: Clock | None = None) -> int:
    """Run the ``lambda-flow`` command and return its exit code.

    Args:
        argv: the arguments after the program name; ``sys.argv[1:]`` when None.
        clock: the service's clock (tests pass a time-skipping one); wall-clock time when None.

    Returns:
        0 done; 1 the run failed or the database could not be reached; 2 bad usage or input.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except CommandError as exc:
        return _error(str(exc), EXIT_USAGE)
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else EXIT_OK
    session = Session(args, clock)
    try:
        handler: Handler = args.handler
        return handler(session)
    except (CommandError, LambdaFlowError) as exc:
        return _error(str(exc), EXIT_USAGE)
    except psycopg.Error as exc:  # includes the pool's timeout when the server is unreachable
        return _error(f"database: {one_line(str(exc))}", EXIT_RUN_FAILED)
    except KeyboardInterrupt:  # commands that wait on a run say more themselves
        return _error("interrupted", EXIT_INTERRUPTED)
    except BrokenPipeError:  # `lambda-flow runs | head`: the reader has gone, stop quietly
        _silence_stdout()
        return EXIT_OK
    finally:
        session.close()


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's final flush does not fail again."""
    try:
        fileno = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a file (a test's capture)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fileno)
    os.close(devnull)


if __name__ == "__main__":
    sys.exit(main())

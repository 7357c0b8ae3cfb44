"""``console``: the web console alone, on a loopback port, against the session's database."""

from __future__ import annotations

import importlib.util

from ._session import EXIT_OK, AddCommand, CommandError, Session


def _cmd_console(session: Session) -> int:
    if importlib.util.find_spec("jinja2") is None:
        raise CommandError(
            "lambda-flow console renders pages with Jinja2: pip install 'lambda-flow[local]'"
        )
    from ..local.console import log_to_console
    from ..local.web_console import BackgroundDriver, ConsoleServer
    from ._placement import QueuePlacement, choose_placement

    args = session.args
    placement = choose_placement(session)
    driver = placement.driver() if isinstance(placement, QueuePlacement) else BackgroundDriver()
    service = session.service(session.app(required=False), driver=driver)
    server = ConsoleServer(service, host=args.host, port=args.port, read_only=args.read_only)
    with log_to_console():
        server.serve_until_stopped()
    return EXIT_OK


def add_console(command: AddCommand) -> None:
    """Add ``console [--host HOST] [--port PORT] [--read-only]``."""
    console = command(
        "console",
        _cmd_console,
        "serve the web console (runs, timelines, actions, cost) on a loopback port, against "
        "the database (embedded by default)",
    )
    console.add_argument("--host", default="127.0.0.1", help="address to listen on")
    console.add_argument("--port", type=int, default=8001, help="port (0 picks a free one)")
    console.add_argument(
        "--read-only", action="store_true", help="show runs only: no action forms, none taken"
    )

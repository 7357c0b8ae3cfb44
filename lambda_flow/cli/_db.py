"""``lambda-flow db start|stop|status|url``: the embedded Postgres every command shares.

The first command that needs the database starts the embedded Postgres (in
``LAMBDA_FLOW_HOME``) and leaves it running, so later commands connect to it at once; ``db
stop`` stops it. With ``--database-url`` or ``LAMBDA_FLOW_DATABASE_URL`` there is no embedded
server: ``db url`` prints that URL and the other actions say so.
"""

from __future__ import annotations

from ..core import ENV_DATABASE_URL, setting
from ..store.embedded import default_data_dir, running_server, stop_embedded
from ._session import EXIT_OK, EXIT_RUN_FAILED, AddCommand, CommandError, Session


def _external_url(session: Session) -> str | None:
    return setting(session.args.database_url, ENV_DATABASE_URL)


def _cmd_db(session: Session) -> int:
    action: str = session.args.action
    external = _external_url(session)
    if action == "url":
        print(session.database_url())
        return EXIT_OK
    if external is not None:
        raise CommandError(
            f"db {action} manages the embedded Postgres; this command uses "
            f"--database-url / {ENV_DATABASE_URL} instead"
        )
    data_dir = default_data_dir()
    if action == "start":
        url = session.database_url()
        server = running_server(data_dir)
        print(f"running  pid {server.pid if server else '?'}  {url}")
        print(f"data     {data_dir}")
        return EXIT_OK
    if action == "stop":
        print("stopped" if stop_embedded(data_dir) else "not running")
        return EXIT_OK
    server = running_server(data_dir)
    if server is None:
        print(f"not running  (data in {data_dir})")
        return EXIT_RUN_FAILED
    print(f"running  pid {server.pid}  {server.url}")
    print(f"data     {data_dir}")
    return EXIT_OK


def add_db(command: AddCommand) -> None:
    """Add ``db start|stop|status|url``."""
    db = command(
        "db",
        _cmd_db,
        "start, stop or show the embedded Postgres that commands share (data in "
        "$LAMBDA_FLOW_HOME, else the platform's user data dir)",
    )
    db.add_argument(
        "action",
        choices=("start", "stop", "status", "url"),
        metavar="{start,stop,status,url}",
        help="start: start it (commands also do) and leave it running; stop: stop it; "
        "status: running or not (exit 1 when not); url: print the database URL",
    )

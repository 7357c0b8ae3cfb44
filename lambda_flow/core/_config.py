"""Configuration names in one place: explicit argument, then environment, then default."""

from __future__ import annotations

import os
from collections.abc import Mapping

ENV_APP = "LAMBDA_FLOW_APP"
"""``module:attribute`` of the application's :class:`~lambda_flow.Flow`."""
ENV_DATABASE_URL = "LAMBDA_FLOW_DATABASE_URL"
"""Postgres connection URL; without it the embedded Postgres is used."""
ENV_DATA_DIR = "LAMBDA_FLOW_DATA_DIR"
"""Folder of the embedded Postgres's data (default ``.lambda-flow/pgdata``)."""
ENV_SCHEMA = "LAMBDA_FLOW_SCHEMA"
"""Schema holding lambda-flow's tables (default ``workflows``)."""

DEFAULT_SCHEMA = "workflows"
DEFAULT_DATA_DIR = ".lambda-flow/pgdata"


def setting(
    explicit: str | None,
    name: str,
    default: str | None = None,
    env: Mapping[str, str] | None = None,
) -> str | None:
    """``explicit`` if given, else the environment variable ``name`` if set, else ``default``.

    Empty values count as not given.
    """
    if explicit:
        return explicit
    value = (os.environ if env is None else env).get(name)
    return value if value else default

"""Configuration names in one place: explicit argument, then environment, then default."""

from __future__ import annotations

import os
from collections.abc import Mapping

ENV_APP = "LAMBDA_FLOW_APP"
"""``module:attribute`` of the application's :class:`~lambda_flow.Flow`."""
ENV_DATABASE_URL = "LAMBDA_FLOW_DATABASE_URL"
"""Postgres connection URL; without it the embedded Postgres is used."""
ENV_HOME = "LAMBDA_FLOW_HOME"
"""lambda-flow's folder for this user (default: the platform's user data dir, e.g.
``~/.local/share/lambda-flow``): the embedded Postgres and ``lambda-flow dev``'s address."""
ENV_DATA_DIR = "LAMBDA_FLOW_DATA_DIR"
"""Folder of the embedded Postgres's data (default ``pgdata`` in ``LAMBDA_FLOW_HOME``)."""
ENV_SCHEMA = "LAMBDA_FLOW_SCHEMA"
"""Schema holding lambda-flow's tables (default ``workflows``)."""

DEFAULT_SCHEMA = "workflows"
DEFAULT_DATA_DIR = "pgdata"
"""The embedded Postgres's folder, inside ``LAMBDA_FLOW_HOME``."""


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

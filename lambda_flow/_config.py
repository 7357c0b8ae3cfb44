"""Configuration names in one place: explicit argument, then environment, then default."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._errors import ConfigurationError

if TYPE_CHECKING:
    from ._flow import Flow

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
    """``explicit`` if given, else the environment variable ``name`` if set and non-empty, else
    ``default``."""
    if explicit:
        return explicit
    value = (os.environ if env is None else env).get(name)
    return value if value else default


def resolve_database_url(
    explicit: str | None = None, *, env: Mapping[str, str] | None = None
) -> str:
    """The database to use: the argument, ``LAMBDA_FLOW_DATABASE_URL``, or an embedded Postgres
    started on demand in ``LAMBDA_FLOW_DATA_DIR``."""
    url = setting(explicit, ENV_DATABASE_URL, env=env)
    if url:
        return url
    from .local.embedded import embedded_database_url

    return embedded_database_url(setting(None, ENV_DATA_DIR, env=env) or DEFAULT_DATA_DIR)


def import_flow(spec: str, *, option: str = ENV_APP) -> Flow:
    """Import the :class:`Flow` named by ``module:attribute`` (the attribute may be dotted),
    looking in the current folder first, as ``python -m`` and uvicorn do.

    Args:
        option: where the spec came from (``--app`` or ``LAMBDA_FLOW_APP``), for messages.

    Raises:
        ConfigurationError: the spec is malformed, the import fails or the object is not a Flow.
    """
    from ._flow import Flow

    prefix = "" if option.startswith("-") else f"{option}: "
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise ConfigurationError(f"{option} must look like 'module:attribute', got {spec!r}")
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(
            f"{prefix}cannot import app module {module_name!r}: {exc}"
        ) from None
    found: Any = module
    for part in attribute.split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            raise ConfigurationError(
                f"{prefix}app module {module_name!r} has no attribute {attribute!r}"
            ) from None
    if not isinstance(found, Flow):
        raise ConfigurationError(
            f"{option} {spec!r} is a {type(found).__name__}, not a lambda_flow.Flow"
        )
    return found

"""The one app loader: the application's :class:`Flow` from a ``module:attribute`` spec.

For the CLI, the dev runtime and the Lambda handlers alike; the spec comes from ``--app`` or
``LAMBDA_FLOW_APP``.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

from ..core import ENV_APP, ConfigurationError
from ._flow import Flow


def load_flow(spec: str, *, option: str = ENV_APP) -> Flow:
    """Import the :class:`Flow` named by a ``module:attribute`` spec.

    The current folder is searched first, as ``python -m`` and uvicorn do.

    Args:
        spec: ``module:attribute``; the attribute may be dotted.
        option: where the spec came from (``--app`` or ``LAMBDA_FLOW_APP``), for messages.

    Raises:
        ConfigurationError: the spec is malformed, the import fails or the object is not a Flow.
    """
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

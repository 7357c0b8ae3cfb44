"""Lambda entry point of the workflow HTTP API (API Gateway HTTP API, payload format 2.0).

Settings come from the environment (see ``lambda_flow.aws.config``): ``LAMBDA_FLOW_APP``, the
database, optionally the queues (remote mode; without them runs go inline, in this function).
``LAMBDA_FLOW_ALLOW_ANONYMOUS=true`` serves callers API Gateway did not authenticate, for local
use; by default every route but ``/openapi.json`` needs an IAM or JWT caller.
``LAMBDA_FLOW_MCP_ENABLED=true`` adds the MCP route ``POST /mcp`` (its SDK is imported by the
first request to it, so the cold start is the same either way).
``LAMBDA_FLOW_CONSOLE_ENABLED=false`` leaves out the web console under ``/console`` (served by
default; ``lambda_flow.console`` and Jinja2 are imported by its first request).

In Lambda the runtime and the resolver are built at import, so a bad setting fails the cold
start with a message naming the variable. Elsewhere (tests, tools importing this module) they
are built on the first call, and rebuilt whenever the settings change.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from ..aws.api import build_api
from ..aws.config import ENV_ALLOW_ANONYMOUS
from ..aws.runtime import Runtime, get_runtime
from ..aws.tracing import make_tracer
from . import cold_start_done

__all__ = ["ENV_ALLOW_ANONYMOUS", "get_app", "handler"]  # the switch used to be defined here

SERVICE_NAME = os.environ.get("POWERTOOLS_SERVICE_NAME") or "lambda-flow-api"
logger = Logger(service=SERVICE_NAME)
tracer = make_tracer(SERVICE_NAME)


@dataclass(slots=True)
class _BuiltApi:
    runtime: Runtime | None = None
    app: APIGatewayHttpResolver | None = None


_built = _BuiltApi()


def get_app() -> APIGatewayHttpResolver:
    """The resolver for the process's runtime (cached; rebuilt when the settings change).

    ``allow_anonymous`` is one of the settings, so a change to it gives a new runtime too.

    Raises:
        ConfigurationError: a setting is missing or malformed (named in the message).
    """
    runtime = get_runtime(require_queues=False)
    if _built.app is None or _built.runtime is not runtime:
        anonymous = runtime.settings.allow_anonymous
        _built.app = build_api(
            runtime.service,
            runtime.flow,
            max_body_bytes=runtime.settings.max_body_bytes,
            allow_anonymous=anonymous,
            logger=logger,
            mcp=runtime.settings.mcp_enabled,
            console=runtime.settings.console_enabled,
        )
        _built.runtime = runtime
        logger.info(
            "api ready",
            extra={"mode": "inline" if runtime.queue is None else "remote", "anonymous": anonymous},
        )
    return _built.app


if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):  # a cold start in Lambda: fail early and loudly
    get_app()


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler(capture_response=False)  # bodies may hold personal data
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Answer one HTTP API request."""
    return get_app().resolve(event, context)


cold_start_done()  # the collector back on (lambda_flow.handlers)

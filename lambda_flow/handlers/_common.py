"""Module-level setup shared by the queue and schedule entry points.

Powertools utilities and the process's runtime, built at cold start so bad configuration fails
before any event.
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers

from ..aws.observability import NAMESPACE, PowertoolsObserver
from ..aws.runtime import Runtime, get_runtime
from ..aws.tracing import LambdaTracer, make_tracer


def setup(function: str) -> tuple[Logger, LambdaTracer, Metrics, Runtime]:
    """Logger, tracer, metrics and runtime for the function called ``function``."""
    service = os.environ.get("POWERTOOLS_SERVICE_NAME", f"lambda-flow-{function}")
    logger = Logger(service=service)
    copy_config_to_registered_loggers(source_logger=logger, include={"lambda_flow"})
    tracer = make_tracer(service)
    metrics = Metrics(namespace=NAMESPACE, service=service)
    runtime = get_runtime(observer=PowertoolsObserver(logger, tracer, metrics))
    return logger, tracer, metrics, runtime

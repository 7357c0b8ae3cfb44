"""A powertools ``Tracer`` when tracing is on, and a stand-in that imports nothing when it is off.

Building powertools' ``Tracer`` imports the X-Ray SDK even with ``POWERTOOLS_TRACE_DISABLED``,
and the SDK builds two botocore clients for its sampler at import: about 170 ms of every cold
start (measured with the runtime dependencies only). With tracing off, that is pure waste.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol, TypeVar, cast, overload

_OFF = {"1", "true", "yes", "on"}

H = TypeVar("H", bound=Callable[..., Any])


class LambdaTracer(Protocol):
    """What lambda-flow uses of a tracer: powertools' ``Tracer`` or :class:`NoTracer`."""

    provider: Any

    @overload
    def capture_lambda_handler(self, lambda_handler: H) -> H: ...
    @overload
    def capture_lambda_handler(
        self, lambda_handler: None = None, *, capture_response: bool = True
    ) -> Callable[[H], H]: ...
    def capture_lambda_handler(self, lambda_handler: Any = None, **options: Any) -> Any:
        """Wrap a Lambda handler in a traced segment."""
        ...

    def put_annotation(self, key: str, value: Any) -> None:
        """Annotate the current segment."""
        ...


def tracing_enabled(env: Mapping[str, str] | None = None) -> bool:
    """False when ``POWERTOOLS_TRACE_DISABLED`` says so (powertools' own switch)."""
    value = (os.environ if env is None else env).get("POWERTOOLS_TRACE_DISABLED", "")
    return value.strip().lower() not in _OFF


class _NoSegment:
    """A segment that records nothing."""

    def put_annotation(self, key: str, value: Any) -> None:
        """Nothing to annotate with tracing off."""

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None:
        """Nothing to record with tracing off."""


class _NoProvider:
    """A provider whose subsegments record nothing."""

    @contextlib.contextmanager
    def in_subsegment(self, name: str, **kwargs: Any) -> Iterator[_NoSegment]:
        yield _NoSegment()


class NoTracer:
    """The parts of powertools' ``Tracer`` lambda-flow uses, doing nothing."""

    provider = _NoProvider()

    def capture_lambda_handler(self, lambda_handler: Any = None, **kwargs: Any) -> Any:
        """Return the handler as it is."""
        if lambda_handler is None:
            return lambda handler: handler
        return lambda_handler

    def capture_method(self, method: Any = None, **kwargs: Any) -> Any:
        """Return the method as it is."""
        if method is None:
            return lambda function: function
        return method

    def put_annotation(self, key: str, value: Any) -> None:
        """Nothing to annotate with tracing off."""

    def put_metadata(self, key: str, value: Any, namespace: str | None = None) -> None:
        """Nothing to record with tracing off."""


def make_tracer(service: str, **options: Any) -> LambdaTracer:
    """A powertools ``Tracer`` (patching only botocore) when tracing is on, else a no-op.

    Returns:
        The tracer, or a :class:`NoTracer` when ``POWERTOOLS_TRACE_DISABLED`` is set.
    """
    if not tracing_enabled():
        return NoTracer()
    from aws_lambda_powertools import Tracer

    # Only the AWS SDK is worth patching (psycopg has no X-Ray patcher); patching every
    # supported library imports each one that happens to be installed.
    options.setdefault("patch_modules", ("botocore",))
    return cast(LambdaTracer, Tracer(service=service, **options))

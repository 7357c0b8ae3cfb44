"""Validation and JSON encoding of inputs and results, driven by type annotations."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any

from pydantic import TypeAdapter, ValidationError

from ._errors import InvalidInput

_ANY_ADAPTER: TypeAdapter[Any] = TypeAdapter(Any)


class Codec:
    """Validates values against one annotation and converts them to and from JSON-safe data.

    Values always travel through JSON, even on a step's first execution, so a workflow sees the
    same value the first time and on every replay.
    """

    __slots__ = ("_adapter", "annotation", "is_any")

    def __init__(self, annotation: Any = Any) -> None:
        self.annotation = annotation
        self.is_any = annotation is Any or annotation is inspect.Parameter.empty
        self._adapter: TypeAdapter[Any] = _ANY_ADAPTER if self.is_any else TypeAdapter(annotation)

    def validate(self, value: Any, target: str) -> Any:
        """Check ``value`` against the annotation and return the typed value.

        Raises:
            InvalidInput: naming ``target`` and every field that failed.
        """
        if self.is_any:
            return value
        try:
            return self._adapter.validate_python(value)
        except ValidationError as exc:
            raise InvalidInput(target, _json_safe_errors(exc)) from None

    def dump(self, value: Any) -> Any:
        """JSON-safe data for ``value`` (models become dicts, datetimes ISO strings)."""
        return self._adapter.dump_python(value, mode="json")

    def load(self, data: Any) -> Any:
        """The typed value for stored JSON data."""
        if self.is_any:
            return data
        return self._adapter.validate_python(data)


ANY_CODEC = Codec()


def _json_safe_errors(exc: ValidationError) -> list[dict[str, Any]]:
    return [
        {"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]}
        for e in exc.errors(include_url=False, include_context=False, include_input=False)
    ]


def resolve_hints(fn: Callable[..., Any]) -> dict[str, Any]:
    """Type hints of ``fn`` with string annotations resolved where possible."""
    try:
        return typing.get_type_hints(fn)
    except (NameError, TypeError):
        # Annotations naming something not importable from the function's module (a class
        # defined inside a test, say): fall back to the raw ones, strings become Any.
        raw = getattr(fn, "__annotations__", {})
        return {k: (Any if isinstance(v, str) else v) for k, v in raw.items()}


def codec_for(hints: dict[str, Any], name: str) -> Codec:
    """A codec for the hint called ``name`` (``'return'`` for the result), Any when absent."""
    hint = hints.get(name, Any)
    if hint is None or hint is type(None):
        return Codec(type(None))
    return ANY_CODEC if hint is Any else Codec(hint)

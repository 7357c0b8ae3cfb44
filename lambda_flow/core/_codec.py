"""Validation and JSON encoding of inputs and results, driven by type annotations."""

from __future__ import annotations

import inspect
import json
import math
import typing
from collections.abc import Callable, Hashable, Mapping
from typing import Any, Literal, TypeVar

from pydantic import TypeAdapter, ValidationError

from ._errors import InputTooLarge, InvalidInput, UnstorableInput

__all__ = [
    "ANY_CODEC",
    "MAX_INPUT_BYTES",
    "Codec",
    "SchemaMode",
    "check_input",
    "check_storable",
    "codec_for",
    "json_schemas",
    "json_size",
    "resolve_hints",
]

_ANY_ADAPTER: TypeAdapter[Any] = TypeAdapter(Any)

MAX_INPUT_BYTES = 256 * 1024
"""The largest workflow input, in bytes of compact UTF-8 JSON, in every entry point.

``WorkflowService`` (and so the CLI and the HTTP API) refuses a larger input with
:class:`InputTooLarge` (HTTP 413) before anything is written. 256 KiB keeps a run's row, its
``GET /runs/{id}`` answer and the ``/run`` answer far below Lambda's 6 MB response limit.
"""

SchemaMode = Literal["validation", "serialization"]
"""``validation``: what a caller may send; ``serialization``: what comes back."""

K = TypeVar("K", bound=Hashable)


class RawJson:
    """A JSON document already serialized (UTF-8 bytes): a step result on its way to the store.

    A step worker serializes its function's result once, straight to bytes, stores those bytes
    as they are, and the pass that follows decodes them once into the workflow's typed value:
    no JSON-safe copy of the result in between (issue 14's memory bound).
    """

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __repr__(self) -> str:
        return f"RawJson({len(self.data)} bytes)"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RawJson) and other.data == self.data

    __hash__ = None  # type: ignore[assignment]

    def loads(self) -> Any:
        """The document as plain JSON data."""
        return json.loads(self.data)


def plain(value: Any) -> Any:
    """``value`` as plain JSON data (a :class:`RawJson` decoded, anything else as it is)."""
    return value.loads() if isinstance(value, RawJson) else value


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

    def dump_json(self, value: Any) -> RawJson:
        """``value`` serialized once, straight to JSON bytes (as :meth:`dump` then JSON)."""
        return RawJson(self._adapter.dump_json(value))

    def load(self, data: Any) -> Any:
        """The typed value for stored JSON data (or for a :class:`RawJson` document)."""
        if isinstance(data, RawJson):
            return data.loads() if self.is_any else self._adapter.validate_json(data.data)
        if self.is_any:
            return data
        return self._adapter.validate_python(data)

    def json_schema(self, mode: SchemaMode = "validation") -> dict[str, Any]:
        """The annotation's JSON Schema, self-contained (``$defs`` inline); ``{}`` for Any.

        Raises:
            pydantic.errors.PydanticUserError: the annotation has no JSON Schema (e.g. a
                callable); callers describing an API fall back to ``{}``.
        """
        return self._adapter.json_schema(mode=mode)


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


def json_schemas(
    codecs: Mapping[K, tuple[Codec, SchemaMode]], ref_template: str
) -> tuple[dict[K, dict[str, Any]], dict[str, dict[str, Any]]]:
    """JSON Schemas of several codecs sharing one set of definitions (for an OpenAPI document).

    Models with the same name in different modules get distinct definition names.

    Args:
        codecs: a codec and schema mode per key.
        ref_template: where the definitions will live, e.g. ``#/components/schemas/{model}``.

    Returns:
        The schema per key, and the definitions their ``$ref``s point to.

    Raises:
        pydantic.errors.PydanticUserError: one of the annotations has no JSON Schema.
    """
    keys = list(codecs)
    inputs = [(key, mode, codec._adapter) for key, (codec, mode) in codecs.items()]
    by_key, defs = TypeAdapter.json_schemas(inputs, ref_template=ref_template)
    definitions = dict(defs.get("$defs", {}))
    return {key: dict(by_key[(key, codecs[key][1])]) for key in keys}, definitions


# -- what the database can store ------------------------------------------------------------
_Path = tuple[str | int, ...]


def _text_problem(text: str) -> str | None:
    if "\x00" in text:
        return "contains a NUL character (\\u0000), which the database cannot store"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a lone surrogate (\\ud800-\\udfff), which is not valid Unicode text"
    return None


def _problems(value: Any) -> list[tuple[_Path, str]]:
    """Every place in ``value`` the database would refuse, with why (walked without recursion)."""
    found: list[tuple[_Path, str]] = []
    pending: list[tuple[_Path, Any]] = [((), value)]
    while pending:
        path, item = pending.pop()
        if isinstance(item, str):
            problem = _text_problem(item)
            if problem:
                found.append((path, f"text {problem}"))
        elif isinstance(item, float) and not math.isfinite(item):
            found.append((path, f"{item} is not a JSON number"))
        elif isinstance(item, Mapping):
            for key, child in item.items():
                problem = _text_problem(key) if isinstance(key, str) else None
                if problem:
                    found.append(((*path, key), f"key {problem}"))
                pending.append(((*path, key), child))
        elif isinstance(item, list | tuple):
            pending.extend(((*path, i), child) for i, child in enumerate(item))
    return sorted(found, key=lambda f: [str(p) for p in f[0]])


def check_storable(value: Any, target: str) -> None:
    r"""Refuse JSON data the database cannot store, naming where it is.

    Postgres' JSON types refuse ``\u0000`` in text, UTF-8 cannot hold a lone surrogate, and
    JSON has no NaN or infinity. This is the one check every entry point's input goes through
    (``WorkflowService`` for the Python API, the CLI and the HTTP API).

    Args:
        value: JSON-safe data (dicts, lists, strings, numbers, booleans, None).
        target: what the data is for, e.g. ``workflow 'onboard_user'``.

    Raises:
        UnstorableInput: with a ``loc`` (the path of keys and indexes) per problem found.
    """
    problems = _problems(value)
    if problems:
        raise UnstorableInput(
            target,
            [
                {"loc": [_printable(p) for p in loc], "msg": msg, "type": "unstorable_value"}
                for loc, msg in problems
            ],
        )


def _printable(part: str | int) -> str | int:
    """A ``loc`` part that can be printed and sent: a bad key with its characters escaped."""
    if isinstance(part, int) or _text_problem(part) is None:
        return part
    return json.dumps(part)[1:-1]


def json_size(value: Any) -> int:
    """Bytes of ``value`` as compact UTF-8 JSON: the measure of :data:`MAX_INPUT_BYTES`."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=True)
    return len(text.encode("utf-8", "surrogatepass"))


def check_input(value: Any, target: str, *, max_bytes: int = MAX_INPUT_BYTES) -> None:
    """Refuse a stored input the database cannot store or that is over the size limit.

    Args:
        value: the validated input in its JSON-safe stored form.
        target: what the input is for, e.g. ``workflow 'onboard_user'``.
        max_bytes: the most bytes of compact JSON accepted.

    Raises:
        UnstorableInput: text the database cannot store (see :func:`check_storable`).
        InputTooLarge: more than ``max_bytes`` bytes of JSON.
    """
    check_storable(value, target)
    size = json_size(value)
    if size > max_bytes:
        raise InputTooLarge(target, size, max_bytes)

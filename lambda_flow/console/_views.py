"""What the pages show, computed from the service's records: JSON blocks, forms, times."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Any

from pydantic.errors import PydanticUserError

from ..core import Codec, InvalidInput
from ._http import ConsoleError

__all__ = ["FormField", "JsonBlock", "form_fields", "input_from_form", "json_block", "when"]

MAX_SHOWN_CHARS = 4000
"""A JSON value longer than this (pretty-printed) is cut, with a link to the whole of it."""


@dataclass(frozen=True, slots=True)
class JsonBlock:
    """A value pretty-printed for a ``<pre>``, cut when long."""

    text: str
    truncated: bool
    size: int
    """The whole text's length in characters."""
    empty: bool


def pretty(value: Any) -> str:
    """``value`` as indented JSON (non-ASCII kept as it is)."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def json_block(value: Any, limit: int = MAX_SHOWN_CHARS) -> JsonBlock:
    """A :class:`JsonBlock` of ``value``."""
    text = pretty(value)
    if len(text) <= limit:
        return JsonBlock(text, False, len(text), value is None)
    return JsonBlock(text[:limit], True, len(text), False)


def when(moment: datetime | None) -> str:
    """A time as the pages print it, in UTC to the millisecond."""
    if moment is None:
        return ""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"


def parse_when(text: str, name: str) -> datetime | None:
    """A time from a ``datetime-local`` input or ISO 8601 text (UTC when it names no zone).

    Raises:
        ConsoleError: 422 naming the field.
    """
    text = text.strip()
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ConsoleError(
            HTTPStatus.UNPROCESSABLE_ENTITY,
            "Invalid filter",
            f"{name} must be a date and time such as 2026-01-31T13:45, got {text!r}",
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def elapsed(start: datetime, end: datetime) -> timedelta:
    """``end - start``, never negative."""
    return max(end - start, timedelta(0))


# -- a start form built from a workflow's input schema ---------------------------------------
@dataclass(frozen=True, slots=True)
class FormField:
    """One input of a start form."""

    name: str
    kind: str
    """``text``, ``number``, ``integer``, ``checkbox``, ``select`` or ``json`` (a textarea)."""
    required: bool
    description: str = ""
    choices: tuple[str, ...] = ()
    default: str = ""


def input_schema(codec: Codec) -> dict[str, Any]:
    """The codec's JSON Schema (``{}``: any JSON, or no schema can be made)."""
    if codec.is_any:
        return {}
    try:
        return codec.json_schema("validation")
    except PydanticUserError:
        return {}


def _field_kind(schema: Mapping[str, Any]) -> tuple[str, tuple[str, ...]]:
    if "enum" in schema and all(isinstance(v, str) for v in schema["enum"]):
        return "select", tuple(schema["enum"])
    kind = schema.get("type")
    if kind == "string":
        return "text", ()
    if kind == "integer":
        return "integer", ()
    if kind == "number":
        return "number", ()
    if kind == "boolean":
        return "checkbox", ()
    return "json", ()


def form_fields(schema: Mapping[str, Any]) -> list[FormField]:
    """One field per top-level property of an object schema; none for any other schema.

    Nested objects, lists, unions and references get a JSON textarea each.
    """
    properties = schema.get("properties")
    if schema.get("type") != "object" or not isinstance(properties, Mapping):
        return []
    required = set(schema.get("required", ()))
    fields: list[FormField] = []
    for name, given in properties.items():
        prop: Mapping[str, Any] = given if isinstance(given, Mapping) else {}
        kind, choices = _field_kind(prop)
        default = prop.get("default")
        shown = (
            default if isinstance(default, str) else ("" if default is None else pretty(default))
        )
        fields.append(
            FormField(
                name=str(name),
                kind=kind,
                required=name in required,
                description=str(prop.get("description") or prop.get("title") or ""),
                choices=choices,
                default=shown,
            )
        )
    return fields


def _problem(loc: list[str], message: str) -> InvalidInput:
    return InvalidInput("the form", [{"loc": loc, "msg": message}])


def parse_json_text(text: str, loc: list[str]) -> Any:
    """JSON typed into a textarea (empty: None).

    Raises:
        InvalidInput: naming ``loc`` when it is not JSON.
    """
    if not text.strip():
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise _problem(loc, f"not valid JSON: {exc.msg} (line {exc.lineno})") from None
    except RecursionError:
        raise _problem(loc, "not valid JSON: nested too deeply") from None


def _field_value(field: FormField, text: str) -> Any:
    if field.kind == "integer":
        try:
            return int(text)
        except ValueError:
            raise _problem([field.name], "must be a whole number") from None
    if field.kind == "number":
        try:
            return float(text)
        except ValueError:
            raise _problem([field.name], "must be a number") from None
    if field.kind == "json":
        return parse_json_text(text, [field.name])
    return text


def input_from_form(fields: list[FormField], form: Mapping[str, str]) -> Any:
    """The workflow input a start form describes.

    A non-empty ``input_json`` textarea wins; else each field's value (an empty optional field
    is left out; a checkbox is ``true`` when ticked).

    Raises:
        InvalidInput: a field that is not a number, or JSON that does not parse.
    """
    raw = form.get("input_json", "")
    if raw.strip() or not fields:
        return parse_json_text(raw, ["input_json"])
    data: dict[str, Any] = {}
    for field in fields:
        if field.kind == "checkbox":
            data[field.name] = form.get(f"field.{field.name}") == "on"
            continue
        text = form.get(f"field.{field.name}", "")
        if not text.strip() and not field.required:
            continue
        data[field.name] = _field_value(field, text)
    return data

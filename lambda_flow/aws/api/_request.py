"""The request side: who the caller is, and the JSON body read with its size checked first."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from ...core import Caller, LambdaFlowError

__all__ = ["HttpError", "caller_from_event", "read_json_body"]

_IAM_FIELDS = ("accountId", "callerId", "principalOrgId", "userArn", "userId")
"""IAM identity fields copied into ``Caller.claims`` (the access key id is left out)."""


class HttpError(LambdaFlowError):
    """An error answer decided by the API itself (401, 403, 400, 413, ...)."""

    def __init__(
        self,
        status: HTTPStatus,
        type: str,
        message: str,
        details: Sequence[Mapping[str, Any]] = (),
    ) -> None:
        super().__init__(message)
        self.status = status
        self.type = type
        self.message = message
        self.details = [dict(d) for d in details]


def _field_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """``loc``/``msg``/``type`` of each error, without the offending input echoed back."""
    return [
        {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type"))}
        for e in errors
        if isinstance(e, Mapping)
    ]


def caller_from_event(event: Mapping[str, Any]) -> Caller:
    """The caller API Gateway authenticated, from a payload v2 ``requestContext.authorizer``.

    ``jwt`` gives kind ``jwt`` (principal: the ``sub`` claim), ``iam`` gives kind ``iam``
    (principal: ``userArn``, else ``callerId``), ``lambda`` gives kind ``lambda`` (principal:
    ``principalId`` or ``sub`` of its context, if any); anything else is anonymous.
    """
    context = event.get("requestContext")
    authorizer = context.get("authorizer") if isinstance(context, Mapping) else None
    if not isinstance(authorizer, Mapping):
        return Caller(kind="anonymous")
    jwt = authorizer.get("jwt")
    if isinstance(jwt, Mapping) and isinstance(jwt.get("claims"), Mapping):
        claims = dict(jwt["claims"])
        return Caller(kind="jwt", principal=_text(claims.get("sub")), claims=claims)
    iam = authorizer.get("iam")
    if isinstance(iam, Mapping):
        principal = _text(iam.get("userArn")) or _text(iam.get("callerId"))
        identity = {key: iam[key] for key in _IAM_FIELDS if iam.get(key)}
        return Caller(kind="iam", principal=principal, claims=identity)
    if "lambda" in authorizer:
        lam = authorizer.get("lambda")
        found = dict(lam) if isinstance(lam, Mapping) else {}
        principal = _text(found.get("principalId")) or _text(found.get("sub"))
        return Caller(kind="lambda", principal=principal, claims=found)
    return Caller(kind="anonymous")


def _text(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def _bad_body(message: str, type: str = "InvalidJson") -> HttpError:
    return HttpError(
        HTTPStatus.BAD_REQUEST, type, message, [{"loc": ["body"], "msg": message, "type": type}]
    )


def _too_large(max_body_bytes: int) -> HttpError:
    message = f"the request body is larger than {max_body_bytes} bytes"
    detail = {
        "loc": ["body"],
        "msg": message,
        "type": "payload_too_large",
        "ctx": {"limit": max_body_bytes},
    }
    return HttpError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "PayloadTooLarge", message, [detail])


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _body_bytes(event: Mapping[str, Any], max_body_bytes: int) -> bytes:
    """The raw body, refused with 413 by its length before anything big is decoded."""
    raw = event.get("body")
    if raw is None:
        return b""
    if not isinstance(raw, str):
        raise _bad_body("the request body is not text", "InvalidBody")
    if event.get("isBase64Encoded"):
        if len(raw) > 4 * -(-max_body_bytes // 3):  # base64 takes 4 characters per 3 bytes
            raise _too_large(max_body_bytes)
        try:
            data = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise _bad_body("the request body is not valid base64", "InvalidBody") from None
    else:
        if len(raw) > max_body_bytes:  # every character takes at least one byte
            raise _too_large(max_body_bytes)
        try:
            data = raw.encode("utf-8")
        except UnicodeEncodeError:
            raise _bad_body("the request body is not valid UTF-8", "InvalidBody") from None
    if len(data) > max_body_bytes:
        raise _too_large(max_body_bytes)
    return data


def read_json_body(event: Mapping[str, Any], max_body_bytes: int) -> Any:
    """The request's JSON body (None when there is none), its size checked before decoding.

    Raises:
        HttpError: 413 when the body (decoded from base64, if it is) is over ``max_body_bytes``;
            400 when it is not base64, UTF-8 or JSON. Text the database cannot store is
            refused where every input is, by ``WorkflowService`` (``UnstorableInput``, 400).
    """
    try:
        text = _body_bytes(event, max_body_bytes).decode("utf-8")
    except UnicodeDecodeError:
        raise _bad_body("the request body is not valid UTF-8", "InvalidBody") from None
    if not text.strip():
        return None
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise _bad_body(
            f"the request body is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    except RecursionError:
        raise _bad_body("the request body is not valid JSON: nested too deeply") from None
    except ValueError as exc:  # NaN/Infinity, or an integer with too many digits
        raise _bad_body(f"the request body is not valid JSON: {exc}") from None
    return value

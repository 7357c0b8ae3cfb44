"""The console's request and response, its security headers and its CSRF check.

The console knows nothing of API Gateway or Powertools: the API's resolver (``aws/api``) turns
its event into a :class:`ConsoleRequest` and the :class:`ConsoleResponse` back into a
Powertools ``Response``; ``lambda-flow console`` and the tests do the same.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import parse_qsl, urlsplit

from ..core import Caller

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "CSRF_COOKIE",
    "ConsoleError",
    "ConsoleRequest",
    "ConsoleResponse",
    "SetCookie",
]

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
"""Every console answer's policy: its own script and stylesheet only, no inline code."""

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}

CSRF_COOKIE = "lf_console_csrf"
"""The double-submit cookie: each form carries its value in the ``csrf`` field."""
CSRF_FIELD = "csrf"


class ConsoleError(Exception):
    """An error page decided by the console (401, 403, 404, 400, 413, 422...)."""

    def __init__(self, status: HTTPStatus, title: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.message = message


@dataclass(frozen=True, slots=True)
class ConsoleRequest:
    """One HTTP request to the console."""

    method: str
    path: str
    """The path, starting with ``/console``."""
    caller: Caller
    """Who API Gateway (or ``lambda-flow dev``/``console``) says is calling."""
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    """Header names in lower case."""
    cookies: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""

    def form(self, max_bytes: int) -> dict[str, str]:
        """The ``application/x-www-form-urlencoded`` body as a dict (last value wins).

        Raises:
            ConsoleError: 413 over ``max_bytes``, 400 when it is not UTF-8.
        """
        if len(self.body) > max_bytes:
            raise ConsoleError(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                "Too large",
                f"the form is larger than {max_bytes} bytes",
            )
        try:
            text = self.body.decode("utf-8")
        except UnicodeDecodeError:
            raise ConsoleError(
                HTTPStatus.BAD_REQUEST, "Bad request", "the form is not UTF-8"
            ) from None
        return dict(parse_qsl(text, keep_blank_values=True))


@dataclass(frozen=True, slots=True)
class SetCookie:
    """A cookie the answer sets (the CSRF cookie: ``HttpOnly``, ``SameSite=Strict``)."""

    name: str
    value: str
    path: str = "/console"
    secure: bool = False

    def header(self) -> str:
        """The ``Set-Cookie`` header's value."""
        secure = "; Secure" if self.secure else ""
        return f"{self.name}={self.value}; Path={self.path}; HttpOnly; SameSite=Strict{secure}"


@dataclass(slots=True)
class ConsoleResponse:
    """An answer: its status, body, type, headers and cookies."""

    status: int
    body: str | bytes
    content_type: str = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    cookies: list[SetCookie] = field(default_factory=list)


def parse_cookies(header_values: list[str]) -> dict[str, str]:
    """``name=value`` pairs from ``Cookie`` headers (or API Gateway's ``cookies`` list)."""
    found: dict[str, str] = {}
    for value in header_values:
        for part in value.split(";"):
            name, sep, text = part.strip().partition("=")
            if sep and name and name not in found:
                found[name] = text
    return found


def csrf_token(request: ConsoleRequest) -> tuple[str, SetCookie | None]:
    """The request's CSRF token, and the cookie to set when it has to be issued."""
    token = request.cookies.get(CSRF_COOKIE, "")
    if len(token) >= 32 and token.replace("-", "").replace("_", "").isalnum():
        return token, None
    token = secrets.token_urlsafe(32)
    secure = request.headers.get("x-forwarded-proto") == "https"
    return token, SetCookie(CSRF_COOKIE, token, secure=secure)


def check_same_origin(request: ConsoleRequest, form: Mapping[str, str]) -> None:
    """Refuse a state-changing request that did not come from a console page of this origin.

    Browsers send ``Sec-Fetch-Site`` (must be ``same-origin``) and ``Origin`` (must name this
    host); the form must also carry the ``csrf`` field equal to the ``SameSite=Strict`` cookie
    (a double submit: another site can neither read the cookie nor make the browser send it).

    Raises:
        ConsoleError: 403 naming which check failed.
    """
    site = request.headers.get("sec-fetch-site")
    if site is not None and site != "same-origin":
        raise _forbidden(f"the request came from another site (Sec-Fetch-Site: {site})")
    origin = request.headers.get("origin")
    host = request.headers.get("host")
    if origin is not None and origin != "null" and host is not None:
        if urlsplit(origin).netloc.lower() != host.lower():
            raise _forbidden("the request came from another origin")
    elif origin == "null":
        raise _forbidden("the request came from an opaque origin")
    cookie = request.cookies.get(CSRF_COOKIE, "")
    given = form.get(CSRF_FIELD, "")
    if not cookie or not given or not hmac.compare_digest(cookie, given):
        raise _forbidden(
            "the form's token does not match this browser's console cookie: reload the page "
            "and send the form again"
        )


def _forbidden(why: str) -> ConsoleError:
    return ConsoleError(HTTPStatus.FORBIDDEN, "Forbidden", f"CSRF check failed: {why}")

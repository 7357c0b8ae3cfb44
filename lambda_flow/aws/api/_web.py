"""The console's routes on the API's resolver: ``/console`` and the pages below it.

The handlers import ``lambda_flow.console`` (and Jinja2) on the first console request only, so
the Api function's cold start does not change. Each request is handed to the console as a
:class:`~lambda_flow.console.ConsoleRequest` with the caller API Gateway established; the
console answers HTML with its own status, headers and cookies. None of these routes is in the
OpenAPI document.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.event_handler import Response

from ._request import HttpError, _body_bytes, caller_from_event

if TYPE_CHECKING:
    from ...console import Console, ConsoleResponse
    from ._routes import _WorkflowRoutes

__all__ = ["CONSOLE_RULES", "add_console_routes"]

CONSOLE_RULES: tuple[tuple[str, str], ...] = (
    ("GET", "/console"),
    ("GET", "/console/<p1>"),
    ("GET", "/console/<p1>/<p2>"),
    ("GET", "/console/<p1>/<p2>/<p3>"),
    ("POST", "/console/<p1>/<p2>/<p3>"),
)
"""Every console path has at most three parts below ``/console``; the console routes them."""


class _ConsoleRoutes:
    """Builds the console on first use and hands it each request."""

    def __init__(self, routes: _WorkflowRoutes) -> None:
        self.routes = routes
        self._console: Console | None = None

    def console(self) -> Console:
        if self._console is None:
            from ...console import Console

            self._console = Console(
                self.routes.service,
                allow_anonymous=self.routes.allow_anonymous,
                max_body_bytes=self.routes.max_body_bytes,
            )
        return self._console

    def serve(self, **_: str) -> Response[Any]:
        from ...console import ConsoleRequest
        from ...console._http import parse_cookies

        console = self.console()
        raw = self.routes.event
        headers = {str(k).lower(): str(v) for k, v in (raw.get("headers") or {}).items()}
        cookies = [str(c) for c in raw.get("cookies") or []]
        if "cookie" in headers:
            cookies.append(headers["cookie"])
        try:
            body = _body_bytes(raw, self.routes.max_body_bytes)
        except HttpError as exc:
            return _response(console.refuse(exc.status, exc.type, exc.message))
        current = self.routes.app.current_event
        request = ConsoleRequest(
            method=current.http_method,
            path=current.path,
            caller=caller_from_event(raw),
            query={k: str(v) for k, v in (current.query_string_parameters or {}).items()},
            headers=headers,
            cookies=parse_cookies(cookies),
            body=body,
        )
        return _response(console.handle(request))


def _response(answer: ConsoleResponse) -> Response[Any]:
    from aws_lambda_powertools.shared.cookies import Cookie, SameSite

    cookies = [
        Cookie(
            name=c.name,
            value=c.value,
            path=c.path,
            secure=c.secure,
            http_only=True,
            same_site=SameSite.STRICT_MODE,
        )
        for c in answer.cookies
    ]
    return Response(
        status_code=int(answer.status),
        content_type=answer.content_type,
        body=answer.body,
        headers=answer.headers,
        cookies=cookies,
    )


def _handler(serve: Callable[..., Response[Any]], params: int) -> Callable[..., Response[Any]]:
    """A handler with exactly the rule's parameters (Powertools passes them by name)."""
    if params == 0:
        return lambda: serve()  # noqa: PLW0108 - a handler of no parameters for Powertools
    if params == 1:
        return lambda p1: serve(p1=p1)
    if params == 2:
        return lambda p1, p2: serve(p1=p1, p2=p2)
    return lambda p1, p2, p3: serve(p1=p1, p2=p2, p3=p3)


def add_console_routes(routes: _WorkflowRoutes) -> None:
    """Register the console's routes (left out of the OpenAPI document)."""
    console = _ConsoleRoutes(routes)
    for method, rule in CONSOLE_RULES:
        params = rule.count("<")
        routes.route(method, rule, include_in_schema=False)(_handler(console.serve, params))

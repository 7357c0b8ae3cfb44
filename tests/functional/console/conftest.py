"""A client that sends console requests through the API's resolver, as payload-v2 events."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlencode

import pytest

from lambda_flow import Flow, WorkflowService
from lambda_flow.aws.api import build_api
from lambda_flow.local.dev import LOCAL_IDENTITY, LocalContext, api_gateway_event

HOST = "console.test"


@dataclass
class Page:
    status: int
    headers: dict[str, str]
    body: str
    cookies: list[str]

    def ids(self, attribute: str) -> list[str]:
        """Values of ``attribute`` on every element that has it, in document order."""
        return [a[attribute] for a in _elements(self.body) if attribute in a]

    def elements(self, **match: str) -> list[dict[str, str]]:
        return [a for a in _elements(self.body) if all(a.get(k) == v for k, v in match.items())]

    def csrf(self) -> str:
        found = re.search(r'name="csrf" value="([^"]+)"', self.body)
        assert found, "the page has no form token"
        return found.group(1)

    def text(self) -> str:
        parser = _Text()
        parser.feed(self.body)
        return " ".join(" ".join(parser.parts).split())


class _Attrs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[dict[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append({"tag": tag, **{k: v or "" for k, v in attrs}})


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def _elements(body: str) -> list[dict[str, str]]:
    parser = _Attrs()
    parser.feed(body)
    return parser.found


class ConsoleClient:
    """Browser-like requests to ``/console`` through ``build_api``'s resolver.

    It keeps the cookies the console sets and sends same-origin headers with each ``POST``
    unless told otherwise.
    """

    def __init__(self, service: WorkflowService, flow: Flow, **options: Any) -> None:
        self.app = build_api(service, flow, **options)
        self.cookies: dict[str, str] = {}
        self.identity: Mapping[str, str] | None = LOCAL_IDENTITY

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        form: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Page:
        target = path + ("?" + urlencode(query) if query else "")
        sent = {"host": HOST, **(headers or {})}
        if self.cookies:
            sent["cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = urlencode(form or {}).encode()
        if form is not None:
            sent.setdefault("content-type", "application/x-www-form-urlencoded")
        event = api_gateway_event(method, target, sent, body, identity=self.identity)
        answer = self.app.resolve(event, LocalContext.for_function("Api"))
        cookies = list(answer.get("cookies") or [])
        for cookie in cookies:
            name, _, rest = cookie.partition("=")
            self.cookies[name] = rest.split(";", 1)[0]
        return Page(
            answer["statusCode"], dict(answer.get("headers") or {}), answer["body"], cookies
        )

    def get(self, path: str, **query: str) -> Page:
        return self.request("GET", path, query=query or None)

    def post(
        self,
        path: str,
        form: Mapping[str, str],
        *,
        same_origin: bool = True,
        token: str | None = None,
    ) -> Page:
        if not self.cookies:
            self.get("/console")
        headers = (
            {"sec-fetch-site": "same-origin", "origin": f"http://{HOST}"} if same_origin else {}
        )
        fields = {
            "csrf": self.cookies.get("lf_console_csrf", "") if token is None else token,
            **form,
        }
        return self.request("POST", path, form=fields, headers=headers)

    def act(self, path: str, form: Mapping[str, str]) -> Page:
        """Send an action, check it asks for confirmation, then confirm it."""
        asked = self.post(path, form)
        assert asked.status == 200, asked.body
        assert "Confirm" in asked.text()
        return self.post(path, {**form, "confirm": "yes"})


@pytest.fixture
def console(service: WorkflowService, flow: Flow) -> ConsoleClient:
    return ConsoleClient(service, flow)

"""``lambda-flow console``: the web console alone, on a loopback port, against any database.

An operator's tool: point it at a database (the embedded one by default, or production
through a tunnel) and read runs in a browser. Requests carry the local operator as an IAM
caller (as ``lambda-flow dev`` does), so workflows' ``authorize`` hooks see a known principal.
Actions queue the run when the queues are configured (``LAMBDA_FLOW_*_QUEUE_URL``); otherwise
the run is driven in this process, in a thread of its own, so a page never waits for it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ..core import Caller
from ..engine import Engine
from ..service import WorkflowService
from ..worker import InlineDriver

logger = logging.getLogger("lambda_flow")

__all__ = ["BackgroundDriver", "ConsoleServer"]

MAX_BODY_BYTES = 256 * 1024


class BackgroundDriver(InlineDriver):
    """Inline mode whose start, resume and cancel drive the run in a thread of their own."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: list[threading.Thread] = []

    def dispatch(self, engine: Engine, run_id: str) -> None:
        """Drive ``run_id`` until it rests, in a daemon thread (the caller returns at once)."""
        thread = threading.Thread(
            target=self._drive, args=(engine, run_id), name=f"lf-console-{run_id[:8]}", daemon=True
        )
        self.threads = [t for t in self.threads if t.is_alive()]
        self.threads.append(thread)
        thread.start()

    def join(self, timeout: float) -> None:
        """Wait (up to ``timeout`` seconds each) for the runs being driven to rest."""
        for thread in list(self.threads):
            thread.join(timeout)

    def _drive(self, engine: Engine, run_id: str) -> None:
        try:
            InlineDriver.dispatch(self, engine, run_id)
        except Exception:
            logger.exception("driving a run from the console failed", extra={"run_id": run_id})


class ConsoleServer:
    """Serves :class:`lambda_flow.console.Console` over HTTP on ``host:port``.

    Args:
        service: the service the console reads and acts through.
        host: the address to listen on (loopback by default).
        port: the port (0 picks a free one; see :attr:`url`).
        caller: who every request is (the local operator by default).
        read_only: show no action and refuse every one.
    """

    def __init__(
        self,
        service: WorkflowService,
        *,
        host: str = "127.0.0.1",
        port: int = 8001,
        caller: Caller | None = None,
        read_only: bool = False,
    ) -> None:
        from ..console import Console
        from .dev import LOCAL_IDENTITY

        self.console = Console(service, allow_anonymous=True, read_only=read_only)
        who = caller or Caller(
            kind="iam", principal=LOCAL_IDENTITY["userArn"], claims=dict(LOCAL_IDENTITY)
        )
        self._server = ThreadingHTTPServer((host, port), _handler(self.console, who))
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The console's URL."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/console"

    def start(self) -> None:
        """Serve in a background thread."""
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="lf-console", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def serve_until_stopped(self) -> None:
        """Serve until Ctrl-C."""
        print(f"lambda-flow console: {self.url} (Ctrl-C stops)", flush=True)
        try:
            self._server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            self._server.server_close()
        print("lambda-flow console: stopped", flush=True)

    def __enter__(self) -> ConsoleServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _handler(console: Any, caller: Caller) -> type[BaseHTTPRequestHandler]:
    from ..console import ConsoleRequest
    from ..console._http import parse_cookies

    class ConsoleRequestHandler(BaseHTTPRequestHandler):
        server_version = "lambda-flow-console"
        timeout = 10.0

        def _send(
            self, status: int, body: bytes, headers: Mapping[str, str], cookies: list[str]
        ) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            for cookie in cookies:
                self.send_header("Set-Cookie", cookie)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _serve(self) -> None:
            url = urlsplit(self.path)
            if url.path in ("", "/"):
                self._send(HTTPStatus.SEE_OTHER, b"", {"Location": "/console"}, [])
                return
            length = int(self.headers.get("content-length") or 0)
            if length > MAX_BODY_BYTES:
                answer = console.refuse(
                    HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "Too large", "the form is too large"
                )
                self.close_connection = True
            else:
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                if not url.path.startswith("/console"):
                    answer = console.refuse(HTTPStatus.NOT_FOUND, "Not found", "no such page")
                else:
                    answer = console.handle(
                        ConsoleRequest(
                            method=self.command,
                            path=url.path,
                            caller=caller,
                            query=dict(parse_qsl(url.query, keep_blank_values=True)),
                            headers=headers,
                            cookies=parse_cookies(self.headers.get_all("cookie") or []),
                            body=body,
                        )
                    )
            data = answer.body if isinstance(answer.body, bytes) else answer.body.encode("utf-8")
            self._send(
                answer.status,
                data,
                {"Content-Type": answer.content_type, **answer.headers},
                [c.header() for c in answer.cookies],
            )

        do_GET = do_POST = _serve  # noqa: N815 - http.server's naming

        def log_message(self, format: str, *args: Any) -> None:
            logger.info("http request", extra={"request": format % args})

    return ConsoleRequestHandler

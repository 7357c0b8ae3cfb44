"""The MCP server over :class:`AgentTools`, with the official SDK's low-level ``Server``.

Three ways to serve it: :func:`serve_stdio` (a client such as Claude Desktop starts
``lambda-flow mcp``), :func:`serve_http` (streamable HTTP on a port, stateless, JSON answers)
and :func:`handle_http` (one HTTP exchange run in-process through the SDK's
``StreamableHTTPSessionManager`` in stateless JSON mode: the Api function's ``POST /mcp``).
The SDK speaks the protocol (versions, envelopes, JSON-RPC errors); every tool call goes to
:meth:`AgentTools.call` in a worker thread, so a call that waits never blocks the event loop.
"""

from __future__ import annotations

import functools
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import anyio
import anyio.to_thread
import mcp_types as types
from mcp.server import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

from ..core import Caller, run_sync
from ._tools import ANONYMOUS, AgentTools

__all__ = ["HttpAnswer", "handle_http", "mcp_server", "serve_http", "serve_stdio"]

SERVER_NAME = "lambda-flow"

IDEMPOTENCY_META_KEY = "lambda-flow/idempotency-key"
"""A ``tools/call`` request's ``_meta`` entry: a workflow tool called again with the same key and
input returns the first run instead of starting another."""

INSTRUCTIONS = (
    "Each workflow tool starts a durable run and waits a bounded time for it. When the answer "
    "has status running or suspended, keep its run_id: get_run (with wait_seconds) waits for "
    "the result, resume_run continues a suspended run, complete_callback answers a callback "
    "the run waits for (see waiting_for)."
)


def _version() -> str:
    try:
        return version("lambda-flow")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0"


def _idempotency_key(params: types.CallToolRequestParams) -> str | None:
    meta = params.meta
    found = None
    if isinstance(meta, Mapping):
        found = meta.get(IDEMPOTENCY_META_KEY)
    elif meta is not None:
        found = (meta.model_extra or {}).get(IDEMPOTENCY_META_KEY)
    return found if isinstance(found, str) and found else None


def mcp_server(
    tools: AgentTools,
    *,
    caller: Caller = ANONYMOUS,
    wait: Callable[[], timedelta | None] | None = None,
) -> Server[Any]:
    """An MCP ``Server`` offering ``tools``, every call made as ``caller``.

    Args:
        tools: the app's tools.
        caller: who every call is made for (the ``authorize`` hooks see it).
        wait: called at each tool call for that call's bound on waiting (None: the tools'
            ``wait``); the AWS route passes what is left of the Lambda invocation.

    Returns:
        The server; run it with a transport (:func:`serve_stdio`, :func:`serve_http`,
        :func:`handle_http`, or the SDK's in-memory client in tests).
    """
    listed = [
        types.Tool(
            name=tool.name,
            description=tool.description,
            input_schema=tool.input_schema,
            annotations=types.ToolAnnotations(read_only_hint=True) if tool.read_only else None,
        )
        for tool in tools.tools
    ]
    schemas = {tool.name: tool.input_schema for tool in tools.tools}

    async def list_tools(
        ctx: Any, params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=listed)

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        run = functools.partial(
            tools.call,
            params.name,
            params.arguments,
            caller=caller,
            wait=None if wait is None else wait(),
            idempotency_key=_idempotency_key(params),
        )
        result = await anyio.to_thread.run_sync(run)
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=result.text)],
            structured_content=result.data,
            is_error=result.is_error,
        )

    return Server(
        SERVER_NAME,
        version=_version(),
        instructions=INSTRUCTIONS,
        get_tool_input_schema=schemas.get,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


# -- stdio -------------------------------------------------------------------------------------
def serve_stdio(tools: AgentTools, *, caller: Caller = ANONYMOUS) -> None:
    """Serve MCP on this process's stdin and stdout until the client closes stdin.

    While serving, anything else written to stdout (a workflow's ``print``) goes to stderr, so
    it never corrupts the protocol (the SDK's ``stdio_server`` diverts the descriptor).
    """
    from mcp.server.stdio import stdio_server

    server = mcp_server(tools, caller=caller)

    async def serve() -> None:
        async with stdio_server() as (read_stream, write_stream):
            await server.run(read_stream, write_stream, server.create_initialization_options())

    anyio.run(serve)


# -- streamable HTTP on a port -----------------------------------------------------------------
def serve_http(
    tools: AgentTools,
    *,
    caller: Caller = ANONYMOUS,
    host: str = "127.0.0.1",
    port: int = 8765,
    path: str = "/mcp",
    ready: Callable[[str], None] | None = None,
) -> None:
    """Serve MCP over streamable HTTP (stateless, JSON answers) at ``http://host:port/path``.

    A loopback ``host`` gets the SDK's DNS-rebinding protection (only loopback ``Host`` and
    ``Origin`` headers are taken). Runs until interrupted.

    Args:
        tools: the app's tools.
        caller: who every call is made for.
        host: the address to listen on.
        port: the port (0 picks a free one).
        path: the endpoint's path.
        ready: called with the endpoint's URL once the socket listens (port 0 resolved).
    """
    import uvicorn

    app = mcp_server(tools, caller=caller).streamable_http_app(
        streamable_http_path=path, json_response=True, stateless_http=True, host=host
    )
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)  # connections from now on wait in the backlog, none is refused
    bound_host, bound_port = sock.getsockname()[:2]
    shown = f"[{bound_host}]" if family == socket.AF_INET6 else bound_host
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    if ready is not None:
        ready(f"http://{shown}:{bound_port}{path}")
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()


# -- one HTTP exchange, in-process (the AWS route) ---------------------------------------------
@dataclass(frozen=True, slots=True)
class HttpAnswer:
    """The HTTP answer of one MCP exchange."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


def handle_http(
    tools: AgentTools,
    *,
    caller: Caller,
    method: str,
    headers: Mapping[str, str],
    body: bytes,
    wait: Callable[[], timedelta | None] | None = None,
) -> HttpAnswer:
    """Answer one streamable-HTTP request (stateless, JSON answers) for ``caller``.

    The SDK's session manager handles it as it would behind a web server: protocol version
    headers, JSON-RPC parsing and errors, ``initialize`` and every method; this function only
    hands it the request and collects the answer. Authentication is the caller's job (the
    route's); the tools' ``authorize`` hooks see ``caller``.

    Args:
        tools: the app's tools.
        caller: who is calling (already authenticated).
        method: the HTTP method.
        headers: the request's headers.
        body: the request's body.
        wait: each tool call's bound on waiting (see :func:`mcp_server`).

    Returns:
        The status, headers and body to send back.
    """
    server = mcp_server(tools, caller=caller, wait=wait)
    return run_sync(_exchange(server, method, headers, body))


async def _exchange(
    server: Server[Any], method: str, headers: Mapping[str, str], body: bytes
) -> HttpAnswer:
    manager = StreamableHTTPSessionManager(app=server, json_response=True, stateless=True)
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method.upper(),
        "scheme": "https",
        "path": "/mcp",
        "raw_path": b"/mcp",
        "query_string": b"",
        "root_path": "",
        "headers": _asgi_headers(headers, len(body)),
        "client": None,
        "server": None,
    }
    answered = anyio.Event()
    delivered = False
    status = 500
    out_headers: dict[str, str] = {}
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await answered.wait()  # the client "stays" until the answer is sent
        return {"type": "http.disconnect"}

    async def send(message: Mapping[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])
            for key, value in message.get("headers", ()):
                name = key.decode("latin-1").lower()
                text = value.decode("latin-1")
                out_headers[name] = f"{out_headers[name]}, {text}" if name in out_headers else text
        elif message["type"] == "http.response.body":
            chunks.append(bytes(message.get("body", b"")))
            if not message.get("more_body", False):
                answered.set()

    async with manager.run():
        await manager.handle_request(scope, receive, send)
    answered.set()
    return HttpAnswer(status=status, headers=out_headers, body=b"".join(chunks))


def _asgi_headers(headers: Mapping[str, str], length: int) -> list[tuple[bytes, bytes]]:
    pairs: Sequence[tuple[str, str]] = [
        (k.lower(), v) for k, v in headers.items() if k.lower() != "content-length"
    ]
    encoded = [(k.encode("latin-1"), str(v).encode("latin-1", "replace")) for k, v in pairs]
    encoded.append((b"content-length", str(length).encode()))
    return encoded

"""``lambda-flow mcp``: the app's workflows as tools for AI agents, over MCP (issue 16).

Stdio by default (an MCP client such as Claude Desktop starts the command and talks over its
stdin and stdout; everything the command says goes to stderr), or streamable HTTP with
``--http PORT``. Runs are driven where ``lambda-flow dev`` would drive them: by the deployed
workers when the SQS queue variables are set, else by queues and workers in this process (as
``lambda-flow dev`` runs them), so a workflow tool's wait is bounded exactly and a run that
outlasts it goes on after the answer. Tool calls are made as the local IAM identity
``lambda-flow dev`` injects (``--anonymous``: as an anonymous caller), and every workflow's
``authorize`` hook sees it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

from ..aws.config import ENV_ORCHESTRATOR_QUEUE_URL
from ..core import Caller, InvalidDuration, parse_duration, setting
from ._session import EXIT_OK, AddCommand, CommandError, Session

if TYPE_CHECKING:
    from ..engine import Flow
    from ..service import WorkflowService


POLL = "50ms"
"""How often a waiting tool call looks at its run (one indexed read; a local database)."""


def _say(line: str) -> None:
    """A line for the person: on stderr, since stdout may carry the protocol."""
    print(f"lambda-flow mcp: {line}", file=sys.stderr, flush=True)


def _require_mcp() -> None:
    for package, extra in (("mcp", "mcp"), ("aws_lambda_powertools", "local")):
        if importlib.util.find_spec(package) is None:
            raise CommandError(
                f"lambda-flow mcp needs the {package} package: pip install 'lambda-flow[{extra}]'"
            )


def _caller(anonymous: bool) -> Caller:
    if anonymous:
        return Caller(kind="anonymous")
    from ..local.dev import LOCAL_IDENTITY

    return Caller(kind="iam", principal=LOCAL_IDENTITY["userArn"], claims=dict(LOCAL_IDENTITY))


@contextlib.contextmanager
def _driven_service(session: Session, flow: Flow) -> Iterator[tuple[WorkflowService, str]]:
    """A service whose runs are driven without this command's help, and who drives them."""
    if setting(None, ENV_ORCHESTRATOR_QUEUE_URL):
        from ._placement import choose_placement

        placement = choose_placement(session)
        yield session.service(flow, driver=placement.driver()), placement.where
        return
    from ..local.dev import DevRuntime

    runtime = DevRuntime(
        flow,
        database_url=session.database_url(),
        schema=session.schema(),
        port=0,  # its HTTP API listens on a free loopback port, as `lambda-flow dev`'s does
    )
    runtime.start()
    try:
        yield runtime.service, f"queues and workers in this process (HTTP API on {runtime.url})"
    finally:
        runtime.stop()


def _cmd_mcp(session: Session) -> int:
    _require_mcp()
    from ..agents import AgentTools, serve_http, serve_stdio
    from ..local.console import log_to_console

    args = session.args
    try:
        wait = parse_duration(args.wait)
    except InvalidDuration as exc:
        raise CommandError(f"--wait: {exc}") from None
    flow = session.app()
    caller = _caller(args.anonymous)
    with log_to_console(), _driven_service(session, flow) as (service, where):
        tools = AgentTools(service, wait=wait, poll=POLL)
        workflows = sum(1 for tool in tools.tools if tool.workflow is not None)
        served = f"{workflows} workflow tools and {len(tools.tools) - workflows} run tools"
        if args.http is None:
            _say(f"{served} on stdio; runs driven by {where}")
            serve_stdio(tools, caller=caller)
        else:
            serve_http(
                tools,
                caller=caller,
                host=args.host,
                port=args.http,
                ready=lambda url: _say(f"{served} on {url}; runs driven by {where} (Ctrl-C stops)"),
            )
    _say("stopped")
    return EXIT_OK


def _port(value: str) -> int:
    import argparse

    if not value.isdigit() or int(value) > 65535:
        raise argparse.ArgumentTypeError(
            f"must be a port number (0 picks a free one), got {value!r}"
        )
    return int(value)


def add_mcp(command: AddCommand) -> None:
    """Add ``mcp [--http PORT] [--host HOST] [--wait DURATION] [--anonymous]``."""
    mcp = command(
        "mcp",
        _cmd_mcp,
        "serve the app's workflows as tools for AI agents over MCP: stdio for a client that "
        "starts this command (Claude Desktop), or streamable HTTP with --http PORT",
    )
    mcp.add_argument(
        "--http",
        type=_port,
        metavar="PORT",
        help="serve streamable HTTP at http://HOST:PORT/mcp instead of stdio (0 picks a port)",
    )
    mcp.add_argument("--host", default="127.0.0.1", help="address --http listens on")
    mcp.add_argument(
        "--wait",
        default="20s",
        metavar="DURATION",
        help="how long a workflow tool waits for its run before answering its run id "
        "(get_run's wait_seconds is capped at it too)",
    )
    mcp.add_argument(
        "--anonymous",
        action="store_true",
        help="make tool calls as an anonymous caller, not the local IAM identity",
    )

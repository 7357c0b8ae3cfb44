"""The session a command works in: exit codes, usage errors, the app and the service.

A command gets a :class:`Session` and builds only what it needs from it: the app (through the
one app loader, :func:`lambda_flow.engine.load_flow`), the schema and the service over Postgres.
Everything a command reads from the user (``--input``, a JSON file) is checked here before
anything touches the database.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..core import DEFAULT_SCHEMA, ENV_APP, ENV_SCHEMA, Clock, ConfigurationError, setting
from ..engine import Driver, Flow, WorkflowDef, load_flow
from ..graph import Flow as GraphFlow
from ..service import WorkflowService
from ..store.embedded import resolve_database_url

EXIT_OK = 0
EXIT_RUN_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
"""Ctrl-C, as shells report a process that SIGINT ended."""

DEMO_APP = "examples.onboarding:flow"
DEMO_WORKFLOW = "onboard_user"


class CommandError(Exception):
    """A problem with what the user asked for: reported as one line, exit code 2."""


class Session:
    """The parsed options, with the app and the service built only when a command needs them."""

    def __init__(self, args: argparse.Namespace, clock: Clock | None) -> None:
        self.args = args
        self.clock = clock
        self._service: WorkflowService | None = None
        self._database_url: str | None = None

    def app(self, *, required: bool = True) -> Flow:
        """The application named by ``--app`` or ``LAMBDA_FLOW_APP``.

        Args:
            required: whether a command needs the app; without one it gets an empty Flow.

        Returns:
            The loaded app, or an empty graph Flow when none is given and none is required.

        Raises:
            CommandError: no app is given and the command requires one.
        """
        spec = setting(self.args.app, ENV_APP)
        if spec:
            return load_flow(spec, option="--app")
        if required:
            raise CommandError(f"no app given: pass --app module:attribute or set {ENV_APP}")
        return GraphFlow()

    def schema(self) -> str:
        """The schema of lambda-flow's tables: ``--schema``, ``LAMBDA_FLOW_SCHEMA`` or default."""
        return setting(self.args.schema, ENV_SCHEMA, DEFAULT_SCHEMA) or DEFAULT_SCHEMA

    def service(self, flow: Flow, *, driver: Driver | None = None) -> WorkflowService:
        """A service over ``flow`` and the Postgres store; closed with the session.

        Args:
            flow: the application the service runs.
            driver: where its runs are driven (see :mod:`._placement`); inline when None.

        Returns:
            The service, on the session's clock.
        """
        from ..store.postgres import PostgresStore

        store = PostgresStore(self.database_url(), schema=self.schema())
        self._service = WorkflowService(flow, store=store, clock=self.clock, driver=driver)
        return self._service

    def database_url(self) -> str:
        """The Postgres URL: ``--database-url``, ``LAMBDA_FLOW_DATABASE_URL`` or embedded.

        The embedded Postgres is left running for the next command (``lambda-flow db stop``
        stops it).
        """
        if self._database_url is None:
            self._database_url = resolve_database_url(self.args.database_url, keep_running=True)
        return self._database_url

    def close(self) -> None:
        """Close the service, if a command built one."""
        if self._service is not None:
            self._service.close()


Handler = Callable[[Session], int]
"""A command: runs in a session and returns the exit code."""

AddCommand = Callable[[str, Handler, str], argparse.ArgumentParser]
"""Adds a subcommand ``(name, handler, help)`` to the parser and returns its parser."""


def load_demo_app() -> Flow:
    """The onboarding example's Flow, found in the current folder or in the source checkout.

    Returns:
        The demo app.

    Raises:
        ConfigurationError: the example cannot be imported from either place.
    """
    try:
        return load_flow(DEMO_APP, option="--app")
    except ConfigurationError:
        # Outside the source checkout: try the checkout this package was installed from.
        checkout = str(Path(__file__).resolve().parents[2])
        if checkout in sys.path or not (Path(checkout) / "examples" / "onboarding.py").exists():
            raise
        sys.path.append(checkout)
        importlib.invalidate_caches()
        return load_flow(DEMO_APP, option="--app")


def parse_input(text: str, source: str = "--input") -> Any:
    """Decode a workflow's input.

    Args:
        text: the JSON text.
        source: where it came from, for messages (``--input``, ``--input-file PATH``, stdin).

    Returns:
        The decoded JSON value.

    Raises:
        CommandError: the text is not valid JSON.
    """
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CommandError(
            f"{source} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None


def read_input(args: argparse.Namespace, definition: WorkflowDef) -> Any:
    """The input for a run of ``definition``: ``--input JSON``, ``--input -`` or ``--input-file``.

    Without either option the workflow gets no input, which is an error naming the missing
    fields when its input is required.

    Args:
        args: the command's options (``input``, ``input_file``).
        definition: the workflow to start.

    Returns:
        The decoded input (not yet validated).

    Raises:
        CommandError: both options, an unreadable file, invalid JSON, or a required input
            missing.
    """
    if args.input is not None and args.input_file is not None:
        raise CommandError("give --input or --input-file, not both")
    if args.input_file is not None:
        if args.input_file == "-":
            return parse_input(sys.stdin.read(), "the input on stdin")
        try:
            text = Path(args.input_file).read_text(encoding="utf-8")
        except OSError as exc:
            raise CommandError(
                f"cannot read input file {args.input_file!r}: {exc.strerror}"
            ) from None
        except UnicodeDecodeError:
            raise CommandError(f"input file {args.input_file!r} is not UTF-8 text") from None
        return parse_input(text, f"input file {args.input_file!r}")
    if args.input == "-":
        return parse_input(sys.stdin.read(), "the input on stdin")
    if args.input is not None:
        return parse_input(args.input)
    return _no_input(definition)


def _no_input(definition: WorkflowDef) -> Any:
    """What a workflow gets without ``--input``: nothing, ``{}``, or a usage error."""
    if not definition.takes_data or definition.input.is_any:
        return None
    from pydantic import TypeAdapter, ValidationError

    adapter: TypeAdapter[Any] = TypeAdapter(definition.input.annotation)
    try:
        adapter.validate_python(None)
    except ValidationError:
        pass  # None is not a valid input: look at the schema for what is required
    else:
        return None
    try:
        schema = adapter.json_schema()
    except Exception:  # noqa: BLE001 - a type pydantic cannot describe: no field names then
        schema = {}
    required = schema.get("required") or []
    usage = "--input JSON, --input - (stdin) or --input-file PATH"
    if required:
        fields = ", ".join(str(f) for f in required)
        raise CommandError(
            f"workflow {definition.name!r} needs an input: missing required field"
            f"{'s' if len(required) > 1 else ''} {fields} (give {usage})"
        )
    if schema.get("type") == "object":
        return {}
    raise CommandError(f"workflow {definition.name!r} needs an input (give {usage})")


def read_json_file(path: str, what: str) -> Any:
    """Read a JSON file the user named.

    Args:
        path: the file's path.
        what: what the file holds (``event``, ``history``), for messages.

    Returns:
        The decoded JSON value.

    Raises:
        CommandError: the file cannot be read or is not valid JSON.
    """
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except OSError as exc:
        raise CommandError(f"cannot read {what} file {path!r}: {exc.strerror}") from None
    except ValueError as exc:
        raise CommandError(f"{what} file {path!r} is not valid JSON: {exc}") from None

"""The ``demo`` command: run the onboarding example and print its history (no ``--app`` needed)."""

from __future__ import annotations

import argparse

from ..core import RunStatus
from ._output import history_table, print_run_head, to_json
from ._session import (
    DEMO_APP,
    DEMO_WORKFLOW,
    EXIT_OK,
    EXIT_RUN_FAILED,
    AddCommand,
    CommandError,
    Session,
    load_demo_app,
)


def _cmd_demo(session: Session) -> int:
    flow = load_demo_app()
    data = {
        "email": "ada.lovelace@example.com",
        "user_id": "ada",
        "welcome_delay": session.args.welcome_delay,
    }
    flow.get_workflow(DEMO_WORKFLOW).validate_input(data)
    service = session.service(flow)
    print(
        f"Running {DEMO_WORKFLOW!r} from {DEMO_APP} for {data['email']} "
        f"(welcome email after {data['welcome_delay']}; the email provider fails once)..."
    )
    run_id = service.start(DEMO_WORKFLOW, data)
    run = service.get_run(run_id)
    if run is None:  # pragma: no cover - start() stored it
        raise CommandError(f"run {run_id} disappeared")
    print()
    print(history_table(service.get_run_history(run_id)))
    print()
    print_run_head(run)
    if run.status is not RunStatus.COMPLETED:
        return EXIT_RUN_FAILED
    # Through the workflow's output model, so the fields print in the order they are declared.
    output = flow.get_workflow(DEMO_WORKFLOW).output
    print("output")
    print(to_json(output.dump(output.load(run.output))))
    print()
    print(f"See it again with: lambda-flow history {run_id}")
    print(
        "or watch it in the web console: lambda-flow console, then "
        f"http://127.0.0.1:8001/console/runs/{run_id}"
    )
    return EXIT_OK


def add_demo(command: AddCommand) -> None:
    """Add ``demo`` (its ``--welcome-delay`` is hidden: the tests shorten the wait with it)."""
    demo = command(
        "demo", _cmd_demo, "run the onboarding example and print its history (no --app needed)"
    )
    demo.add_argument("--welcome-delay", default="2s", help=argparse.SUPPRESS)

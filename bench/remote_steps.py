"""What remote mode costs per RPC step: the onboarding workflow through SQS and the handlers.

``python -m bench.remote_steps`` runs the onboarding workflow of ``tests/e2e/app.py`` (RPC steps
create_profile, send_email (fails its first attempt, retried after 1s) and provision; an inline
step; a 5-minute sleep) exactly as ``tests/e2e/handlers/test_queues.py``'s budget test does:
an in-process moto server holds the SQS queues and the Scheduler group, the real handler modules
(``lambda_flow.handlers.orchestrator``, ``step_worker``) are called with the events Lambda would
build from the received messages, and a time-skipping clock stands in for the waits. The
database is a private embedded Postgres in a temporary folder (or ``--database-url``), with a
fresh schema dropped afterwards.

Figures, per Lambda invocation and summed per RPC step:
  SQS msgs    messages the application sent (SendMessage and SendMessageBatch entries)
  SQS calls   SQS API calls the application made (the event source's own receives and
              deletes are Lambda's, not the application's, and are not counted)
  invocations Lambda invocations (each handled one message here)
  SQL RT      statements the store sent (``PostgresStore.stats.round_trips``)

The happy-path budget: one message and one invocation per RPC step attempt, plus the start and
one wake-up per timer. ``--check`` exits with status 1 when the run misses it.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import io
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

from lambda_flow import RunStatus
from lambda_flow.testing import TimeSkippingClock

if TYPE_CHECKING:
    from tests.e2e.aws import Invocation

SUMMARY = "the onboarding workflow in remote mode: SQS messages, invocations, SQL per RPC step"
WORKFLOW = "onboard_user"
INPUT = {"email": "ada@example.com", "user_id": "ada", "welcome_delay": "5min"}
RPC_ATTEMPTS = 4
"""create_profile 1, send_email 2 (the first fails), provision 1."""
TIMERS = 2
"""The 5-minute sleep and send_email's retry delay."""


@dataclass
class Row:
    """One line of the report."""

    label: str
    invocations: int = 0
    messages: int = 0
    sqs_calls: int = 0
    round_trips: int = 0

    def add(self, invocations: int, messages: int, sqs_calls: int, round_trips: int) -> None:
        self.invocations += invocations
        self.messages += messages
        self.sqs_calls += sqs_calls
        self.round_trips += round_trips


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url",
        default=None,
        help="an existing Postgres to use (default: a private embedded one in a temp folder)",
    )
    parser.add_argument(
        "--verbose", action="store_true", help="show the handlers' logs and EMF metrics"
    )
    parser.add_argument(
        "--check", action="store_true", help="exit with status 1 when the budget is missed"
    )


def _embedded_url() -> str:
    from lambda_flow.store.embedded import embedded_database_url

    root = Path(tempfile.mkdtemp(prefix="lambda-flow-bench-remote-"))
    # atexit runs last-registered first: the server (registered when it starts) stops before
    # its folder is removed.
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return embedded_database_url(root / "pgdata")


@dataclass
class Measurement:
    """What one run of the workflow did."""

    status: RunStatus
    error: str | None
    calls: dict[str, int]
    """RPC function calls by name."""
    start: Row
    invocations: list[Invocation]
    delays: dict[str, int]
    """DelaySeconds of every message the application sent, by message id."""
    elapsed: float
    durations: list[float] = field(default_factory=list)
    """Wall time of each handler call, in the order of ``invocations`` (seconds)."""


def run(args: argparse.Namespace) -> int:
    try:
        measured = _measure(args.database_url or _embedded_url(), verbose=args.verbose)
    except ImportError as exc:  # run from elsewhere than the repository's root, or no moto
        print(f"error: {exc} (run from the repository root with the dev extras)", file=sys.stderr)
        return 2
    if measured.status is not RunStatus.COMPLETED:
        print(f"error: the run ended {measured.status.value}: {measured.error}", file=sys.stderr)
        return 2
    met = _report(measured, external_db=bool(args.database_url))
    return 1 if args.check and not met else 0


def _measure(dsn: str, *, verbose: bool) -> Measurement:
    from tests.e2e import app
    from tests.e2e.aws import moto_endpoint, open_harness

    schema = f"bench_remote_{uuid.uuid4().hex[:12]}"
    output = contextlib.nullcontext() if verbose else contextlib.redirect_stdout(io.StringIO())
    began = time.perf_counter()
    try:
        with output, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Powertools: "No application metrics to publish"
            harness = open_harness(
                endpoint=moto_endpoint(),
                database_url=dsn,
                schema=schema,
                clock=TimeSkippingClock(),
                setenv=os.environ.__setitem__,
                delenv=_unset,
            )
            try:
                durations = _time_handlers(harness.handlers)
                stats, recorder = harness.runtime.store.stats, harness.recorder
                before = (stats.round_trips, len(recorder.sent), len(recorder.calls))
                run_id = harness.service.start(WORKFLOW, INPUT)
                start = Row("start (service.start, not Lambda)")
                start.add(
                    0,
                    len(recorder.sent) - before[1],
                    len(recorder.calls) - before[2],
                    stats.round_trips - before[0],
                )
                invocations = harness.pump()
                run = harness.run(run_id)
                return Measurement(
                    status=run.status,
                    error=str(run.error) if run.error else None,
                    calls=dict(app.calls),
                    start=start,
                    invocations=invocations,
                    delays={m.message_id or "": m.delay_seconds for m in recorder.delivered()},
                    elapsed=time.perf_counter() - began,
                    durations=durations,
                )
            finally:
                harness.close()
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def _time_handlers(handlers: dict[str, ModuleType]) -> list[float]:
    """Time every call of the loaded handler modules' ``handler`` (the function's own work,
    not the event source's receive and delete around it), in call order."""
    durations: list[float] = []
    for module in handlers.values():
        handler = module.handler

        def timed(event: Any, context: Any, handler: Any = handler) -> Any:
            started = time.perf_counter()
            try:
                return handler(event, context)
            finally:
                durations.append(time.perf_counter() - started)

        module.handler = timed  # type: ignore[attr-defined]
    return durations


def _unset(name: str) -> None:
    os.environ.pop(name, None)


def _line(row: Row) -> str:
    return (
        f"{row.label:<34} {row.invocations:>11} {row.messages:>9} {row.sqs_calls:>9} "
        f"{row.round_trips:>7}"
    )


def _report(measured: Measurement, *, external_db: bool) -> bool:
    """Print the figures; True when the budget was met."""
    print(f"lambda-flow bench: remote-steps ({SUMMARY})")
    print(f"workflow    : {WORKFLOW} {json.dumps(INPUT)}")
    print(f"functions   : {json.dumps(measured.calls)}")
    print(f"database    : {'--database-url' if external_db else 'embedded (temp folder)'}")
    print(f"wall time   : {measured.elapsed:.2f}s (moto over HTTP on localhost, not a latency)")
    print()
    print("per invocation (clock = the skipping clock)")
    print(f"{'#':>2} {'function':<12} {'handled':<24} {'clock':>8} {'SQS msgs':>9} "
          f"{'SQS calls':>9} {'SQL RT':>7}")  # fmt: skip
    per_step: dict[str, Row] = {}
    orchestration = Row("orchestrator (start + wake-ups)")
    for i, invocation in enumerate(measured.invocations, 1):
        body = json.loads(invocation.bodies[0])
        if invocation.function == "step_worker":
            handled = f"{body['step_key']} attempt {body['attempt']}"
            row = per_step.setdefault(body["step_key"], Row(f"RPC step {body['step_key']!r}"))
        else:
            delay = measured.delays.get(invocation.message_ids[0], 0)
            handled = f"wake-up (+{delay}s)" if delay else "start"
            row = orchestration
        row.add(1, invocation.sqs_sent, invocation.sqs_calls, invocation.round_trips)
        print(
            f"{i:>2} {invocation.function:<12} {handled:<24} "
            f"{invocation.started_at:%H:%M:%S} {invocation.sqs_sent:>9} "
            f"{invocation.sqs_calls:>9} {invocation.round_trips:>7}"
        )
    print()
    print("per RPC step (its step-worker invocations, which also carry the run on)")
    header = f"{'':<34} {'invocations':>11} {'SQS msgs':>9} {'SQS calls':>9} {'SQL RT':>7}"
    print(header)
    total = Row("total")
    for row in [*per_step.values(), orchestration, measured.start]:
        print(_line(row))
        total.add(row.invocations, row.messages, row.sqs_calls, row.round_trips)
    print("-" * len(header))
    print(_line(total))
    print(
        f"per RPC attempt ({RPC_ATTEMPTS} attempts, start and timers included): "
        f"{total.messages / RPC_ATTEMPTS:.2f} msgs, {total.invocations / RPC_ATTEMPTS:.2f} "
        f"invocations, {total.round_trips / RPC_ATTEMPTS:.2f} SQL RT"
    )
    budget = 1 + RPC_ATTEMPTS + TIMERS
    met = total.messages <= budget and total.invocations <= budget
    print(
        f"budget      : <= {budget} messages and invocations "
        f"(1 start + {RPC_ATTEMPTS} RPC attempts + {TIMERS} timers): "
        + ("met" if met else "MISSED")
    )
    return met


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.remote_steps",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

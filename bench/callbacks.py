"""What a callback costs in remote mode: SQL statements and SQS messages from its creation to
the resumed pass.

``python -m bench callbacks`` runs the ``checkout`` workflow of ``tests/e2e/app.py`` (a
``wf.wait_for_callback`` whose registered submitter hands the callback id to a "provider") as
``bench remote-steps`` runs its workflow: an in-process moto server holds the queues and the
Scheduler group, the real handler modules (``lambda_flow.handlers.orchestrator``,
``step_worker``) are called with the events Lambda would build, a time-skipping clock stands
in for the waits, and the database is a private embedded Postgres (or ``--database-url``) with
a fresh schema dropped afterwards. Each of ``--callbacks`` runs goes through three phases:

  create      ``service.start`` and every invocation until the run waits on the callback
              (the orchestrator pass that records it, the submitter's step worker)
  complete    ``service.complete_callback(id, payload)``, as the API's
              ``POST /callbacks/{id}/succeed`` calls it
  resume      every invocation until the run completed (the resumed pass)

and a repeated completion (same payload: answered as the first time) is measured apart.
Statements are ``PostgresStore.stats.round_trips``; messages are what the application sent
(SendMessage and SendMessageBatch entries). Issue 12's target: at most 2 statements and one
orchestration message to complete a callback. ``--check`` exits 1 when it is missed.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import time
import uuid
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from lambda_flow import RunStatus
from lambda_flow.testing import TimeSkippingClock

from .remote_steps import _embedded_url, _unset

SUMMARY = "a callback in remote mode: SQL statements and SQS messages, creation to resumed pass"
WORKFLOW = "checkout"
TARGET_STATEMENTS = 2
TARGET_MESSAGES = 1
PHASES = ("create", "complete", "repeat", "resume")


@dataclass
class Cost:
    """What one phase cost, summed over the runs."""

    statements: int = 0
    messages: int = 0
    invocations: int = 0

    def add(self, statements: int, messages: int, invocations: int = 0) -> None:
        self.statements += statements
        self.messages += messages
        self.invocations += invocations


@dataclass
class Measurement:
    """Every phase's cost over ``runs`` runs."""

    runs: int = 0
    phases: dict[str, Cost] = field(default_factory=lambda: {p: Cost() for p in PHASES})
    orchestration_per_completion: list[int] = field(default_factory=list)
    """Messages each completion sent to the orchestrator queue."""
    failures: list[str] = field(default_factory=list)
    elapsed: float = 0.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--callbacks", type=int, default=10, help="runs (one callback each)")
    parser.add_argument(
        "--database-url",
        default=None,
        help="an existing Postgres to use (default: a private embedded one in a temp folder)",
    )
    parser.add_argument(
        "--check", action="store_true", help="exit with status 1 when the target is missed"
    )


def run(args: argparse.Namespace) -> int:
    try:
        measured = measure(args.database_url or _embedded_url(), max(1, args.callbacks))
    except ImportError as exc:  # run from elsewhere than the repository's root, or no moto
        print(f"error: {exc} (run from the repository root with the dev extras)", file=sys.stderr)
        return 2
    if measured.failures:
        print("error: " + "; ".join(measured.failures[:3]), file=sys.stderr)
        return 2
    met = report(measured)
    return 1 if args.check and not met else 0


def measure(dsn: str, runs: int) -> Measurement:
    """Run ``runs`` checkouts, each completed once and then again; the costs."""
    from tests.e2e import app
    from tests.e2e.aws import moto_endpoint, open_harness

    schema = f"bench_callbacks_{uuid.uuid4().hex[:12]}"
    measured = Measurement()
    began = time.perf_counter()
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
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
                stats, recorder = harness.runtime.store.stats, harness.recorder
                orchestrator_url = harness.queues["orchestrator"].url

                def mark() -> tuple[int, int]:
                    return stats.round_trips, len(recorder.sent)

                def since(before: tuple[int, int]) -> tuple[int, int]:
                    now = mark()
                    return now[0] - before[0], now[1] - before[1]

                for index in range(runs):
                    before = mark()
                    run_id = harness.service.start(WORKFLOW, {"amount": index})
                    invocations = harness.pump()
                    measured.phases["create"].add(*since(before), len(invocations))
                    if not app.submitted:
                        measured.failures.append(f"run {run_id}: no callback was handed off")
                        continue
                    callback_id = app.submitted.pop()
                    payload: dict[str, Any] = {"paid": index}
                    before = mark()
                    sent_before = len(recorder.sent)
                    harness.service.complete_callback(callback_id, payload)
                    measured.phases["complete"].add(*since(before))
                    measured.orchestration_per_completion.append(
                        sum(
                            1
                            for m in recorder.sent[sent_before:]
                            if _queue_url(m) == orchestrator_url
                        )
                    )
                    before = mark()
                    harness.service.complete_callback(callback_id, payload)
                    measured.phases["repeat"].add(*since(before))
                    before = mark()
                    invocations = harness.pump()
                    measured.phases["resume"].add(*since(before), len(invocations))
                    done = harness.run(run_id)
                    if done.status is not RunStatus.COMPLETED or done.output != payload:
                        measured.failures.append(
                            f"run {run_id} ended {done.status.value} with {done.output!r}"
                        )
                    measured.runs += 1
            finally:
                harness.close()
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    measured.elapsed = time.perf_counter() - began
    return measured


def _queue_url(message: Any) -> str | None:
    """The queue a recorded message went to (None when the recorder does not say)."""
    for name in ("queue_url", "QueueUrl", "url"):
        value = getattr(message, name, None)
        if isinstance(value, str):
            return value
    return None


def per_callback(measured: Measurement) -> dict[str, dict[str, float]]:
    """Each phase's statements, messages and invocations per callback."""
    runs = max(measured.runs, 1)
    return {
        phase: {
            "statements": cost.statements / runs,
            "messages": cost.messages / runs,
            "invocations": cost.invocations / runs,
        }
        for phase, cost in measured.phases.items()
    }


def met(measured: Measurement) -> bool:
    """Whether completing a callback stayed within the target."""
    figures = per_callback(measured)["complete"]
    return (
        figures["statements"] <= TARGET_STATEMENTS
        and figures["messages"] <= TARGET_MESSAGES
        and all(n <= TARGET_MESSAGES for n in measured.orchestration_per_completion)
    )


def report(measured: Measurement) -> bool:
    """Print the figures next to the target; True when it was met."""
    figures = per_callback(measured)
    print(f"lambda-flow bench: callbacks ({SUMMARY})")
    print(f"workflow    : {WORKFLOW} (tests/e2e/app.py), {measured.runs} runs, one callback each")
    print(f"wall time   : {measured.elapsed:.2f}s (moto over HTTP on localhost, not a latency)")
    print()
    print(f"{'per callback':<44} {'SQL statements':>14} {'SQS msgs':>9} {'invocations':>11}")
    labels = {
        "create": "create (start .. run waits on the callback)",
        "complete": "complete (service.complete_callback)",
        "repeat": "repeat (same payload again, not counted)",
        "resume": "resume (the resumed pass .. completed)",
    }
    total = Cost()
    for phase in PHASES:
        row = figures[phase]
        print(
            f"{labels[phase]:<44} {row['statements']:>14.1f} {row['messages']:>9.1f}"
            f" {row['invocations']:>11.1f}"
        )
        if phase != "repeat":
            cost = measured.phases[phase]
            total.add(cost.statements, cost.messages, cost.invocations)
    runs = max(measured.runs, 1)
    print(
        f"{'creation to resumed pass':<44} {total.statements / runs:>14.1f}"
        f" {total.messages / runs:>9.1f} {total.invocations / runs:>11.1f}"
    )
    orchestration = max(measured.orchestration_per_completion, default=0)
    ok = met(measured)
    print(
        f"target      : complete a callback in <= {TARGET_STATEMENTS} statements and"
        f" {TARGET_MESSAGES} orchestration message: {figures['complete']['statements']:.1f}"
        f" statements, {figures['complete']['messages']:.1f} messages (at most"
        f" {orchestration} to the orchestrator queue): " + ("met" if ok else "MISSED")
    )
    return ok


def result(url: str, runs: int = 10) -> dict[str, Any]:
    """The measurement as ``bench compare`` stores it (per callback)."""
    measured = measure(url, runs)
    if measured.failures:
        raise RuntimeError("callbacks: " + "; ".join(measured.failures[:3]))
    return {
        "engine": "lambda_flow",
        "workload": "callbacks",
        "runs": measured.runs,
        "per_callback": per_callback(measured),
        "orchestration_messages_per_completion": max(
            measured.orchestration_per_completion, default=0
        ),
        "target_statements": TARGET_STATEMENTS,
        "target_messages": TARGET_MESSAGES,
        "met": met(measured),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.callbacks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

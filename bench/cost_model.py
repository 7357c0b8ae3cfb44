"""Dollars per million workflow steps on AWS, from the counts ``make bench`` measured.

    .venv/bin/python -m bench.cost_model [--results bench/results.json] [--db-rtt-ms 1] ...

Prices and assumptions are named parameters (:class:`Prices`, :class:`Assumptions`, each
overridable on the command line); docs/performance.md explains them and shows the output. Two
workflows, each priced three ways:

- ``onboarding``: examples/onboarding's workflow as the benchmark runs it (3 RPC steps, one of
  them retried once, 1 inline step, 1 five-minute sleep: 5 steps, 4 RPC attempts);
- ``100 steps``: 100 sequential steps, each an RPC step (a Lambda invocation of its own), and,
  for lambda-flow, also as 100 inline steps (run inside the orchestrator's invocation).

Engines:

- lambda-flow on Lambda + SQS + Postgres: SQS requests (the application's sends, measured, and
  the event source's receive and delete per delivered message), Lambda requests and GB-seconds
  (each invocation's measured duration on this machine plus, for AWS, a network round trip per
  SQL statement and per SQS call, at ``template.yaml``'s 512 MB on arm64), and database I/O
  (every SQL statement priced as one Aurora I/O request: an upper bound, reads included).
  The database's fixed capacity (Aurora Serverless v2 ACUs, RDS Proxy) is not per step and is
  left out, as are API Gateway and the start's caller, the same for every engine.
- AWS Step Functions Standard: one state transition per step entered and per retry, plus one
  Lambda invocation per step attempt (every step runs code).
- Lambda durable functions: one operation per step and per retry, plus the durable function's
  own invocations (one per resume after a wait) for the steps' work; data written and retained
  ($0.25/GB, $0.15/GB-month) are left out (a few KB per run).

The user's own work per step (``function_ms``) is the same for every engine and billed where it
runs: inside lambda-flow's invocations, in Step Functions' task Lambdas, inside the durable
function.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from lambda_flow.console import CostModel

DEFAULT_RESULTS = Path(__file__).resolve().parent / "results.json"
_RUN_PRICES = CostModel()
"""The library's per-run cost model (the console, ``lambda-flow status --cost``): one home for
the prices and assumptions both use."""


@dataclass(frozen=True, slots=True)
class Prices:
    """US East (N. Virginia) list prices in dollars, beyond the free tiers."""

    lambda_request: float = _RUN_PRICES.lambda_request
    """Per Lambda invocation."""
    lambda_gb_second: float = _RUN_PRICES.lambda_gb_second
    """Per GB-second of Lambda duration on arm64 (x86: 0.0000166667)."""
    sqs_request: float = _RUN_PRICES.sqs_request
    """Per SQS standard-queue request (a batch of up to 10 messages is one request)."""
    db_io: float = _RUN_PRICES.db_io
    """Per Aurora (Standard) I/O request; I/O-Optimized clusters pay none, at a higher ACU price."""
    sfn_transition: float = 25.0 / 1e6
    """Per Step Functions Standard state transition."""
    durable_operation: float = 8.0 / 1e6
    """Per Lambda durable functions operation (a step, a wait, a retry)."""


@dataclass(frozen=True, slots=True)
class Assumptions:
    """What the measurements cannot tell: how AWS differs from this machine."""

    memory_gb: float = _RUN_PRICES.memory_gb
    """template.yaml's MemorySize (512 MB), for every function."""
    db_rtt_ms: float = _RUN_PRICES.db_rtt_ms
    """One SQL round trip from Lambda to Aurora through RDS Proxy, same AZ."""
    sqs_call_ms: float = _RUN_PRICES.sqs_call_ms
    """One SQS API call from Lambda (SendMessage / SendMessageBatch)."""
    event_source_requests: float = _RUN_PRICES.event_source_requests
    """SQS requests the Lambda event source makes per delivered message (receive, delete)."""
    function_ms: float = 1.0
    """The user's own work per step attempt, the same for every engine."""
    durable_checkpoint_ms: float = 0.0
    """Time a durable function spends per checkpoint (unknown; 0 favours durable functions)."""


@dataclass
class Bill:
    """One workflow run, priced by item."""

    engine: str
    scenario: str
    steps: int
    sqs: float = 0.0
    lambda_requests: float = 0.0
    lambda_duration: float = 0.0
    database: float = 0.0
    orchestration: float = 0.0
    """Step Functions transitions or durable functions operations."""
    notes: str = ""

    @property
    def total(self) -> float:
        return (
            self.sqs + self.lambda_requests + self.lambda_duration + self.database
            + self.orchestration
        )  # fmt: skip

    @property
    def per_million_steps(self) -> float:
        return self.total / self.steps * 1e6


@dataclass(frozen=True, slots=True)
class Invocation:
    """One Lambda invocation as lambda-flow makes it: what it did, how long it took here."""

    ms: float
    sql_round_trips: float
    sqs_calls: float
    steps_run: float = 0
    """Step attempts whose user code ran in this invocation (billed ``function_ms`` each)."""


def _billed_ms(inv: Invocation, a: Assumptions) -> float:
    """Duration on AWS: measured here, plus AWS's network round trips and the user's work."""
    ms = inv.ms + inv.sql_round_trips * a.db_rtt_ms + inv.sqs_calls * a.sqs_call_ms
    return float(max(1, math.ceil(ms + inv.steps_run * a.function_ms)))


def _lambda(bill: Bill, invocations: Sequence[Invocation], p: Prices, a: Assumptions) -> None:
    bill.lambda_requests += len(invocations) * p.lambda_request
    gb_s = sum(_billed_ms(i, a) for i in invocations) / 1000 * a.memory_gb
    bill.lambda_duration += gb_s * p.lambda_gb_second


# -- lambda-flow ------------------------------------------------------------------------------
def lambda_flow_onboarding(r: dict[str, Any], p: Prices, a: Assumptions) -> Bill:
    ob = r["onboarding"]
    bill = Bill("lambda-flow", "onboarding", steps=5)
    details = ob["invocation_details"]
    invocations = [
        Invocation(
            d["ms"],
            d["sql_round_trips"],
            d["sqs_calls"],
            1 if d["function"] == "step_worker" else 0,
        )
        for d in details
    ]
    # The inline step runs in an orchestrator invocation: bill its user work there.
    orchestrators = [i for i, d in enumerate(details) if d["function"] == "orchestrator"]
    if orchestrators:
        first = invocations[orchestrators[0]]
        invocations[orchestrators[0]] = replace(first, steps_run=first.steps_run + 1)
    _lambda(bill, invocations, p, a)
    deliveries = len(details)
    bill.sqs = (ob["sqs_calls"] + deliveries * a.event_source_requests) * p.sqs_request
    bill.database = ob["sql_round_trips"] * p.db_io
    bill.notes = (
        f"{deliveries} invocations, {ob['sqs_messages']} messages, "
        f"{ob['sql_round_trips']} SQL statements per run"
    )
    return bill


def _step_worker(r: dict[str, Any]) -> Invocation:
    """The average step-worker invocation of the onboarding run: one RPC step attempt, its
    result stored, and the run carried on (a pass, the next step's job sent)."""
    rows = [d for d in r["onboarding"]["invocation_details"] if d["function"] == "step_worker"]
    n = len(rows)
    return Invocation(
        sum(d["ms"] for d in rows) / n,
        sum(d["sql_round_trips"] for d in rows) / n,
        sum(d["sqs_calls"] for d in rows) / n,
        1,
    )


def lambda_flow_rpc(r: dict[str, Any], steps: int, p: Prices, a: Assumptions) -> Bill:
    bill = Bill("lambda-flow", f"{steps} RPC steps", steps=steps)
    worker = _step_worker(r)
    start = r["onboarding"]["start"]
    first = next(
        d for d in r["onboarding"]["invocation_details"] if d["function"] == "orchestrator"
    )
    orchestrator = Invocation(first["ms"], first["sql_round_trips"], first["sqs_calls"])
    invocations = [orchestrator] + [worker] * steps
    _lambda(bill, invocations, p, a)
    sends = start["sqs_calls"] + orchestrator.sqs_calls + worker.sqs_calls * steps
    bill.sqs = (sends + len(invocations) * a.event_source_requests) * p.sqs_request
    statements = start["sql_round_trips"] + orchestrator.sql_round_trips
    bill.database = (statements + worker.sql_round_trips * steps) * p.db_io
    bill.notes = (
        f"per step: 1 invocation ({worker.ms:.1f} ms here, {worker.sql_round_trips:.1f} SQL), "
        "1 message"
    )
    return bill


def lambda_flow_inline(r: dict[str, Any], steps: int, p: Prices, a: Assumptions) -> Bill:
    """All steps inline, in the one orchestrator invocation the start's message triggers."""
    bill = Bill("lambda-flow", f"{steps} inline steps", steps=steps)
    inline = _inline_medians(r)
    ms = inline["us_per_step"] * steps / 1000
    statements = inline["statements_per_step"] * steps + 4  # create, acquire, load, finish
    _lambda(bill, [Invocation(ms, statements, 0, steps)], p, a)
    start = r["onboarding"]["start"]
    bill.sqs = (start["sqs_calls"] + a.event_source_requests) * p.sqs_request
    bill.database = statements * p.db_io
    bill.notes = (
        f"1 invocation: {inline['us_per_step']:.0f} us/step here + "
        f"{inline['statements_per_step']:.2f} SQL/step"
    )
    return bill


def _inline_medians(r: dict[str, Any]) -> dict[str, float]:
    runs = r["runs"]["inline"]["lambda_flow"]
    us = sorted(x["wall_s"] / x["steps"] * 1e6 for x in runs)
    stmts = sorted((x["server"]["statements"] or 0) / x["steps"] for x in runs)
    return {"us_per_step": us[len(us) // 2], "statements_per_step": stmts[len(stmts) // 2]}


# -- the managed alternatives -----------------------------------------------------------------
def step_functions(scenario: str, steps: int, attempts: int, p: Prices, a: Assumptions) -> Bill:
    """Standard workflows: a Task state per step (a wait is a Wait state, no Lambda)."""
    bill = Bill("Step Functions Standard", scenario, steps=steps)
    waits = 1 if scenario == "onboarding" else 0
    transitions = steps + (attempts - (steps - waits))  # each state once, plus each retry
    bill.orchestration = transitions * p.sfn_transition
    _lambda(bill, [Invocation(0, 0, 0, 1)] * attempts, p, a)
    bill.notes = f"{transitions} transitions, {attempts} task Lambda invocations"
    return bill


def durable_functions(
    scenario: str, steps: int, attempts: int, p: Prices, a: Assumptions, *, resumes: int
) -> Bill:
    """One durable function: an operation per step and retry, re-invoked after each wait."""
    bill = Bill("Lambda durable functions", scenario, steps=steps)
    waits = 1 if scenario == "onboarding" else 0
    operations = steps + (attempts - (steps - waits))
    bill.orchestration = operations * p.durable_operation
    work_ms = attempts * a.function_ms + operations * a.durable_checkpoint_ms
    invocations = [Invocation(work_ms / resumes, 0, 0)] * resumes
    _lambda(bill, invocations, p, a)
    bill.notes = f"{operations} operations, {resumes} invocations"
    return bill


def bills(results: dict[str, Any], p: Prices, a: Assumptions) -> list[Bill]:
    ob = results["runs"]["onboarding"]["lambda_flow"][0]
    r = {"onboarding": ob, "runs": results["runs"]}
    # Onboarding: 5 steps (3 RPC, 1 inline, 1 sleep), 5 attempts of code (4 RPC + the inline
    # step), resumed after the sleep and after the retry delay.
    attempts = ob["rpc_attempts"] + ob["inline_steps"]
    return [
        lambda_flow_onboarding(r, p, a),
        step_functions("onboarding", 5, attempts, p, a),
        durable_functions("onboarding", 5, attempts, p, a, resumes=1 + ob["timers"]),
        lambda_flow_rpc(r, 100, p, a),
        lambda_flow_inline(r, 100, p, a),
        step_functions("100 steps", 100, 100, p, a),
        durable_functions("100 steps", 100, 100, p, a, resumes=1),
    ]


def markdown(items: Sequence[Bill]) -> str:
    lines = [
        "| workflow | engine | $ per million steps | SQS | Lambda requests | Lambda GB-s "
        "| database I/O | transitions / operations | what a run does |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]

    def per_m(value: float, bill: Bill) -> str:
        return f"{value / bill.steps * 1e6:,.2f}"

    for b in items:
        lines.append(
            f"| {b.scenario} | {b.engine} | **{b.per_million_steps:,.2f}** | {per_m(b.sqs, b)} "
            f"| {per_m(b.lambda_requests, b)} | {per_m(b.lambda_duration, b)} "
            f"| {per_m(b.database, b)} | {per_m(b.orchestration, b)} | {b.notes} |"
        )
    return "\n".join(lines) + "\n"


def _add_overrides(parser: argparse.ArgumentParser) -> None:
    for cls in (Prices, Assumptions):
        for f in fields(cls):
            parser.add_argument(
                "--" + f.name.replace("_", "-"), type=float, default=None, dest=f.name,
                help=f"{cls.__name__}.{f.name} (default {f.default})",
            )  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cost_model", description=__doc__)
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS)
    _add_overrides(parser)
    args = parser.parse_args(argv)
    if not args.results.exists():
        print(f"error: no {args.results}: run `make bench` first", file=sys.stderr)
        return 2
    results = json.loads(args.results.read_text())
    given = {k: v for k, v in vars(args).items() if v is not None}
    prices = Prices(**{f.name: given[f.name] for f in fields(Prices) if f.name in given})
    assumptions = Assumptions(
        **{f.name: given[f.name] for f in fields(Assumptions) if f.name in given}
    )
    print(markdown(bills(results, prices, assumptions)), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())

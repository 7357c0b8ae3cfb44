"""What one run costs on AWS: counts derived from its recorded history, priced by a model.

The prices and assumptions are the benchmark's cost model (``bench/cost_model.py``,
docs/performance.md "Cost model"), as the named fields of :class:`CostModel`. The counts are
derived from what a run already records (docs/console.md explains each rule):

- an RPC attempt whose attempt row was written with ``started_at == created_at`` was claimed by
  the pass that scheduled it (``finish_pass_claiming``: a chained step, run by the previous
  step's worker, no message, no invocation); any other RPC attempt was a step job: one SQS
  message and one StepWorker invocation;
- the orchestrator gets one message per start, per timer (a sleep, a retry delay, a condition's
  next check) and per wake-up from outside (a resume, a callback's completion, a child's end);
- SQL statements: the start's insert, an orchestrator pass's acquire and finish, three per
  queued RPC attempt (claim, result, the pass that follows), two per chained one, one per
  inline attempt, two per sleep, one per outside completion;
- timers longer than 15 minutes (SQS's longest delay) go through EventBridge Scheduler.

These rules reproduce the benchmark's measured onboarding run exactly (6 invocations, 6
messages, 21 statements; ``tests/functional/console/test_cost.py``). They are upper bounds
where AWS may batch (up to 10 orchestrator messages per invocation, up to 10 sends per request).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta

from ..core import StepAttempt, StepKind, StepStatus

__all__ = ["CostModel", "RunCost", "RunCounts", "count_run", "run_cost"]

SQS_MAX_DELAY = timedelta(minutes=15)
"""Timers up to this long are delayed SQS messages; longer ones are Scheduler schedules."""

_CODE_KINDS = frozenset({StepKind.RPC, StepKind.INLINE})
_OUTSIDE_KINDS = frozenset({StepKind.SUSPEND, StepKind.CALLBACK, StepKind.CHILD})
_FINISHED = frozenset({StepStatus.SUCCEEDED, StepStatus.FAILED})


@dataclass(frozen=True, slots=True)
class CostModel:
    """US East (N. Virginia) list prices in dollars and what the measurements cannot tell.

    The defaults are ``bench/cost_model.py``'s ``Prices`` and ``Assumptions`` (and
    docs/performance.md); override any of them by name, e.g.
    ``CostModel(db_io=0, memory_gb=1.0)`` for Aurora I/O-Optimized and 1 GB functions.
    """

    lambda_request: float = 0.20 / 1e6
    """Per Lambda invocation."""
    lambda_gb_second: float = 0.0000133334
    """Per GB-second of Lambda duration on arm64 (the template's architecture)."""
    sqs_request: float = 0.40 / 1e6
    """Per SQS standard-queue request."""
    db_io: float = 0.20 / 1e6
    """Per Aurora (Standard) I/O request; every SQL statement is counted as one."""
    scheduler_invocation: float = 1.00 / 1e6
    """Per EventBridge Scheduler invocation (a timer longer than 15 minutes)."""
    memory_gb: float = 0.5
    """The functions' memory: ``template.yaml``'s ``MemorySize: 512``."""
    invocation_ms: float = 12.0
    """lambda-flow's own time per invocation (the benchmark's onboarding handlers: 9-19 ms)."""
    db_rtt_ms: float = 1.0
    """One SQL round trip from Lambda to Aurora through RDS Proxy, same AZ."""
    sqs_call_ms: float = 15.0
    """One SQS API call from Lambda (SendMessage / SendMessageBatch)."""
    event_source_requests: float = 2.0
    """SQS requests the Lambda event source makes per delivered message (receive, delete)."""

    @classmethod
    def with_overrides(cls, overrides: dict[str, float]) -> CostModel:
        """The default model with the named fields replaced.

        Raises:
            ValueError: a name that is not a field, or a negative value.
        """
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise ValueError(
                f"unknown cost parameter {', '.join(unknown)}; expected one of "
                + ", ".join(sorted(names))
            )
        negative = sorted(name for name, value in overrides.items() if value < 0)
        if negative:
            raise ValueError(f"cost parameters must not be negative: {', '.join(negative)}")
        return cls(**{name: float(value) for name, value in overrides.items()})


@dataclass(frozen=True, slots=True)
class RunCounts:
    """What a run made AWS do, derived from its history (see the module's rules)."""

    step_messages: int = 0
    """RPC attempts sent to the step queue (one StepWorker invocation each)."""
    chained_steps: int = 0
    """RPC attempts a worker ran right after the step before (no message, no invocation)."""
    orchestrator_messages: int = 0
    """The start, timers and wake-ups from outside (one Orchestrator invocation each)."""
    timers: int = 0
    """Sleeps, retry delays and condition checks waited for (included in the above)."""
    scheduler_calls: int = 0
    """Timers longer than 15 minutes, set as one-time EventBridge Scheduler schedules."""
    sql_statements: int = 0
    """Statements sent to Postgres (each priced as one I/O request)."""
    code_ms: float = 0.0
    """Time the steps' own code ran (RPC and inline attempts with both ends recorded)."""

    @property
    def invocations(self) -> int:
        """Lambda invocations: one per delivered message."""
        return self.step_messages + self.orchestrator_messages

    @property
    def sqs_sends(self) -> int:
        """Messages sent (by lambda-flow or, for long timers, by Scheduler)."""
        return self.step_messages + self.orchestrator_messages


@dataclass(frozen=True, slots=True)
class RunCost:
    """A run's counts and what they cost, by item, in dollars."""

    counts: RunCounts
    model: CostModel
    sqs: float
    lambda_requests: float
    lambda_duration: float
    database: float
    scheduler: float
    billed_ms: float
    """Lambda duration billed, in milliseconds (all invocations)."""

    @property
    def total(self) -> float:
        """The run's cost in dollars."""
        return (
            self.sqs
            + self.lambda_requests
            + self.lambda_duration
            + self.database
            + (self.scheduler)
        )

    def items(self) -> list[tuple[str, str, float]]:
        """``(item, what was counted, dollars)`` rows, as the console and the CLI print them."""
        c = self.counts
        return [
            ("SQS", f"{c.sqs_sends} messages sent, {c.invocations} delivered", self.sqs),
            ("Lambda requests", f"{c.invocations} invocations", self.lambda_requests),
            (
                "Lambda duration",
                f"{self.billed_ms:,.0f} ms at {self.model.memory_gb:g} GB",
                self.lambda_duration,
            ),
            ("Database I/O", f"{c.sql_statements} SQL statements", self.database),
            ("EventBridge Scheduler", f"{c.scheduler_calls} schedules", self.scheduler),
        ]

    def to_json(self) -> dict[str, object]:
        """The counts and the dollars as JSON-safe data (``lambda-flow status --cost``)."""
        c = self.counts
        return {
            "total_usd": self.total,
            "per_million_runs_usd": self.total * 1e6,
            "items_usd": {
                "sqs": self.sqs,
                "lambda_requests": self.lambda_requests,
                "lambda_duration": self.lambda_duration,
                "database": self.database,
                "scheduler": self.scheduler,
            },
            "counts": {
                "invocations": c.invocations,
                "step_messages": c.step_messages,
                "chained_steps": c.chained_steps,
                "orchestrator_messages": c.orchestrator_messages,
                "timers": c.timers,
                "scheduler_calls": c.scheduler_calls,
                "sql_statements": c.sql_statements,
                "billed_ms": round(self.billed_ms, 3),
                "code_ms": round(c.code_ms, 3),
            },
        }


class _Tally:
    """The counts as :func:`count_run` adds them up, one attempt at a time."""

    def __init__(self) -> None:
        self.step_messages = self.chained_steps = self.timers = self.scheduler_calls = 0
        self.orchestrator_messages = 1  # the start
        self.statements = 1  # the start's insert
        self.code_ms = 0.0

    def timer(self, wait: timedelta | None) -> None:
        self.timers += 1
        self.orchestrator_messages += 1
        if wait is not None and wait > SQS_MAX_DELAY:
            self.scheduler_calls += 1

    def code(self, attempt: StepAttempt, before: StepAttempt | None) -> None:
        self.code_ms += attempt.duration_ms or 0.0
        if attempt.attempt > 1:  # a retry: its delay was a timer
            finished = None if before is None else before.finished_at
            self.timer(None if finished is None else attempt.created_at - finished)
        if attempt.kind is StepKind.INLINE:
            self.statements += 1
        elif attempt.started_at is not None and attempt.started_at == attempt.created_at:
            self.chained_steps += 1  # claimed by the pass that scheduled it
            self.statements += 2  # its result, the pass after it
        else:
            self.step_messages += 1
            self.statements += 3  # the claim, its result, the pass after it

    def wait(self, attempt: StepAttempt) -> None:
        finished = attempt.status in _FINISHED
        if attempt.kind is StepKind.SLEEP:
            self.statements += 2  # recorded, then completed by the pass it wakes
            if finished:
                self.timer((attempt.finished_at or attempt.created_at) - attempt.created_at)
        elif attempt.kind is StepKind.CONDITION:
            self.statements += 1
            if attempt.attempt > 1:  # the wait before this check was a timer
                self.timer(None)
        elif attempt.kind in _OUTSIDE_KINDS:
            self.statements += 1
            if finished:  # woken from outside: one statement, one message
                self.statements += 1
                self.orchestrator_messages += 1

    def counts(self) -> RunCounts:
        return RunCounts(
            step_messages=self.step_messages,
            chained_steps=self.chained_steps,
            orchestrator_messages=self.orchestrator_messages,
            timers=self.timers,
            scheduler_calls=self.scheduler_calls,
            # each orchestration pass's acquire and finish
            sql_statements=self.statements + 2 * self.orchestrator_messages,
            code_ms=self.code_ms,
        )


def count_run(history: Sequence[StepAttempt], *, since: datetime | None = None) -> RunCounts:
    """The counts of a run from its history (every attempt, oldest first).

    Args:
        history: ``service.get_run_history(run_id)``.
        since: the run's ``created_at``: attempts recorded before it were copied from the run
            a fork started from (their cost was that run's) and are left out.
    """
    tally = _Tally()
    previous: dict[str, StepAttempt] = {}
    for attempt in _by_step_order(a for a in history if since is None or a.created_at >= since):
        before = previous.get(attempt.step_key)
        previous[attempt.step_key] = attempt
        if attempt.kind in _CODE_KINDS:
            tally.code(attempt, before)
        else:
            tally.wait(attempt)
    return tally.counts()


def _by_step_order(attempts: Iterable[StepAttempt]) -> list[StepAttempt]:
    """Attempts with each step's in attempt order (the history is oldest first already)."""
    return sorted(attempts, key=lambda a: (a.step_key, a.attempt))


def run_cost(counts: RunCounts, model: CostModel | None = None) -> RunCost:
    """Price ``counts`` with ``model`` (the benchmark's prices by default)."""
    m = model or CostModel()
    sends = counts.sqs_sends
    # The start's insert and send run in the caller (the Api function, or anyone's process):
    # left out of the duration, as API Gateway and the caller are (bench/cost_model.py).
    billed_ms = (
        counts.invocations * m.invocation_ms
        + max(counts.sql_statements - 1, 0) * m.db_rtt_ms
        + max(sends - 1, 0) * m.sqs_call_ms
        + counts.code_ms
    )
    return RunCost(
        counts=counts,
        model=m,
        sqs=(sends + counts.invocations * m.event_source_requests) * m.sqs_request,
        lambda_requests=counts.invocations * m.lambda_request,
        lambda_duration=billed_ms / 1000 * m.memory_gb * m.lambda_gb_second,
        database=counts.sql_statements * m.db_io,
        scheduler=counts.scheduler_calls * m.scheduler_invocation,
        billed_ms=billed_ms,
    )

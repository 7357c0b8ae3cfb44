"""The application the chaos suite deploys (``LAMBDA_FLOW_APP=chaos.app:flow``).

Every step, RPC or inline, writes one row per execution to ``<schema>_fx.executions`` before
doing anything else, with a flag saying whether the engine had *already committed* that step
(a finished attempt at or after this one, or any success) when the execution began. The audit
counts those flagged rows as committed steps re-run (invariant 1) and the other repeated
executions of one attempt as uncommitted re-runs (at-least-once, allowed).

Every output is a pure function of the input (:func:`expected`), so the audit can tell a wrong
output. Poison steps end their process with ``os._exit`` when ``CHAOS_POISON=1`` (the chaos
workers); elsewhere (a fuzzed ``lambda-flow dev``) they raise instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import psycopg
from psycopg import sql
from pydantic import BaseModel, Field, field_validator

from lambda_flow import (
    Flow,
    RetryPolicy,
    WorkflowCancelled,
    WorkflowContext,
    current_step,
    parse_duration,
)

flow = Flow()

RETRIES = 3
"""Every step may fail this often: a worker killed mid-step costs an attempt (four in all)."""

ENV_POISON = "CHAOS_POISON"
"""``1``: poison steps end their process (``os._exit``) instead of raising."""
POISON_EXIT_CODE = 86


# -- recording executions ---------------------------------------------------------------------
def effects_schema(schema: str) -> str:
    """The schema holding the execution log next to the engine's ``schema``."""
    return f"{schema}_fx"


EXECUTIONS_DDL = """
CREATE SCHEMA IF NOT EXISTS {fx};
CREATE TABLE IF NOT EXISTS {fx}.executions (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id           uuid        NOT NULL,
    step_key         text        NOT NULL,
    attempt          integer     NOT NULL,
    pid              integer     NOT NULL,
    committed_before boolean     NOT NULL,
    outcome          text,
    kind             text        NOT NULL DEFAULT 'step',
    once             boolean     NOT NULL DEFAULT false,
    at               timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE TABLE IF NOT EXISTS {fx}.callbacks (
    callback_id      text        PRIMARY KEY,
    run_id           uuid        NOT NULL,
    name             text        NOT NULL,
    at               timestamptz NOT NULL DEFAULT clock_timestamp()
)
"""

_RECORD = """
INSERT INTO {fx}.executions (run_id, step_key, attempt, pid, committed_before, kind, once)
SELECT %(run_id)s, %(key)s, %(attempt)s, %(pid)s, EXISTS (
    SELECT 1 FROM {schema}.step_attempts
    WHERE run_id = %(run_id)s AND step_key = %(key)s
      AND status IN ('succeeded', 'failed') AND attempt >= %(attempt)s
) OR EXISTS (
    SELECT 1 FROM {schema}.steps
    WHERE run_id = %(run_id)s AND step_key = %(key)s AND status = 'succeeded'
), %(kind)s, %(once)s
RETURNING id
"""
_HANDED = """
INSERT INTO {fx}.callbacks (callback_id, run_id, name) VALUES (%(id)s, %(run_id)s, %(name)s)
ON CONFLICT (callback_id) DO NOTHING
"""
_OUTCOME = "UPDATE {fx}.executions SET outcome = %(outcome)s WHERE id = %(id)s"


class _Recorder:
    """One autocommit connection per process, reopened once when it died (a restart)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._conn: psycopg.Connection[Any] | None = None

    def _execute(self, template: str, params: dict[str, Any]) -> Any:
        """Run one statement of the log; a dead connection (a restart) is replaced once."""
        schema = os.environ.get("LAMBDA_FLOW_SCHEMA", "lambda_flow")
        query = sql.SQL(template).format(
            fx=sql.Identifier(effects_schema(schema)), schema=sql.Identifier(schema)
        )
        with self._lock:
            for attempt in (1, 2):
                if self._conn is None or self._conn.closed:
                    url = os.environ["LAMBDA_FLOW_DATABASE_URL"]
                    self._conn = psycopg.connect(url, autocommit=True, connect_timeout=5)
                try:
                    cursor = self._conn.execute(query, params)
                    return cursor.fetchone() if cursor.description else None
                except psycopg.OperationalError:
                    self._conn = None
                    if attempt == 2:
                        raise
        return None

    def handed(self, callback_id: str, name: str) -> None:
        """Hand ``callback_id`` to the "provider" (the harness reads ``{fx}.callbacks``)."""
        step = current_step()
        if step is None:
            raise RuntimeError("a chaos step ran outside any step context")
        self._execute(_HANDED, {"id": callback_id, "run_id": step.run_id, "name": name})

    @contextlib.contextmanager
    def execution(self, *, kind: str = "step", once: bool = False) -> Iterator[int]:
        """Log the current step's execution around its code; yield its attempt number.

        The row's ``outcome`` is ``returned`` or ``raised``; it stays empty when the process
        died (or the step stalled) in between. ``kind``: ``step``, ``poll`` (one check of a
        ``wait_for_condition``: each check is an attempt) or ``cleanup`` (run on cancellation);
        ``once``: the step is ``at_most_once`` (an attempt must never run twice).
        """
        step = current_step()
        if step is None:
            raise RuntimeError("a chaos step ran outside any step context")
        row = self._execute(
            _RECORD,
            {
                "run_id": step.run_id,
                "key": step.step_id,
                "attempt": step.attempt,
                "pid": os.getpid(),
                "kind": kind,
                "once": once,
            },
        )
        outcome = "raised"
        try:
            yield step.attempt
            outcome = "returned"
        finally:
            with contextlib.suppress(psycopg.Error):
                self._execute(_OUTCOME, {"outcome": outcome, "id": row[0]})


_recorder = _Recorder()


def _poison() -> None:
    if os.environ.get(ENV_POISON) == "1":
        os._exit(POISON_EXIT_CODE)
    raise RuntimeError("poison step (process exit disabled here)")


# -- functions (RPC steps) ----------------------------------------------------------------------
class Item(BaseModel):
    """One RPC step's input."""

    value: int
    poison: bool = False
    """End the worker process on every attempt."""
    fail_first: bool = False
    """Fail the first attempt (a flaky dependency)."""
    pause_ms: int = Field(default=0, ge=0, le=3000)
    """Time spent inside the step, so stalls and kills land mid-step."""
    once: bool = False
    """The step is ``at_most_once`` (logged as such)."""
    crash_first: bool = False
    """End the worker process during the first attempt (an interrupted at-most-once attempt)."""


def work_value(value: int) -> int:
    """What :func:`work` returns for ``value``."""
    return value * 2 + 1


@flow.function
def work(item: Item) -> int:
    """A side-effecting step: logged, optionally slow, flaky or poisonous."""
    with _recorder.execution(once=item.once) as attempt:
        if item.poison or (item.crash_first and attempt == 1):
            _poison()
        if item.pause_ms:
            time.sleep(item.pause_ms / 1000)
        if item.fail_first and attempt == 1:
            raise ConnectionError("flaky dependency: first attempt fails")
        return work_value(item.value)


def inline_value(value: int) -> int:
    """What an inline step returns for ``value``."""
    return value * 3


def _inline(value: int) -> Callable[[], int]:
    def step() -> int:
        with _recorder.execution():
            return inline_value(value)

    return step


def _inline_poison() -> int:
    with _recorder.execution():
        _poison()
        return 0


# -- workflows ------------------------------------------------------------------------------------
class ChainIn(BaseModel):
    """Input of :func:`chain`."""

    seed: int
    nap: str = "1s"
    pause_ms: int = Field(default=0, ge=0, le=3000)

    @field_validator("nap")
    @classmethod
    def _check_nap(cls, value: str) -> str:
        parse_duration(value)
        return value


@flow.workflow
async def chain(wf: WorkflowContext, data: ChainIn) -> dict[str, int]:
    """RPC step, inline step, sleep, then a flaky RPC step with retries."""
    a: int = await wf.do(
        "A", "work", Item(value=data.seed, pause_ms=data.pause_ms), retries=RETRIES
    )
    b: int = await wf.do("B", _inline(a + 1), retries=RETRIES)
    await wf.sleep("Nap", data.nap)
    c: int = await wf.do(
        "C", "work", Item(value=b, fail_first=True), retries=RETRIES, retry_delay="500ms"
    )
    return {"a": a, "b": b, "c": c}


class FanIn(BaseModel):
    """Input of :func:`fanout`."""

    seed: int
    width: int = Field(default=4, ge=1, le=12)
    pause_ms: int = Field(default=0, ge=0, le=3000)


@flow.workflow
async def fanout(wf: WorkflowContext, data: FanIn) -> dict[str, Any]:
    """A gather of RPC steps, an inline sum, a sleep and a last RPC step."""
    parts: list[int] = list(
        await asyncio.gather(
            *(
                wf.do(
                    "Part",
                    "work",
                    Item(value=data.seed + i, pause_ms=data.pause_ms),
                    retries=RETRIES,
                )
                for i in range(data.width)
            )
        )
    )
    total: int = await wf.do("Sum", _inline(sum(parts)), retries=RETRIES)
    await wf.sleep("Settle", "1s")
    final: int = await wf.do("Final", "work", Item(value=total), retries=RETRIES)
    return {"parts": parts, "total": total, "final": final}


class RaceIn(BaseModel):
    """Input of :func:`race`."""

    seed: int
    nap: str = "2s"

    @field_validator("nap")
    @classmethod
    def _check_nap(cls, value: str) -> str:
        parse_duration(value)
        return value


async def _left(wf: WorkflowContext, seed: int) -> int:
    first: int = await wf.do("Left 1", "work", Item(value=seed), retries=RETRIES)
    second: int = await wf.do("Left 2", "work", Item(value=first), retries=RETRIES)
    return second


@flow.workflow
async def race(wf: WorkflowContext, data: RaceIn) -> int:
    """Two RPC steps in one gather branch while the other branch sleeps."""
    left, _ = await asyncio.gather(_left(wf, data.seed), wf.sleep("Right nap", data.nap))
    return int(left)


class SeedIn(BaseModel):
    """Input of the small workflows."""

    seed: int


@flow.workflow
async def opener(wf: WorkflowContext, data: SeedIn) -> int:
    """Inline step and sleep first, so orchestrator passes (not step workers) write steps,
    set timers and schedule RPC steps."""
    first: int = await wf.do("Open", _inline(data.seed), retries=RETRIES)
    await wf.sleep("Pause", "1s")
    second: int = await wf.do("Then", "work", Item(value=first), retries=RETRIES)
    third: int = await wf.do("Close", _inline(second), retries=RETRIES)
    return third


@flow.workflow
async def approval(wf: WorkflowContext, data: SeedIn) -> int:
    """An RPC step, a suspension (the harness resumes it), another RPC step."""
    prepared: int = await wf.do("Prepare", "work", Item(value=data.seed), retries=RETRIES)
    await wf.suspend("Approve")
    committed: int = await wf.do("Commit", "work", Item(value=prepared), retries=RETRIES)
    return committed


@flow.workflow
async def poison(wf: WorkflowContext, data: SeedIn) -> int:
    """An RPC step whose worker process dies on every attempt (two retries allowed)."""
    before: int = await wf.do("Before", "work", Item(value=data.seed), retries=RETRIES)
    result: int = await wf.do("Poison", "work", Item(value=before, poison=True), retries=2)
    return result


@flow.workflow
async def poison_inline(wf: WorkflowContext, data: SeedIn) -> int:
    """An inline step that ends the orchestrator's process on every attempt."""
    result: int = await wf.do("Poison", _inline_poison, retries=1)
    return result


class CallbackTask(BaseModel):
    """What :func:`hand_off` receives from ``wait_for_callback``."""

    callback_id: str
    data: dict[str, Any]


@flow.function
def hand_off(task: CallbackTask) -> None:
    """The submitter of a ``wait_for_callback``: hands the callback id to the "provider"."""
    with _recorder.execution():
        _recorder.handed(task.callback_id, str(task.data["name"]))


def _inline_hand_off(callback_id: str, name: str) -> Callable[[], None]:
    def step() -> None:
        with _recorder.execution():
            _recorder.handed(callback_id, name)

    return step


def _inline_once(value: int, *, crash: bool = False) -> Callable[[], int]:
    """An inline ``at_most_once`` step (a charge with no idempotency key); ``crash``: it ends
    the orchestrator's process during its first attempt."""

    def step() -> int:
        with _recorder.execution(once=True) as attempt:
            if crash and attempt == 1:
                _poison()
            return inline_value(value)

    return step


def _inline_cleanup(value: int) -> Callable[[], int]:
    """The compensation a cancelled run runs (``at_most_once`` too)."""

    def step() -> int:
        with _recorder.execution(kind="cleanup", once=True):
            return -value

    return step


def _inline_slow(value: int) -> Callable[[], Awaitable[int]]:
    """An async inline step under a 1 s timeout: its first attempt hangs past it (it is
    cancelled with ``StepTimedOut``, and the retry policy runs the next)."""

    async def step() -> int:
        with _recorder.execution() as attempt:
            if attempt == 1:
                await asyncio.sleep(SETTLE_TIMEOUT_S * 3)
            return inline_value(value)

    return step


SETTLE_TIMEOUT_S = 1


def _check(state: dict[str, int]) -> dict[str, int]:
    """One poll of :func:`webhook`'s condition: a counter that reaches :data:`POLLS`."""
    with _recorder.execution(kind="poll"):
        return {"n": int(state["n"]) + 1, "v": int(state["v"])}


def _ready(state: dict[str, int]) -> bool:
    return int(state["n"]) >= POLLS


POLLS = 3
"""Checks of :func:`webhook`'s condition until it holds."""
CALLBACK_TIMEOUT = "600s"
"""Callbacks never time out in a scenario: the harness completes them (or cancels the run)."""
POLICY = RetryPolicy(
    max_attempts=RETRIES + 1, initial_delay="200ms", backoff=2.0, max_delay="1s", jitter="full"
)


class WebhookIn(BaseModel):
    """Input of :func:`webhook`; ``cancel``: the harness cancels the run while it waits;
    ``crash``: the first attempt of each at-most-once step ends its process."""

    seed: int
    cancel: bool = False
    crash: bool = False


def callback_payload(seed: int, name: str) -> dict[str, Any]:
    """What the harness completes callback ``name`` of a run on ``seed`` with."""
    return {"amount": seed * 10 + len(name), "name": name}


@flow.workflow
async def webhook(wf: WorkflowContext, data: WebhookIn) -> dict[str, Any]:
    """Issue 12's primitives: an at-most-once charge; a callback (``wf.callback``, handed off by
    an inline step) and a ``wait_for_callback`` (an RPC submitter), both completed over HTTP by
    the harness, or the run cancelled while it waits (a cleanup step refunds); then an async
    inline step with a retry policy and a timeout (its first attempt times out), an RPC
    at-most-once step with a retry policy (its first attempt fails, or ends its process with
    ``crash`` as the charge's does) and a ``wait_for_condition`` poll."""
    charged: int = await wf.do(
        "Charge", _inline_once(data.seed, crash=data.crash), at_most_once=True, retries=RETRIES
    )
    receipt_cb = await wf.callback("Receipt", timeout=CALLBACK_TIMEOUT)
    await wf.do("Hand off", _inline_hand_off(receipt_cb.id, "Receipt"), retries=RETRIES)
    try:
        paid: dict[str, Any] = await wf.wait_for_callback(
            "Payment", "hand_off", {"name": "Payment"}, timeout=CALLBACK_TIMEOUT, retries=RETRIES
        )
        receipt: dict[str, Any] = await receipt_cb.result()
    except WorkflowCancelled:
        await wf.do("Refund", _inline_cleanup(charged), at_most_once=True, retries=RETRIES)
        raise
    total = int(paid["amount"]) + int(receipt["amount"])
    settled: int = await wf.do(
        "Settle", _inline_slow(total), retry=POLICY, timeout=f"{SETTLE_TIMEOUT_S}s"
    )
    ship = Item(value=settled, fail_first=not data.crash, crash_first=data.crash, once=True)
    shipped: int = await wf.do("Ship", "work", ship, retry=POLICY, at_most_once=True)
    ready: dict[str, int] = await wf.wait_for_condition(
        "Ready", _check, initial_state={"n": 0, "v": shipped}, until=_ready, interval="300ms",
        backoff=1.5, max_interval="1s", max_attempts=POLLS + 2,
    )  # fmt: skip
    return {"charged": charged, "total": total, "settled": settled, "shipped": shipped,
            "ready": ready}  # fmt: skip


# -- issue 13: a child workflow and a map -------------------------------------------------------
MAP_CONCURRENCY = 2
"""The most items of :func:`compose`'s map in flight at once."""
CHILD_STEP = "Provision"
""":func:`compose`'s child step (the child run's ``parent_step``)."""
MAP_STEP = "Items"
""":func:`compose`'s map step: its items are keyed ``Items/<index>``."""


@flow.function(retry=POLICY)
def map_work(item: Item) -> int:
    """A map item (an RPC step; the map's items take their function's retry policy, so a
    worker killed mid-item costs an attempt, not the item)."""
    with _recorder.execution():
        if item.pause_ms:
            time.sleep(item.pause_ms / 1000)
        return work_value(item.value)


class ProvisionIn(BaseModel):
    """Input of :func:`provision`."""

    seed: int
    pause_ms: int = Field(default=0, ge=0, le=3000)


@flow.workflow
async def provision(wf: WorkflowContext, data: ProvisionIn) -> int:
    """The child: two RPC steps (the second's worker usually ends the child, and wakes its
    parent)."""
    created: int = await wf.do(
        "Create", "work", Item(value=data.seed, pause_ms=data.pause_ms), retries=RETRIES
    )
    configured: int = await wf.do("Configure", "work", Item(value=created), retries=RETRIES)
    return configured


class ComposeIn(BaseModel):
    """Input of :func:`compose`."""

    seed: int
    items: int = Field(default=5, ge=1, le=12)
    pause_ms: int = Field(default=0, ge=0, le=3000)


@flow.workflow
async def compose(wf: WorkflowContext, data: ComposeIn) -> dict[str, Any]:
    """Issue 13's primitives: a child run started first (it runs while the parent maps, and its
    end wakes the parent), a map with ``max_concurrency`` over RPC items, then the child's
    result and a last RPC step."""
    child = await wf.start_child(
        CHILD_STEP, provision, {"seed": data.seed, "pause_ms": data.pause_ms}
    )
    items = [{"value": data.seed + i, "pause_ms": data.pause_ms} for i in range(data.items)]
    batch = await wf.map(MAP_STEP, items, "map_work", max_concurrency=MAP_CONCURRENCY)
    workspace: int = await child.result()
    mapped = [int(r) if r is not None else None for r in batch.results]
    total = workspace + sum(r for r in mapped if r is not None)
    final: int = await wf.do("Report", "work", Item(value=total), retries=RETRIES)
    return {"workspace": workspace, "items": mapped, "final": final}


# -- what each run must come to --------------------------------------------------------------------
def _expected_chain(data: dict[str, Any]) -> dict[str, int]:
    a = work_value(int(data["seed"]))
    b = inline_value(a + 1)
    return {"a": a, "b": b, "c": work_value(b)}


def _expected_fanout(data: dict[str, Any]) -> dict[str, Any]:
    seed, width = int(data["seed"]), int(data.get("width", 4))
    parts = [work_value(seed + i) for i in range(width)]
    total = inline_value(sum(parts))
    return {"parts": parts, "total": total, "final": work_value(total)}


def _expected_race(data: dict[str, Any]) -> int:
    return work_value(work_value(int(data["seed"])))


def _expected_opener(data: dict[str, Any]) -> int:
    return inline_value(work_value(inline_value(int(data["seed"]))))


def _expected_approval(data: dict[str, Any]) -> int:
    return work_value(work_value(int(data["seed"])))


def _expected_webhook(data: dict[str, Any]) -> dict[str, Any]:
    seed = int(data["seed"])
    total = sum(int(callback_payload(seed, n)["amount"]) for n in ("Payment", "Receipt"))
    settled = inline_value(total)
    shipped = work_value(settled)
    return {"charged": inline_value(seed), "total": total, "settled": settled,
            "shipped": shipped, "ready": {"n": POLLS, "v": shipped}}  # fmt: skip


def _expected_compose(data: dict[str, Any]) -> dict[str, Any]:
    seed = int(data["seed"])
    workspace = work_value(work_value(seed))
    items = [work_value(seed + i) for i in range(int(data.get("items", 5)))]
    return {"workspace": workspace, "items": items, "final": work_value(workspace + sum(items))}


def _expected_provision(data: dict[str, Any]) -> int:
    return work_value(work_value(int(data["seed"])))


EXPECTED: dict[str, Callable[[dict[str, Any]], Any]] = {
    "chain": _expected_chain,
    "fanout": _expected_fanout,
    "race": _expected_race,
    "approval": _expected_approval,
    "opener": _expected_opener,
    "webhook": _expected_webhook,
    "compose": _expected_compose,
    "provision": _expected_provision,
}
"""Workflows that must complete, and their output for an input."""
POISONED = frozenset({"poison", "poison_inline"})
"""Workflows that must end ``failed`` (their step kills its process every time)."""


def expected(workflow: str, data: dict[str, Any]) -> tuple[str, Any]:
    """The final status and output a run of ``workflow`` on ``data`` must come to."""
    if workflow in POISONED:
        return "failed", None
    if workflow == "webhook" and data.get("cancel"):
        return "cancelled", None
    return "completed", EXPECTED[workflow](data)

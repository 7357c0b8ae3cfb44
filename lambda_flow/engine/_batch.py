"""``wf.map`` and ``wf.parallel``: run items as scopes (or RPC steps) under a limit and a policy.

A batch is itself a scope (its key ``name``, its items keyed ``name/<item name>``) whose result
is the batch's outcome, so a replay of a finished batch returns it without running any item.
While a batch is unfinished, a replay starts again every item the history holds, whatever the
completion policy says now, so the items it starts are the ones recorded.

In remote mode a map over a registered function is *chained* (:class:`_ChainedBatch`): the pass
records a plan (the items, the limit, the policy) with its first items, and from then on each
item's worker starts the next item in the statement that stores its result (migration 0011).
The workflow body is replayed twice for the whole batch (at its start and at its end) instead of
once per item, so a map of 10,000 items costs work that grows linearly with them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from ..core import (
    ANY_CODEC,
    BatchFailed,
    ErrorInfo,
    InvalidOption,
    StepFailed,
    StepKind,
    StepStatus,
    plain,
)
from ..store.base import BatchPlan, StepRecord
from ._retry import step_policy

if TYPE_CHECKING:
    from ._flow import FunctionDef
    from ._replay import OrchestrationPass

T = TypeVar("T")

CompletionReason = Literal["all_completed", "min_successful_reached", "failure_tolerance_exceeded"]

_ItemCall = Callable[[], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Completion:
    """When a batch stops scheduling items (AWS's completion config).

    Once ``min_successful`` items succeeded, or once failures exceed the tolerance
    (``failures > tolerated_failures``, or ``failures / len(items) > tolerated_failure_ratio``),
    no further item starts; the items already running finish and are recorded. All None (the
    default): wait for every item and tolerate any failure.
    """

    min_successful: int | None = None
    tolerated_failures: int | None = None
    tolerated_failure_ratio: float | None = None

    def __post_init__(self) -> None:
        if self.min_successful is not None and self.min_successful < 0:
            raise InvalidOption("min_successful", f"must be 0 or more, got {self.min_successful}")
        if self.tolerated_failures is not None and self.tolerated_failures < 0:
            raise InvalidOption(
                "tolerated_failures", f"must be 0 or more, got {self.tolerated_failures}"
            )
        ratio = self.tolerated_failure_ratio
        if ratio is not None and not 0 <= ratio <= 1:
            raise InvalidOption("tolerated_failure_ratio", f"must be in [0, 1], got {ratio}")

    def exceeded(self, failures: int, total: int) -> bool:
        """Whether ``failures`` out of ``total`` items exceed the tolerance."""
        if self.tolerated_failures is not None and failures > self.tolerated_failures:
            return True
        ratio = self.tolerated_failure_ratio
        return ratio is not None and total > 0 and failures / total > ratio

    def stops(self, successes: int, failures: int, total: int) -> bool:
        """Whether the batch stops scheduling items now."""
        reached = self.min_successful is not None and successes >= self.min_successful
        return reached or self.exceeded(failures, total)


class BatchResult(Generic[T]):
    """The outcome of ``wf.map`` or ``wf.parallel``: one entry per item, in index order."""

    __slots__ = ("_started", "completion_reason", "errors", "name", "names", "results")

    def __init__(
        self,
        name: str,
        results: list[T | None],
        errors: list[ErrorInfo | None],
        names: list[str],
        completion_reason: CompletionReason,
        *,
        started: int | None = None,
    ) -> None:
        self.name = name
        """The batch's step key."""
        self.results = results
        """Each item's result; None where it failed or never started."""
        self.errors = errors
        """Each item's error; None where it succeeded or never started."""
        self.names = names
        """Each item's name (its key under the batch's: ``<batch>/<name>``)."""
        self.completion_reason = completion_reason
        """Why the batch ended: ``"all_completed"``, ``"min_successful_reached"`` or
        ``"failure_tolerance_exceeded"``."""
        self._started = len(names) if started is None else started
        """Items start in index order: the first ``_started`` ran."""

    def __repr__(self) -> str:
        return (
            f"BatchResult({self.name!r}, {len(self.names)} items, "
            f"{len(self.failed())} failed, {self.completion_reason})"
        )

    def succeeded(self) -> list[tuple[int, T]]:
        """``(index, result)`` of each item that succeeded."""
        pairs = zip(self.results[: self._started], self.errors, strict=False)
        return [(i, r) for i, (r, e) in enumerate(pairs) if e is None]  # type: ignore[misc]

    def failed(self) -> list[tuple[int, ErrorInfo]]:
        """``(index, error)`` of each item that failed."""
        return [(i, e) for i, e in enumerate(self.errors) if e is not None]

    @property
    def has_failure(self) -> bool:
        """Whether any item failed."""
        return any(e is not None for e in self.errors)

    def values(self) -> list[T | None]:
        """The results, in index order (None for items that never started).

        Raises:
            BatchFailed: an item failed (its ``failures`` lists them).
        """
        failures = self.failed()
        if failures:
            raise BatchFailed(self.name, list(failures))
        return list(self.results)

    def to_json(self) -> dict[str, Any]:
        """The outcome as recorded (the batch step's result)."""
        return {
            "results": self.results,
            "errors": [None if e is None else e.model_dump(mode="json") for e in self.errors],
            "names": self.names,
            "completion_reason": self.completion_reason,
            "started": self._started,
        }


def batch_from_json(name: str, data: Mapping[str, Any]) -> BatchResult[Any]:
    """The :class:`BatchResult` of a recorded batch outcome."""
    errors = [None if e is None else ErrorInfo.model_validate(e) for e in data["errors"]]
    return BatchResult(
        name, list(data["results"]), errors, list(data["names"]), data["completion_reason"],
        started=data["started"],
    )  # fmt: skip


def check_limit(max_concurrency: int | None) -> int | None:
    """``max_concurrency`` checked: None (no limit) or at least 1."""
    if max_concurrency is None:
        return None
    if isinstance(max_concurrency, bool) or not isinstance(max_concurrency, int):
        raise InvalidOption("max_concurrency", f"must be an int, got {max_concurrency!r}")
    if max_concurrency < 1:
        raise InvalidOption("max_concurrency", f"must be 1 or more, got {max_concurrency}")
    return max_concurrency


def _check_names(names: list[str]) -> list[str]:
    seen: set[str] = set()
    for name in names:
        if not isinstance(name, str) or not name:
            raise InvalidOption("item_name", f"an item's name must be a non-empty string: {name!r}")
        if name in seen:
            raise InvalidOption("item_name", f"two items are named {name!r}")
        seen.add(name)
    return names


class _Batch:
    """Runs one batch's items inside the batch's scope, and records nothing itself."""

    def __init__(
        self,
        orchestration: OrchestrationPass,
        calls: Sequence[_ItemCall],
        names: list[str],
        limit: int | None,
        completion: Completion,
    ) -> None:
        self.orchestration = orchestration
        self.calls = calls
        self.names = names
        self.limit = len(calls) if limit is None else limit
        self.completion = completion
        total = len(calls)
        self.results: list[Any] = [None] * total
        self.errors: list[ErrorInfo | None] = [None] * total
        self.successes = 0
        self.failures = 0
        self.started = 0

    async def run(self, key: str) -> dict[str, Any]:
        """Start items in index order under the limit until the policy stops; wait for them."""
        recorded = self.orchestration.recorded_under(key)
        running: dict[asyncio.Task[tuple[Any, ErrorInfo | None]], int] = {}
        stopped = False
        try:
            while True:
                while self._may_start(len(running), stopped, recorded):
                    task = asyncio.create_task(self._item(self.started))
                    running[task] = self.started
                    self.started += 1
                if not running:
                    break
                done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for task in sorted(done, key=running.__getitem__):
                    self._record(running.pop(task), *task.result())
                total = len(self.calls)
                stopped = stopped or self.completion.stops(self.successes, self.failures, total)
        finally:
            for task in running:
                task.cancel()
            if running:
                await asyncio.gather(*running, return_exceptions=True)
        return self._outcome(key)

    def _may_start(self, in_flight: int, stopped: bool, recorded: set[str]) -> bool:
        index = self.started
        if index >= len(self.calls) or in_flight >= self.limit:
            return False
        # A recorded item starts whatever the policy says: the history started it.
        return not stopped or self.names[index] in recorded

    async def _item(self, index: int) -> tuple[Any, ErrorInfo | None]:
        try:
            return await self.calls[index](), None
        except StepFailed as failed:  # the step's own error, as recorded (and redacted)
            error = ErrorInfo(
                type=failed.error_type, message=failed.error_message, step_key=failed.step_key
            )
            return None, error
        except Exception as exc:  # noqa: BLE001 - an item's failure is data; signals pass
            flow = self.orchestration.engine.flow
            return None, flow.redacted(ErrorInfo.from_exception(exc))

    def _record(self, index: int, result: Any, error: ErrorInfo | None) -> None:
        if error is None:
            self.successes += 1
            self.results[index] = result
        else:
            self.failures += 1
            self.errors[index] = error

    def _outcome(self, key: str) -> dict[str, Any]:
        reason: CompletionReason
        if self.completion.exceeded(self.failures, len(self.calls)):
            reason = "failure_tolerance_exceeded"
        elif self.started == len(self.calls):
            reason = "all_completed"
        else:
            reason = "min_successful_reached"
        batch = BatchResult(
            key, self.results, self.errors, self.names, reason, started=self.started
        )
        return batch.to_json()


def _outcome_json(
    key: str,
    *,
    results: list[Any],
    errors: list[ErrorInfo | None],
    names: list[str],
    completion: Completion,
    started: int,
) -> dict[str, Any]:
    """The recorded outcome of a batch whose first ``started`` items ran."""
    failures = sum(e is not None for e in errors)
    reason: CompletionReason
    if completion.exceeded(failures, len(names)):
        reason = "failure_tolerance_exceeded"
    elif started == len(names):
        reason = "all_completed"
    else:
        reason = "min_successful_reached"
    return BatchResult(key, results, errors, names, reason, started=started).to_json()


class _ChainedBatch:
    """A remote map over a registered function whose workers start its items (see above).

    The pass that reaches it first records the plan and its first items; a pass that finds it
    unfinished only re-schedules items waiting for a retry (a retry is a pass's decision, as
    for any step) and parks; the pass after the last item settled builds the outcome from the
    item steps, in index order.
    """

    def __init__(
        self,
        orchestration: OrchestrationPass,
        function: FunctionDef,
        items: list[Any],
        names: list[str],
        *,
        limit: int | None,
        completion: Completion,
        name: str,
        fallback: Callable[[str], Awaitable[dict[str, Any]]],
    ) -> None:
        self.orchestration = orchestration
        self.fallback = fallback
        """Runs a batch recorded before chaining existed (items, no plan) as it was run."""
        self.function = function
        self.items = items
        self.names = names
        self.limit = len(items) if limit is None else limit
        self.completion = completion
        flow = orchestration.engine.flow
        self.policy = step_policy(None, None, None, function.retry, flow.default_retry)
        from ._context import scope_prefix  # _context imports this module

        self.step_name = scope_prefix.get() + name  # as a scope step's name
        self._indexes: dict[str, int] = {}

    async def run(self, key: str) -> dict[str, Any]:
        orchestration = self.orchestration
        progress = orchestration.engine.store.get_batch(orchestration.run_id, key)
        if progress is None:
            if orchestration.recorded_under(key):
                return await self.fallback(key)
            await self._start(key)
            raise AssertionError("unreachable")  # pragma: no cover - parks for good
        records = orchestration.claim_items(key, self.names, self.function.name)
        if progress.done:
            started = progress.next_index
            if all(
                r is not None and r.status in (StepStatus.SUCCEEDED, StepStatus.FAILED)
                for r in records[:started]
            ):
                return self._outcome(key, records, started)
            # Finished after this pass read its steps: the pass that follows reads them again.
            orchestration.note_changed()
        orchestration.deliver_cancel()
        await orchestration.wait_for_items(
            [r for r in records if r is not None], self._retry_spec, key=key
        )
        raise AssertionError("unreachable")  # pragma: no cover - parks for good

    async def _start(self, key: str) -> None:
        orchestration = self.orchestration
        policy = self.policy.to_json()
        first = min(self.limit, len(self.items))
        plan = BatchPlan(
            batch_key=key, target=self.function.name, names=self.names,
            items=[ANY_CODEC.dump(item) for item in self.items], concurrency=self.limit,
            started=first, position_base=0, max_attempts=self.policy.max_attempts,
            retry_delay_ms=policy["initial_delay_ms"], retry_policy=policy, timeout_ms=None,
            min_successful=self.completion.min_successful,
            tolerated_failures=self.completion.tolerated_failures,
            tolerated_ratio=self.completion.tolerated_failure_ratio,
        )  # fmt: skip
        await orchestration.start_chained(plan, self.step_name)

    def _retry_spec(self, record: StepRecord) -> Any:
        """What an item waiting for a retry runs next (its input as the plan holds it)."""
        from ._replay import StepSpec

        if not self._indexes:
            self._indexes = {name: i for i, name in enumerate(self.names)}
        index = self._indexes[record.name]
        return StepSpec(
            kind=StepKind.RPC, target=self.function.name, codec=self.function.output,
            input=ANY_CODEC.dump(self.items[index]), retry=self.policy, function=self.function,
            call=None,
        )  # fmt: skip

    def _outcome(self, key: str, records: list[StepRecord | None], started: int) -> dict[str, Any]:
        total = len(self.names)
        results: list[Any] = [None] * total
        errors: list[ErrorInfo | None] = [None] * total
        for index, record in enumerate(records[:started]):
            if record is None:  # pragma: no cover - checked by run()
                continue
            if record.status is StepStatus.SUCCEEDED:
                results[index] = plain(record.result)  # as stored (a worker's may be raw)
            else:
                error = record.error or ErrorInfo(type="Error", message="unknown failure")
                errors[index] = ErrorInfo(
                    type=error.type, message=error.message, step_key=record.key
                )
        return _outcome_json(
            key, results=results, errors=errors, names=self.names, completion=self.completion,
            started=started,
        )  # fmt: skip


async def run_batch(
    orchestration: OrchestrationPass,
    name: str,
    calls: Sequence[_ItemCall],
    names: list[str],
    *,
    kind: str,
    max_concurrency: int | None,
    completion: Completion | None,
    chained: tuple[FunctionDef, list[Any]] | None = None,
) -> BatchResult[Any]:
    """Run a batch as a scope named ``name`` and return its (recorded) outcome.

    ``chained`` (a map's registered function and its items) lets the driver chain the items
    (remote mode): see :class:`_ChainedBatch`.
    """
    limit = check_limit(max_concurrency)
    if completion is not None and not isinstance(completion, Completion):
        raise InvalidOption("completion", f"must be a Completion, got {completion!r}")
    names = _check_names(names)
    policy = completion or Completion()
    batch = _Batch(orchestration, calls, names, limit, policy)
    body = batch.run
    if chained is not None and calls and orchestration.chains_batches():
        function, items = chained
        body = _ChainedBatch(
            orchestration,
            function,
            items,
            names,
            limit=limit,
            completion=policy,
            name=name,
            fallback=batch.run,
        ).run
    recorded = await orchestration.scope(name, body, kind)
    return batch_from_json(name, recorded)


def map_calls(
    orchestration: OrchestrationPass,
    items: Sequence[Any],
    func: str | Callable[..., Any],
    names: list[str],
) -> list[_ItemCall]:
    """One call per item: an RPC step (a registered function) or a scope running ``func``."""
    flow = orchestration.engine.flow
    if isinstance(func, str) or flow.find_function(func) is not None:
        wf = orchestration.context()

        def rpc(name: str, item: Any) -> _ItemCall:
            return lambda: wf.do(name, func, item)

        return [rpc(n, item) for n, item in zip(names, items, strict=True)]
    if not callable(func):
        raise InvalidOption("func", f"must be a function name or a callable, got {func!r}")

    def scoped(name: str, item: Any, index: int) -> _ItemCall:
        async def body(_key: str) -> Any:
            return await func(orchestration.context(), item, index)

        return lambda: orchestration.scope(name, body, None)

    return [scoped(n, item, i) for i, (n, item) in enumerate(zip(names, items, strict=True))]


def parallel_calls(
    orchestration: OrchestrationPass,
    branches: Sequence[Callable[..., Awaitable[Any]]] | Mapping[str, Callable[..., Awaitable[Any]]],
) -> tuple[list[_ItemCall], list[str]]:
    """One scope per branch, named by its index (a list) or its key (a dict, in its order)."""
    if isinstance(branches, Mapping):
        names, funcs = [str(k) for k in branches], list(branches.values())
    else:
        funcs = list(branches)
        names = [str(i) for i in range(len(funcs))]

    def scoped(name: str, branch: Callable[..., Awaitable[Any]]) -> _ItemCall:
        async def body(_key: str) -> Any:
            return await branch(orchestration.context())

        return lambda: orchestration.scope(name, body, None)

    return [scoped(n, f) for n, f in zip(names, funcs, strict=True)], names

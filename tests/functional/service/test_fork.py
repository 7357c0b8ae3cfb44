"""``service.fork``: a new run of the same workflow from a step, reusing what came before it."""

from __future__ import annotations

from collections import Counter
from typing import Any

import psycopg
import pytest

from lambda_flow import (
    Flow,
    InvalidInput,
    InvalidOption,
    LambdaFlowError,
    RunNotFound,
    RunStatus,
    WorkflowContext,
    WorkflowService,
)


@pytest.fixture
def order(flow: Flow) -> Counter[str]:
    calls: Counter[str] = Counter()

    @flow.workflow
    async def order(wf: WorkflowContext, amount: int) -> str:
        reserved = await wf.do("Reserve", lambda: calls.update(["reserve"]) or "R")
        charged = await wf.do("Charge", lambda: calls.update(["charge"]) or amount * 10)
        if amount < 0:
            await wf.do("Boom", lambda: 1 / 0)
        return await wf.do("Ship", lambda: calls.update(["ship"]) or f"{reserved}:{charged}")

    return calls


def _count(db: psycopg.Connection[Any], table: str) -> int:
    row = db.execute(f"SELECT count(*) FROM {table}").fetchone()
    assert row is not None
    return int(row[0])


def test_fork_reuses_the_steps_before_and_runs_from_the_step(
    order: Counter[str], service: WorkflowService
) -> None:
    source = service.start("order", 2)
    assert order == {"reserve": 1, "charge": 1, "ship": 1}

    forked = service.fork(source, from_step="Charge")

    run = service.get_run(forked)
    assert run is not None
    assert run.status is RunStatus.COMPLETED
    assert run.output == "R:20"
    assert run.input == 2  # the source's input
    assert run.forked_from == {"run_id": source, "step_key": "Charge"}
    assert order == {"reserve": 1, "charge": 2, "ship": 2}  # Reserve was reused, not run
    history = service.get_run_history(forked)
    assert [a.step_key for a in history] == ["Reserve", "Charge", "Ship"]
    steps = {s.key: s.position for s in service.store.get_steps(forked)}
    assert steps["Reserve"] == 0
    assert service.get_run(source).forked_from is None  # type: ignore[union-attr]


def test_fork_a_failed_run_with_new_input(order: Counter[str], service: WorkflowService) -> None:
    failed = service.start("order", -1)
    assert service.get_run(failed).status is RunStatus.FAILED  # type: ignore[union-attr]

    forked = service.fork(failed, from_step="Charge", input=3)

    run = service.get_run(forked)
    assert run is not None
    assert run.output == "R:30"
    assert run.input == 3
    assert order["reserve"] == 1


def test_unknown_step_or_run_writes_nothing(
    order: Counter[str], service: WorkflowService, db: psycopg.Connection[Any], schema: str
) -> None:
    source = service.start("order", 1)
    runs, attempts = _count(db, f'"{schema}".runs'), _count(db, f'"{schema}".step_attempts')

    with pytest.raises(InvalidOption, match="'Nope'") as caught:
        service.fork(source, from_step="Nope")
    assert isinstance(caught.value, LambdaFlowError)
    with pytest.raises(RunNotFound):
        service.fork("00000000-0000-0000-0000-000000000000", from_step="Charge")
    with pytest.raises(RunNotFound):
        service.fork("not-a-uuid", from_step="Charge")
    with pytest.raises(InvalidInput):
        service.fork(source, from_step="Charge", input="not a number")

    assert _count(db, f'"{schema}".runs') == runs
    assert _count(db, f'"{schema}".step_attempts') == attempts


def test_fork_from_the_first_step_reruns_everything(
    order: Counter[str], service: WorkflowService
) -> None:
    source = service.start("order", 1)

    run = service.get_run(service.fork(source, from_step="Reserve"))

    assert run is not None
    assert run.status is RunStatus.COMPLETED
    assert order == {"reserve": 2, "charge": 2, "ship": 2}

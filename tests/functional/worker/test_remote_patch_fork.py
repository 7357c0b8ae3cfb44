"""``wf.patched`` and ``fork`` in remote mode: an in-process queue and the handlers' dispatcher."""

from __future__ import annotations

from collections import Counter
from typing import Any

from lambda_flow import Flow, RunStatus, WorkflowContext
from lambda_flow.transport.local import LocalQueue
from tests.functional.worker.test_remote import drain


def test_patched_in_remote_mode_old_and_new_runs(
    flow: Flow, remote: Any, queue: LocalQueue
) -> None:
    service, dispatcher = remote
    version = {"patched": False}
    calls: Counter[str] = Counter()

    @flow.function
    def fee(data: int) -> int:
        calls["fee"] += 1
        return data

    @flow.workflow
    async def order(wf: WorkflowContext) -> str:
        if version["patched"] and wf.patched("free-shipping"):
            shipping = 0
        else:
            shipping = await wf.do("Fee", fee, 5)
        decision = await wf.suspend("Approve")
        return f"{decision} {shipping}"

    old = service.start("order")
    drain(queue, dispatcher)  # old code: the fee ran on a worker, then the run suspended
    version["patched"] = True
    new = service.start("order")
    drain(queue, dispatcher)
    for run_id in (old, new):
        service.resume(run_id, "ok")
    drain(queue, dispatcher)

    assert service.get_run(old).output == "ok 5"
    assert service.get_run(new).output == "ok 0"
    assert calls["fee"] == 1
    kinds = [a.kind.value for a in service.get_run_history(new)]
    assert kinds == ["patch", "suspend"]


def test_fork_in_remote_mode_queues_one_pass_and_reuses_earlier_steps(
    flow: Flow, remote: Any, queue: LocalQueue
) -> None:
    service, dispatcher = remote
    calls: Counter[str] = Counter()

    @flow.function
    def charge(data: int) -> int:
        calls["charge"] += 1
        return data * 2

    @flow.function
    def ship(data: int) -> str:
        calls["ship"] += 1
        return f"shipped {data}"

    @flow.workflow
    async def order(wf: WorkflowContext, amount: int) -> str:
        charged = await wf.do("Charge", charge, amount)
        return await wf.do("Ship", ship, charged)

    source = service.start("order", 3)
    drain(queue, dispatcher)
    assert calls == {"charge": 1, "ship": 1}

    forked = service.fork(source, from_step="Ship")

    assert queue.count("orchestrator") == 1
    assert queue.count("step") == 0
    drain(queue, dispatcher)
    run = service.get_run(forked)
    assert run.status is RunStatus.COMPLETED
    assert run.output == "shipped 6"
    assert run.forked_from == {"run_id": source, "step_key": "Ship"}
    assert calls == {"charge": 1, "ship": 2}

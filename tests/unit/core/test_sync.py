"""``run_on_thread_loop``: one event loop per thread, reused across a worker's messages."""

from __future__ import annotations

import asyncio
import threading

from lambda_flow.core import run_on_thread_loop, run_sync


async def _loop_and_thread() -> tuple[int, int]:
    loop = asyncio.get_running_loop()
    await asyncio.to_thread(threading.get_ident)  # a sync step, on the loop's default executor
    executor = loop._default_executor  # type: ignore[attr-defined]  # asyncio keeps it here
    return id(loop), id(executor)


def test_calls_on_one_thread_share_its_loop_and_its_executor() -> None:
    first = run_on_thread_loop(_loop_and_thread())
    second = run_on_thread_loop(_loop_and_thread())

    assert first == second  # same loop, same default executor (its threads): nothing made again


def test_each_thread_has_a_loop_of_its_own() -> None:
    here = run_on_thread_loop(_loop_and_thread())[0]
    there: list[int] = []
    thread = threading.Thread(
        target=lambda: there.append(run_on_thread_loop(_loop_and_thread())[0])
    )
    thread.start()
    thread.join()

    assert there
    assert there[0] != here


def test_nothing_a_call_started_outlives_it() -> None:
    cancelled = asyncio.Event()
    stray: list[asyncio.Task[None]] = []

    async def waits_forever() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def leaves_a_task_behind() -> str:
        stray.append(asyncio.get_running_loop().create_task(waits_forever()))
        await asyncio.sleep(0)
        return "done"

    assert run_on_thread_loop(leaves_a_task_behind()) == "done"
    assert stray[0].cancelled()
    assert cancelled.is_set()


def test_inside_a_running_loop_it_runs_the_coroutine_elsewhere() -> None:
    async def outer() -> int:
        return run_on_thread_loop(asyncio.sleep(0, result=7))

    assert run_sync(outer()) == 7

"""Running a coroutine from sync code: the engine is async, its callers often are not."""

from __future__ import annotations

import asyncio
import atexit
import threading
import weakref
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to the end from sync code, even when called inside a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass  # not inside a loop: run it here (outside the handler, so no chained context)
    else:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="lambda-flow") as pool:
            return pool.submit(asyncio.run, coro).result()
    return asyncio.run(coro)


_thread = threading.local()
_loops: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()


@atexit.register
def _close_loops() -> None:
    """Close the threads' loops at exit (a loop collected open logs an error from its selector)."""
    for loop in list(_loops):
        if not loop.is_running() and not loop.is_closed():
            loop.close()


def run_on_thread_loop(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to the end on this thread's own event loop, kept for the next call.

    For queue consumers, which run one message after another: a new event loop per message
    (``asyncio.run``) costs its creation and, for sync steps, a new worker thread each time
    (the loop's default executor). As ``asyncio.run`` does, nothing started by the call
    outlives it: its leftover tasks are cancelled before it returns.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        return run_sync(coro)
    loop: asyncio.AbstractEventLoop | None = getattr(_thread, "loop", None)
    if loop is None or loop.is_closed():
        loop = asyncio.new_event_loop()
        _thread.loop = loop
        _loops.add(loop)
    try:
        return loop.run_until_complete(coro)
    finally:
        leftovers = [task for task in asyncio.all_tasks(loop) if not task.done()]
        for task in leftovers:
            task.cancel()
        if leftovers:
            loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))

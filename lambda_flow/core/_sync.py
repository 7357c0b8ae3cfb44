"""Running a coroutine from sync code: the engine is async, its callers often are not."""

from __future__ import annotations

import asyncio
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

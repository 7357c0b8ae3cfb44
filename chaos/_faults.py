"""Faults a chaos worker injects into its own process, and the counters it keeps.

Everything here patches objects of the worker process only (its runtime's store and queue
instances, its sweeper's dispatcher), never ``lambda_flow`` itself:

- ``CHAOS_KILL_AT=<role>:<method>:<before|after>:<nth>``: SIGKILL this process at the ``nth``
  call of that store or queue method made while the ``role`` handler runs (a marker file names
  the point first, so the harness can count the trial).
- ``CHAOS_TRACE=1``: note every ``role:method`` called (which kill points are reachable).
"""

from __future__ import annotations

import json
import os
import signal
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STORE_METHODS = (
    "acquire",
    "write_steps",
    "finish_pass",
    "renew",
    "claim_step",
    "complete_step",
    "fail_run",
    "get_run",
    "find_stuck",
    "create_run",
    "resume",
    "start_child",
)
"""Store calls a kill point may name."""
QUEUE_METHODS = ("enqueue_run", "enqueue_steps", "wake_at")
"""Queue calls a kill point may name."""
RUNNER_METHODS = ("delete",)
"""The runner's own call: deleting a batch's successes from SQS."""

ENV_KILL_AT = "CHAOS_KILL_AT"
ENV_TRACE = "CHAOS_TRACE"
ENV_STATS_DIR = "CHAOS_STATS_DIR"


@dataclass(frozen=True, slots=True)
class KillPoint:
    """Where a worker kills itself."""

    role: str
    method: str
    when: str
    """``before`` or ``after`` the call."""
    nth: int = 1

    @classmethod
    def parse(cls, text: str) -> KillPoint:
        """Read ``role:method:when:nth``.

        Raises:
            ValueError: the text is not such a point.
        """
        role, method, when, nth = text.split(":")
        if when not in ("before", "after"):
            raise ValueError(f"kill point {text!r}: expected before or after")
        return cls(role, method, when, int(nth))

    def __str__(self) -> str:
        return f"{self.role}:{self.method}:{self.when}:{self.nth}"


@dataclass(slots=True)
class Probe:
    """This process's counters, trace and kill point (one per worker process)."""

    role: str
    stats_dir: Path | None
    kill_at: KillPoint | None = None
    trace: bool = False
    current: str = ""
    """The handler running now (``orchestrator``, ``step_worker``, ``sweeper``, ``api``)."""
    counters: Counter[str] = field(default_factory=Counter)
    seen: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_environment(cls, role: str) -> Probe:
        """The probe the environment asks for."""
        stats = os.environ.get(ENV_STATS_DIR)
        kill = os.environ.get(ENV_KILL_AT)
        return cls(
            role=role,
            stats_dir=Path(stats) if stats else None,
            kill_at=KillPoint.parse(kill) if kill else None,
            trace=os.environ.get(ENV_TRACE) == "1",
        )

    def count(self, name: str, amount: int = 1) -> None:
        """Add to one counter."""
        with self.lock:
            self.counters[name] += amount

    def call(self, method: str, when: str) -> None:
        """Note a call of ``method`` (``before`` or ``after`` it); die if it is the point."""
        point = self.kill_at
        if when == "before":
            key = f"{self.current}:{method}"
            with self.lock:
                self.counters[f"call:{key}"] += 1
                if self.trace:
                    self.seen.add(key)
        if point is None or point.role != self.current or point.method != method:
            return
        if point.when == when and self.counters[f"call:{self.current}:{method}"] == point.nth:
            self.die(str(point))

    def die(self, reason: str) -> None:
        """Name the reason in a marker file, then SIGKILL this process."""
        if self.stats_dir is not None:
            marker = self.stats_dir / f"killed-{os.getpid()}.txt"
            marker.write_text(reason, encoding="utf-8")
        self.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    def flush(self) -> None:
        """Write the counters (and the trace) to ``<stats_dir>/<role>-<pid>.json``."""
        if self.stats_dir is None:
            return
        with self.lock:
            data = {"role": self.role, "counters": dict(self.counters), "seen": sorted(self.seen)}
        path = self.stats_dir / f"{self.role}-{os.getpid()}.json"
        scratch = path.with_suffix(".tmp")
        scratch.write_text(json.dumps(data), encoding="utf-8")
        scratch.replace(path)


def _wrap(probe: Probe, method: str, original: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        probe.call(method, "before")
        result = original(*args, **kwargs)
        probe.call(method, "after")
        return result

    return wrapper


def instrument(probe: Probe, store: Any, queue: Any) -> None:
    """Route this process's store and queue calls through ``probe`` (instance attributes)."""
    for target, names in ((store, STORE_METHODS), (queue, QUEUE_METHODS)):
        if target is None:
            continue
        for name in names:
            original = getattr(target, name, None)
            if original is not None:
                setattr(target, name, _wrap(probe, name, original))


def count_orchestrator_sends(probe: Probe, queue: Any) -> None:
    """Count every orchestrator message this process sends, by the handler sending it."""
    original = queue.enqueue_run

    def enqueue_run(*args: Any, **kwargs: Any) -> Any:
        probe.count(f"orchestrator_sent:{probe.current}")
        return original(*args, **kwargs)

    queue.enqueue_run = enqueue_run

"""Waiting on a run: driving it here, following its progress, and ``lambda-flow watch``.

Progress comes from the store, polled every :data:`POLL` on the session's clock: one line per
attempt as it finishes, a line with a sleep's wake time or a suspension, and (only when the
stream is a terminal) a spinner while nothing changes. Ctrl-C while waiting or driving prints
one line with the run id and how to carry on (:func:`interruptible`), and leaves the run as the
store has it: a run driven here is still ``running`` and ``lambda-flow resume`` drives it on.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, TextIO

from ..core import Run, RunStatus, StepAttempt, run_sync
from ._output import attempt_line, outcome_code, print_outcome, waiting_line
from ._session import EXIT_INTERRUPTED, AddCommand, CommandError, Session

if TYPE_CHECKING:
    from ..engine import Engine
    from ..service import WorkflowService
    from ._placement import Placement

POLL = timedelta(milliseconds=250)
"""How often a follower reads the run and its history (on the session's clock)."""

_SPINNER = "|/-\\"


class Progress:
    """Prints a run's progress from its history, each line once.

    Args:
        stream: where to print (stdout; stderr for ``run``, whose stdout is the output).
        enabled: False prints nothing (waiting without ``--follow``).
    """

    def __init__(self, stream: TextIO | None = None, *, enabled: bool = True) -> None:
        self.stream = stream or sys.stdout
        self.enabled = enabled
        self.tty = enabled and self.stream.isatty()
        self._shown: set[tuple[str, int, str]] = set()
        self._frame = 0
        self._spinning = False

    def update(self, run: Run, history: Sequence[StepAttempt]) -> None:
        """Print what happened since the last update."""
        if not self.enabled:
            return
        for attempt in history:
            key = (attempt.step_key, attempt.attempt, attempt.status.value)
            line = attempt_line(attempt) or waiting_line(attempt, run)
            if line is not None and key not in self._shown:
                self._shown.add(key)
                self.clear()
                print(line, file=self.stream, flush=True)

    def spin(self, run: Run) -> None:
        """Turn the spinner one step (terminals only)."""
        if not self.tty:
            return
        frame = _SPINNER[self._frame % len(_SPINNER)]
        self._frame += 1
        self.stream.write(f"\r{frame} {run.status.value}...")
        self.stream.flush()
        self._spinning = True

    def clear(self) -> None:
        """Erase the spinner, if it shows."""
        if self._spinning:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._spinning = False


async def drive(engine: Engine, run_id: str, poll: timedelta = POLL) -> None:
    """Run passes of ``run_id`` here until it finishes or parks, sleeping on the engine's clock.

    When another process holds the run's lease (a pass going on elsewhere, or one a stopped
    process left behind, which runs out after the lease's time), it waits and tries again.
    """
    clock = engine.clock
    while True:
        outcome = await engine.run_pass(run_id)
        if outcome is None:
            run = engine.store.get_run(run_id)
            if run is None or run.status is not RunStatus.RUNNING:
                return
            await clock.sleep_until(clock.now() + poll)
            continue
        if outcome.status is not RunStatus.RUNNING:
            return
        if outcome.changed_meanwhile:
            continue
        if outcome.wake_at is None:
            return
        await clock.sleep_until(outcome.wake_at)


async def follow(
    service: WorkflowService,
    run_id: str,
    progress: Progress,
    *,
    driving: asyncio.Future[None] | None = None,
    poll: timedelta = POLL,
) -> Run:
    """Show progress until the run leaves ``running`` (or, when ``driving``, until that ends).

    Returns:
        The run as it then is.
    """
    clock = service.clock
    while True:
        driven = driving is not None and driving.done()  # before reading: no line is missed
        run = service.get_run(run_id)
        if run is None:
            raise CommandError(f"unknown run {run_id!r}")
        progress.update(run, service.store.get_history(run_id) if progress.enabled else ())
        if driven or (driving is None and run.status is not RunStatus.RUNNING):
            progress.clear()
            return run
        progress.spin(run)
        tick = asyncio.ensure_future(clock.sleep_until(clock.now() + poll))
        waits: set[asyncio.Future[None]] = {tick} if driving is None else {tick, driving}
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        tick.cancel()


async def _drive_and_follow(service: WorkflowService, run_id: str, progress: Progress) -> Run:
    driving = asyncio.ensure_future(drive(service.engine, run_id))
    try:
        if progress.enabled:
            await follow(service, run_id, progress, driving=driving)
        await driving  # its exception, if any
    finally:
        driving.cancel()
    run = service.get_run(run_id)
    if run is None:  # pragma: no cover - runs are never deleted
        raise CommandError(f"run {run_id} disappeared")
    return run


async def _wait(
    service: WorkflowService,
    run_id: str,
    progress: Progress,
    drive_here: bool,
    announce: Callable[[], None] | None,
) -> Run:
    if announce is not None:  # inside the loop: a Ctrl-C from now on is handled cleanly
        announce()
    if drive_here:
        return await _drive_and_follow(service, run_id, progress)
    return await follow(service, run_id, progress)


def wait_for_run(
    service: WorkflowService,
    run_id: str,
    progress: Progress,
    *,
    drive_here: bool,
    announce: Callable[[], None] | None = None,
) -> Run:
    """Drive the run here (or wait while others do) until it rests, showing ``progress``.

    Args:
        service: the service over the run's store.
        run_id: the run.
        progress: what to show meanwhile.
        drive_here: drive it in this process (else only watch the store).
        announce: prints the header (the run id) once the event loop runs.

    Returns:
        The run as it then is.
    """
    waiting = _wait(service, run_id, progress, drive_here, announce)
    try:
        return run_sync(waiting)
    finally:
        waiting.close()  # a no-op once run; quiet when Ctrl-C came before the loop started it


def interruptible(
    run_id: str, body: Callable[[], int], *, drive_here: bool, progress: Progress | None = None
) -> int:
    """Run ``body``; on Ctrl-C print one line saying how to carry on with the run instead.

    Returns:
        ``body``'s exit code, or 130 after Ctrl-C.
    """
    try:
        return body()
    except KeyboardInterrupt:
        if progress is not None:
            progress.clear()
        if drive_here:
            message = (
                f"interrupted: run {run_id} is left running; "
                f"carry it on with: lambda-flow resume {run_id}"
            )
        else:
            message = (
                f"stopped watching run {run_id} (it goes on); "
                f"watch it again with: lambda-flow watch {run_id}"
            )
        print(message, file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED


def carry_on(session: Session, service: WorkflowService, placement: Placement, run_id: str) -> int:
    """After ``start`` or ``resume`` stored the run: print its id, then drive, follow or return.

    Returns:
        The exit code: the run's outcome when waited for, 0 when returning at once, 130 on
        Ctrl-C.
    """
    args = session.args
    progress = Progress(enabled=args.follow)

    def announce() -> None:
        print(f"run_id  {run_id}", flush=True)

    def body() -> int:
        run = service.get_run(run_id)
        if run is None:  # pragma: no cover - just stored
            raise CommandError(f"run {run_id} disappeared")
        waits = run.status is RunStatus.RUNNING and (
            args.follow if not placement.drives_here else not args.no_wait
        )
        if not waits:
            announce()
            return _without_waiting(run, placement)
        waited = wait_for_run(
            service, run_id, progress, drive_here=placement.drives_here, announce=announce
        )
        return print_outcome(waited, with_id=False)

    return interruptible(run_id, body, drive_here=placement.drives_here, progress=progress)


def _without_waiting(run: Run, placement: Placement) -> int:
    """What ``start``/``resume`` print when they return at once (after the run id)."""
    if run.status is not RunStatus.RUNNING:  # an idempotent start of an earlier run
        return print_outcome(run, with_id=False)
    print("status  running")
    if placement.drives_here:
        print(f"stored, not driven: drive it with `lambda-flow resume {run.id}`")
    else:
        print(f"queued for {placement.where}; follow it with `lambda-flow watch {run.id}`")
    return outcome_code(run)


def _cmd_watch(session: Session) -> int:
    service = session.service(session.app(required=False))
    run = service.get_run(session.args.run_id)
    if run is None:
        raise CommandError(f"unknown run {session.args.run_id!r}")
    progress = Progress()

    def announce() -> None:
        print(f"run_id  {run.id}", flush=True)

    def body() -> int:
        waited = wait_for_run(service, run.id, progress, drive_here=False, announce=announce)
        return print_outcome(waited, with_id=False)

    return interruptible(run.id, body, drive_here=False, progress=progress)


def add_watch(command: AddCommand) -> None:
    """Add ``watch RUN_ID``."""
    watch = command(
        "watch",
        _cmd_watch,
        "show a run's steps as they finish, until it completes, fails, is cancelled or "
        "suspends; exit 1 when it failed",
    )
    watch.add_argument("run_id", metavar="RUN_ID")

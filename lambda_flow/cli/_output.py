"""What the commands print: aligned tables, durations, timestamps, JSON and a run's outcome."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from ..core import Run, RunStatus, StepAttempt, StepKind, StepStatus
from ._session import EXIT_OK, EXIT_RUN_FAILED


def one_line(text: str) -> str:
    """``text`` with every run of whitespace, newlines included, turned into one space."""
    return " ".join(text.split())


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns; the last column is not padded.

    Args:
        headers: the column titles.
        rows: the cells, one sequence per row, as many as there are headers.

    Returns:
        The table's lines, joined by newlines.
    """
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))

    def line(cells: Sequence[str]) -> str:
        padded = [c.ljust(widths[i]) for i, c in enumerate(cells[:-1])]
        return "  ".join([*padded, cells[-1]]).rstrip()

    return "\n".join([line(headers), *(line(r) for r in rows)])


def duration(ms: float | None) -> str:
    """A duration in milliseconds as ``850ms``, ``1.5s``, ``2m05s`` or ``1h02m`` (``-``: none)."""
    if ms is None:
        return "-"
    if ms < 1000:
        return f"{ms:.0f}ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def timestamp(value: datetime | None) -> str:
    """A time in UTC to the second (``-``: none)."""
    return "-" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def history_table(history: Sequence[StepAttempt], *, tracebacks: bool = False) -> str:
    """Every attempt of every step as a table, one row per attempt.

    Args:
        history: the attempts, oldest first.
        tracebacks: print each failed attempt's stored traceback, indented, under its row.
    """
    rows = [
        [
            a.step_key,
            a.kind.value,
            a.status.value,
            str(a.attempt),
            duration(a.duration_ms),
            one_line(str(a.error)) if a.error else "",
        ]
        for a in history
    ]
    text = table(["STEP", "KIND", "STATUS", "ATTEMPT", "DURATION", "ERROR"], rows)
    if not tracebacks:
        return text
    lines = text.splitlines()
    out = lines[:1]
    for line, attempt in zip(lines[1:], history, strict=True):
        out.append(line)
        trace = attempt.error.traceback if attempt.error else None
        if trace:
            out.extend("    " + t for t in trace.rstrip().splitlines())
    return "\n".join(out)


def runs_table(runs: Sequence[Run]) -> str:
    """Runs as a table, one row per run."""
    rows = [
        [r.id, r.workflow, r.status.value, timestamp(r.created_at), timestamp(r.updated_at)]
        for r in runs
    ]
    return table(["RUN ID", "WORKFLOW", "STATUS", "CREATED (UTC)", "UPDATED (UTC)"], rows)


def to_json(value: Any) -> str:
    """``value`` as indented JSON; what JSON cannot hold is written as its ``str``."""
    return json.dumps(value, indent=2, default=str)


def print_run_head(run: Run, *, with_id: bool = True) -> None:
    """Print a run's id and status, and its error if it has one."""
    if with_id:
        print(f"run_id  {run.id}")
    print(f"status  {run.status.value}")
    if run.error is not None:
        print(f"error   {one_line(str(run.error))}")


def outcome_code(run: Run) -> int:
    """The exit code for a run's outcome: 1 when it failed, else 0."""
    return EXIT_RUN_FAILED if run.status is RunStatus.FAILED else EXIT_OK


def print_outcome(run: Run, *, with_id: bool = True) -> int:
    """Print a run's id, status, error and output.

    Args:
        run: the run as it stands.
        with_id: print the ``run_id`` line (False when it was printed before the run was driven).

    Returns:
        The exit code: 1 when the run failed, else 0.
    """
    print_run_head(run, with_id=with_id)
    if run.status is RunStatus.COMPLETED:
        print(f"output  {json.dumps(run.output)}")
    return outcome_code(run)


_FINISHED = frozenset({StepStatus.SUCCEEDED, StepStatus.FAILED, StepStatus.CANCELLED})


def attempt_line(attempt: StepAttempt) -> str | None:
    """One line for an attempt that has finished (None while it has not).

    ``succeeded  Create profile  rpc #1  12ms`` or ``failed     Send  rpc #1  3ms  Type: why``.
    """
    if attempt.status not in _FINISHED:
        return None
    line = (
        f"{attempt.status.value:<9}  {attempt.step_key}  {attempt.kind.value} "
        f"#{attempt.attempt}  {duration(attempt.duration_ms)}"
    )
    return f"{line}  {one_line(str(attempt.error))}" if attempt.error else line


def waiting_line(attempt: StepAttempt, run: Run) -> str | None:
    """One line for a step the run waits on: a sleep's wake time, a suspension (else None)."""
    if attempt.kind is StepKind.SLEEP and attempt.status is StepStatus.SCHEDULED:
        # The run's timer is set when the pass that reached the sleep ends: wait for it.
        if run.wake_at is None:
            return None
        return f"sleeping   {attempt.step_key}  until {timestamp(run.wake_at)} UTC"
    if attempt.kind is StepKind.SUSPEND and attempt.status is StepStatus.PENDING:
        return f"suspended  {attempt.step_key}  (lambda-flow resume {run.id})"
    return None

"""What the commands print: aligned tables, durations, timestamps, JSON and a run's outcome."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from ..core import Run, RunStatus, StepAttempt
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


def history_table(history: Sequence[StepAttempt]) -> str:
    """Every attempt of every step as a table, one row per attempt."""
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
    return table(["STEP", "KIND", "STATUS", "ATTEMPT", "DURATION", "ERROR"], rows)


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


def print_run_head(run: Run) -> None:
    """Print a run's id and status, and its error if it has one."""
    print(f"run_id  {run.id}")
    print(f"status  {run.status.value}")
    if run.error is not None:
        print(f"error   {one_line(str(run.error))}")


def print_outcome(run: Run) -> int:
    """Print a run's id, status, error and output.

    Args:
        run: the run as it stands.

    Returns:
        The exit code: 1 when the run failed, else 0.
    """
    print_run_head(run)
    if run.status is RunStatus.COMPLETED:
        print(f"output  {json.dumps(run.output)}")
    return EXIT_RUN_FAILED if run.status is RunStatus.FAILED else EXIT_OK

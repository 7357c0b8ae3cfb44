"""A run's timeline as geometry for a server-rendered SVG: a row per step, a bar per attempt.

Nothing is drawn by a script: the template turns these numbers into ``<rect>`` and ``<line>``
elements (presentation attributes only, so the page's Content-Security-Policy needs no inline
style), and every text comes out of the template's autoescaping.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ..core import Run, StepAttempt, StepKind, StepStatus

__all__ = ["Timeline", "build_timeline"]

WIDTH = 1000
"""The SVG's width in user units (it scales to the page)."""
LABEL_WIDTH = 230
"""Room for the step names, left of the bars."""
ROW_HEIGHT = 26
AXIS_HEIGHT = 26
MIN_BAR = 3.0
"""The narrowest bar drawn, so an instant attempt still shows."""

_WAITS = frozenset(
    {StepKind.SLEEP, StepKind.SUSPEND, StepKind.CALLBACK, StepKind.CONDITION, StepKind.CHILD}
)
_OPEN = frozenset({StepStatus.PENDING, StepStatus.SCHEDULED, StepStatus.RUNNING})


@dataclass(frozen=True, slots=True)
class Bar:
    """One attempt (or one wait) drawn in a row."""

    x: float
    width: float
    status: str
    attempt: int
    wait: bool
    """A sleep, suspension, callback, condition or child: drawn as a gap (a dashed line)."""
    title: str
    """The tooltip: what, when, how long, and the error's type."""
    retry: bool
    """Not the step's first attempt."""

    @property
    def end(self) -> float:
        """Where the bar ends."""
        return self.x + self.width


@dataclass(slots=True)
class Row:
    """One step: its name, its last status and its attempts' bars."""

    key: str
    name: str
    kind: str
    status: str
    y: float
    bars: list[Bar] = field(default_factory=list)

    @property
    def attempts(self) -> int:
        """How many attempts it made."""
        return len(self.bars)


@dataclass(frozen=True, slots=True)
class Tick:
    """A time mark on the axis."""

    x: float
    label: str


@dataclass(frozen=True, slots=True)
class Timeline:
    """What the template draws."""

    rows: list[Row]
    ticks: list[Tick]
    height: float
    width: int = WIDTH
    label_width: int = LABEL_WIDTH
    row_height: int = ROW_HEIGHT
    axis_height: int = AXIS_HEIGHT
    span: str = ""
    """The whole span, in words (``4.2 s``)."""


def human_duration(delta: timedelta) -> str:
    """``812 ms``, ``4.2 s``, ``3 min 5 s``, ``2 h 10 min``, ``3 d 4 h``."""
    seconds = delta.total_seconds()
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def _title(attempt: StepAttempt, start: datetime, end: datetime) -> str:
    what = f"{attempt.step_name} ({attempt.kind.value}) attempt {attempt.attempt}: "
    what += f"{attempt.status.value}, {human_duration(end - start)}"
    if attempt.error is not None:
        what += f" — {attempt.error.type}"
    return what


def build_timeline(run: Run, history: Sequence[StepAttempt], now: datetime) -> Timeline:
    """The geometry of ``run``'s timeline, from its history, as of ``now``.

    The axis runs from the run's creation to its end (its last change, once finished) or
    ``now``; an attempt still open runs to that end.
    """
    t0 = run.created_at
    t1 = run.updated_at if run.status.is_terminal else max(now, run.updated_at)
    for attempt in history:
        for moment in (attempt.created_at, attempt.started_at, attempt.finished_at):
            if moment is not None:
                t0, t1 = min(t0, moment), max(t1, moment)
    total = max((t1 - t0).total_seconds(), 0.001)
    scale = (WIDTH - LABEL_WIDTH - 10) / total

    def x_of(moment: datetime) -> float:
        return LABEL_WIDTH + (moment - t0).total_seconds() * scale

    rows: dict[str, Row] = {}
    for attempt in history:
        row = rows.get(attempt.step_key)
        if row is None:
            y = AXIS_HEIGHT + len(rows) * ROW_HEIGHT
            row = rows[attempt.step_key] = Row(
                attempt.step_key, attempt.step_name, attempt.kind.value, "", y
            )
        row.status = attempt.status.value
        start = attempt.started_at or attempt.created_at
        if attempt.kind in _WAITS:
            start = attempt.created_at
        end = attempt.finished_at or (t1 if attempt.status in _OPEN else start)
        end = max(end, start)
        x = x_of(start)
        width = max(x_of(end) - x, MIN_BAR)
        row.bars.append(
            Bar(
                x=round(x, 2),
                width=round(min(width, WIDTH - x), 2),
                status=attempt.status.value,
                attempt=attempt.attempt,
                wait=attempt.kind in _WAITS,
                title=_title(attempt, start, end),
                retry=attempt.attempt > 1,
            )
        )
    ticks = [
        Tick(
            x=round(LABEL_WIDTH + i * (WIDTH - LABEL_WIDTH - 10) / 4, 2),
            label="+" + human_duration(timedelta(seconds=total * i / 4)),
        )
        for i in range(5)
    ]
    return Timeline(
        rows=list(rows.values()),
        ticks=ticks,
        height=AXIS_HEIGHT + max(len(rows), 1) * ROW_HEIGHT + 6,
        span=human_duration(timedelta(seconds=total)),
    )

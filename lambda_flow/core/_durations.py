"""Durations: ``timedelta`` inside, friendly strings and numbers at the edge."""

from __future__ import annotations

import math
import re
from datetime import timedelta

from ._errors import InvalidDuration

Duration = timedelta | str | int | float
"""What the API accepts wherever it takes a duration."""

_UNITS: dict[str, float] = {
    "ms": 0.001,
    "s": 1,
    "sec": 1,
    "secs": 1,
    "second": 1,
    "seconds": 1,
    "m": 60,
    "min": 60,
    "mins": 60,
    "minute": 60,
    "minutes": 60,
    "h": 3600,
    "hr": 3600,
    "hour": 3600,
    "hours": 3600,
    "d": 86400,
    "day": 86400,
    "days": 86400,
    "w": 604800,
    "week": 604800,
    "weeks": 604800,
}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")

MAX_DURATION = timedelta(days=365_000)
"""The longest duration accepted (about 1,000 years), so that any time it is added to (a timer,
a deadline, a lease) is still a date."""


def _invalid(value: object, problem: str) -> InvalidDuration:
    text = repr(value)
    shown = text if len(text) <= 40 else f"{text[:37]}..."  # 400 digits need no echo in full
    return InvalidDuration(f"invalid duration {shown}: {problem}")


def _check_size(value: Duration, amount: float, unit_seconds: float) -> None:
    """Refuse ``amount`` units of ``unit_seconds`` when not a number, negative or too long.

    Checked before ``timedelta`` (which would raise ``OverflowError`` or ``ValueError``) sees it.
    """
    try:
        seconds = float(amount) * unit_seconds
    except OverflowError:  # an integer too large for a float
        seconds = math.inf if amount > 0 else -math.inf
    if math.isnan(seconds):
        raise _invalid(value, "not a number")
    if seconds < 0:
        raise _invalid(value, "must not be negative")
    if seconds > MAX_DURATION.total_seconds():
        raise _invalid(value, _TOO_LONG)


_TOO_LONG = f"longer than the maximum ({MAX_DURATION.days} days)"
_EXPECTED = "expected a string, number or timedelta"


def parse_duration(value: Duration) -> timedelta:
    """Turn a duration into a non-negative ``timedelta``.

    A duration is ``'30s'``, ``'5min'``, ``'5m'``, ``'2h'``, ``'7d'``, a number of milliseconds
    or a ``timedelta``.

    Raises:
        InvalidDuration: the value is negative, not a number, longer than
            :data:`MAX_DURATION` or has an unknown unit.
    """
    if isinstance(value, timedelta):
        result = value
    elif isinstance(value, bool):
        raise _invalid(value, _EXPECTED)
    elif isinstance(value, int | float):
        _check_size(value, value, 0.001)
        result = timedelta(milliseconds=value)
    elif isinstance(value, str):
        match = _PATTERN.match(value)
        if match is None:
            raise _invalid(
                value, "expected a number and a unit such as '30s', '5min', '2h' or '7d'"
            )
        number, unit = float(match.group(1)), match.group(2).lower()
        if unit != "" and unit not in _UNITS:
            raise _invalid(value, f"unknown unit {unit!r}")
        _check_size(value, number, _UNITS[unit] if unit else 0.001)
        result = (
            timedelta(seconds=number * _UNITS[unit]) if unit else timedelta(milliseconds=number)
        )
    else:
        raise _invalid(value, _EXPECTED)
    if result < timedelta(0):
        raise _invalid(value, "must not be negative")
    if result > MAX_DURATION:
        raise _invalid(value, _TOO_LONG)
    return result

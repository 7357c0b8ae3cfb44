"""Durations: ``timedelta`` inside, friendly strings and numbers at the edge."""

from __future__ import annotations

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


def parse_duration(value: Duration) -> timedelta:
    """Turn ``'30s'``, ``'5min'``, ``'5m'``, ``'2h'``, ``'7d'``, a number of milliseconds or a
    ``timedelta`` into a non-negative ``timedelta``.

    Raises:
        InvalidDuration: the value is negative, not a number or has an unknown unit.
    """
    if isinstance(value, timedelta):
        result = value
    elif isinstance(value, bool):
        raise InvalidDuration(f"invalid duration {value!r}: expected a string, number or timedelta")
    elif isinstance(value, int | float):
        result = timedelta(milliseconds=value)
    elif isinstance(value, str):
        match = _PATTERN.match(value)
        if match is None:
            raise InvalidDuration(
                f"invalid duration {value!r}: expected a number and a unit such as '30s', "
                "'5min', '2h' or '7d'"
            )
        number, unit = float(match.group(1)), match.group(2).lower()
        if unit == "":
            result = timedelta(milliseconds=number)
        elif unit in _UNITS:
            result = timedelta(seconds=number * _UNITS[unit])
        else:
            raise InvalidDuration(f"invalid duration {value!r}: unknown unit {unit!r}")
    else:
        raise InvalidDuration(f"invalid duration {value!r}: expected a string, number or timedelta")
    if result < timedelta(0):
        raise InvalidDuration(f"invalid duration {value!r}: must not be negative")
    return result

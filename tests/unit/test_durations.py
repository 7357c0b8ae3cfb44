from datetime import timedelta

import pytest

from lambda_flow import InvalidDuration, parse_duration


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("5min", timedelta(minutes=5)),
        ("5m", timedelta(minutes=5)),
        ("2h", timedelta(hours=2)),
        ("7d", timedelta(days=7)),
        ("2w", timedelta(weeks=2)),
        ("1440min", timedelta(days=1)),
        ("1.5s", timedelta(seconds=1.5)),
        ("250ms", timedelta(milliseconds=250)),
        (" 10 seconds ", timedelta(seconds=10)),
        ("500", timedelta(milliseconds=500)),
        (5000, timedelta(seconds=5)),
        (0, timedelta(0)),
        (1.5, timedelta(microseconds=1500)),
        (timedelta(minutes=3), timedelta(minutes=3)),
    ],
)
def test_accepted_durations(value: object, expected: timedelta) -> None:
    assert parse_duration(value) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("soon", "expected a number and a unit"),
        ("5 fortnights", "unknown unit 'fortnights'"),
        ("-5s", "expected a number and a unit"),
        (-1, "must not be negative"),
        (timedelta(seconds=-1), "must not be negative"),
        (True, "expected a string, number or timedelta"),
        (None, "expected a string, number or timedelta"),
    ],
)
def test_rejected_durations_name_the_problem(value: object, problem: str) -> None:
    with pytest.raises(InvalidDuration, match=problem):
        parse_duration(value)  # type: ignore[arg-type]

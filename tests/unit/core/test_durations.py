from datetime import timedelta

import pytest

from lambda_flow import InvalidDuration, parse_duration
from lambda_flow.core import MAX_DURATION


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
        # Too long for timedelta (OverflowError there) or past the maximum: issue 9, defect 8.
        ("99999999999999d", "longer than the maximum"),
        ("9" * 400, "longer than the maximum"),
        ("9" * 400 + "w", "longer than the maximum"),
        ("365001d", "longer than the maximum"),
        (10**400, "longer than the maximum"),
        (-(10**400), "must not be negative"),
        (float("inf"), "longer than the maximum"),
        (float("nan"), "not a number"),
        (timedelta.max, "longer than the maximum"),
    ],
)
def test_rejected_durations_name_the_problem(value: object, problem: str) -> None:
    with pytest.raises(InvalidDuration, match=problem):
        parse_duration(value)  # type: ignore[arg-type]


def test_the_maximum_itself_is_accepted() -> None:
    assert parse_duration("365000d") == MAX_DURATION
    assert parse_duration(MAX_DURATION) == MAX_DURATION


def test_a_long_value_is_shown_cut_short() -> None:
    with pytest.raises(InvalidDuration) as caught:
        parse_duration("9" * 400)
    assert len(str(caught.value)) < 120
    assert str(caught.value).startswith("invalid duration '999")

"""``RetryPolicy``: validated options, the n-th wait, jitter bounds, which errors retry."""

import random
from datetime import timedelta

import pytest

from lambda_flow import InvalidOption, NonRetryableError, RetryPolicy
from lambda_flow.engine._retry import retries_by_name


@pytest.mark.parametrize(
    ("options", "parameter"),
    [
        ({"max_attempts": 0}, "max_attempts"),
        ({"max_attempts": True}, "max_attempts"),
        ({"backoff": 0.5}, "backoff"),
        ({"jitter": "some"}, "jitter"),
        ({"initial_delay": "-1s"}, "initial_delay"),
        ({"initial_delay": "10min", "max_delay": "1min"}, "max_delay"),
        ({"retry_on": (ValueError, "KeyError")}, "retry_on"),
    ],
)
def test_invalid_options_name_the_parameter(options: dict[str, object], parameter: str) -> None:
    with pytest.raises(InvalidOption) as raised:
        RetryPolicy(**options)  # type: ignore[arg-type]
    assert raised.value.parameter == parameter
    assert str(raised.value).startswith(f"{parameter}: ")


def test_the_nth_retry_waits_initial_times_backoff_to_the_n_minus_1_capped() -> None:
    policy = RetryPolicy(initial_delay="1s", backoff=2.0, max_delay="5s", jitter="none")
    assert [policy.delay(n) for n in range(1, 6)] == [timedelta(seconds=s) for s in (1, 2, 4, 5, 5)]


@pytest.mark.parametrize(("jitter", "low"), [("full", 0.0), ("half", 0.5)])
def test_jitter_draws_within_its_range(jitter: str, low: float) -> None:
    policy = RetryPolicy(initial_delay="8s", backoff=1.0, max_delay="8s", jitter=jitter)  # type: ignore[arg-type]
    rng = random.Random(7)  # noqa: S311 - a seeded draw to check the bounds
    waits = [policy.delay(1, rng).total_seconds() for _ in range(200)]
    assert min(waits) >= 8 * low
    assert max(waits) <= 8
    assert len(set(waits)) > 100  # drawn, not fixed


def test_which_errors_are_retried() -> None:
    policy = RetryPolicy(max_attempts=5, retry_on=(ConnectionError,), dont_retry_on=(TimeoutError,))
    assert policy.next_delay(ConnectionError("x"), 1) is not None
    assert policy.next_delay(ValueError("x"), 1) is None  # not in retry_on
    assert policy.next_delay(NonRetryableError("x"), 1) is None
    assert policy.next_delay(None, 1) is not None  # an interrupted attempt
    assert policy.next_delay(ConnectionError("x"), 5) is None  # the last attempt
    # TimeoutError is an OSError, like ConnectionError: dont_retry_on wins.
    assert policy.next_delay(TimeoutError("x"), 1) is None


def test_a_policy_travels_to_workers_by_type_names() -> None:
    data = RetryPolicy(retry_on=(ConnectionError,), dont_retry_on=(ConnectionResetError,)).to_json()
    assert retries_by_name(data, ConnectionRefusedError("x"))  # a subclass of a retried type
    assert not retries_by_name(data, ConnectionResetError("x"))
    assert not retries_by_name(data, KeyError("x"))
    assert data["initial_delay_ms"] == 1000
    assert data["max_delay_ms"] == 300_000


def test_fixed_is_retries_and_retry_delay() -> None:
    policy = RetryPolicy.fixed(3, "2s")
    assert policy.max_attempts == 4
    assert [policy.delay(n) for n in (1, 2, 3)] == [timedelta(seconds=2)] * 3
    with pytest.raises(InvalidOption):
        RetryPolicy.fixed(-1)

"""The one retry decision: does a failed attempt of a step get another one, and when.

Every place an attempt can fail uses it: an inline step in a pass, an RPC step in a worker, an
attempt interrupted by a process that died (:class:`~lambda_flow.StepInterrupted`).
:class:`RetryPolicy` says how many attempts and how long between them; the delay of each retry
is decided once, when the failure is recorded (jitter included), so replays are deterministic.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

from ..core import (
    Duration,
    FunctionNotFound,
    InvalidInput,
    InvalidOption,
    LambdaFlowError,
    NonRetryableError,
    parse_duration,
)

_NEVER_RETRIED = (NonRetryableError, InvalidInput, FunctionNotFound)
"""Failures another attempt cannot mend: retrying would only repeat them."""

Jitter = Literal["full", "half", "none"]
_JITTERS = ("full", "half", "none")


def _exception_types(value: Any, parameter: str) -> tuple[type[BaseException], ...]:
    types = value if isinstance(value, tuple | list) else (value,)
    for kind in types:
        if not (isinstance(kind, type) and issubclass(kind, BaseException)):
            raise InvalidOption(parameter, f"expected exception classes, got {kind!r}")
    return tuple(types)


def _name(kind: type[BaseException]) -> str:
    return f"{kind.__module__}.{kind.__qualname__}"


@dataclass(frozen=True)
class RetryPolicy:
    """How a step is retried: how many attempts, how long between them, on which errors.

    The n-th retry waits ``min(initial_delay * backoff ** (n - 1), max_delay)``; ``jitter``
    ``"full"`` draws the wait from ``[0, that]``, ``"half"`` from ``[that / 2, that]``, and
    ``"none"`` waits exactly that. ``NonRetryableError`` and ``dont_retry_on`` stop at once.

    Raises:
        InvalidOption: an option is out of range, naming it.
    """

    max_attempts: int = 3
    """Attempts in all, the first included (at least 1)."""
    initial_delay: Duration = "1s"
    """The wait before the first retry."""
    backoff: float = 2.0
    """Each further wait is this many times the one before (at least 1)."""
    max_delay: Duration = "5min"
    """No wait is longer than this."""
    jitter: Jitter = "full"
    """How waits are spread so that many failing steps do not retry in lockstep."""
    retry_on: tuple[type[BaseException], ...] = (Exception,)
    """Only failures of these types are retried."""
    dont_retry_on: tuple[type[BaseException], ...] = ()
    """Failures of these types are never retried (checked before ``retry_on``)."""
    _initial: timedelta = field(init=False, repr=False, compare=False)
    _max: timedelta = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        attempts = self.max_attempts
        if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
            raise InvalidOption("max_attempts", f"must be a whole number >= 1, got {attempts!r}")
        if isinstance(self.backoff, bool) or not isinstance(self.backoff, int | float):
            raise InvalidOption("backoff", f"must be a number >= 1, got {self.backoff!r}")
        if not 1 <= self.backoff <= 1000:
            raise InvalidOption("backoff", f"must be between 1 and 1000, got {self.backoff!r}")
        if self.jitter not in _JITTERS:
            raise InvalidOption("jitter", f"must be one of {', '.join(_JITTERS)}")
        for name in ("initial_delay", "max_delay"):
            try:
                object.__setattr__(
                    self, f"_{name.split('_')[0]}", parse_duration(getattr(self, name))
                )
            except LambdaFlowError as exc:
                raise InvalidOption(name, str(exc)) from None
        if self._max < self._initial:
            raise InvalidOption("max_delay", "must not be shorter than initial_delay")
        object.__setattr__(self, "retry_on", _exception_types(self.retry_on, "retry_on"))
        object.__setattr__(
            self, "dont_retry_on", _exception_types(self.dont_retry_on, "dont_retry_on")
        )

    @classmethod
    def fixed(cls, retries: int, delay: Duration = 0) -> RetryPolicy:
        """``retries=`` and ``retry_delay=`` as a policy: a fixed wait, no jitter."""
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise InvalidOption("retries", f"must be a whole number >= 0, got {retries!r}")
        return cls(
            max_attempts=retries + 1,
            initial_delay=delay,
            backoff=1.0,
            max_delay=delay,
            jitter="none",
        )

    def retries_error(self, error: BaseException | None) -> bool:
        """Whether a failure like ``error`` may be retried (None: an interrupted attempt)."""
        if error is None:
            return True
        if isinstance(error, (*_NEVER_RETRIED, *self.dont_retry_on)):
            return False
        return isinstance(error, self.retry_on)

    def delay(self, retry: int, rng: random.Random | None = None) -> timedelta:
        """The wait before retry number ``retry`` (1: the first retry), jitter drawn now."""
        return _wait(self._initial, self.backoff, self._max, self.jitter, retry=retry, rng=rng)

    def next_delay(
        self, error: BaseException | None, attempt: int, rng: random.Random | None = None
    ) -> timedelta | None:
        """The wait before the attempt after ``attempt`` failed with ``error``; None: no more."""
        if attempt >= self.max_attempts or not self.retries_error(error):
            return None
        return self.delay(attempt, rng)

    def to_json(self) -> dict[str, Any]:
        """The policy as JSON-safe data, for workers in other processes (types by name)."""
        return {
            "max_attempts": self.max_attempts,
            "initial_delay_ms": int(self._initial.total_seconds() * 1000),
            "backoff": self.backoff,
            "max_delay_ms": int(self._max.total_seconds() * 1000),
            "jitter": self.jitter,
            "retry_on": [_name(k) for k in self.retry_on],
            "dont_retry_on": [_name(k) for k in self.dont_retry_on],
        }


def _wait(
    initial: timedelta,
    backoff: float,
    longest: timedelta,
    jitter: str,
    *,
    retry: int,
    rng: random.Random | None,
) -> timedelta:
    """The wait before retry number ``retry``: the one formula, for policies and their JSON."""
    base = initial * (backoff ** (retry - 1)) if backoff > 1 else initial
    base = min(base, longest)
    if jitter == "none" or base <= timedelta(0):
        return base
    draw = (rng or random).random()  # spreading retries, not secrecy
    low = base / 2 if jitter == "half" else timedelta(0)
    return low + (base - low) * draw


def fixed_policy_json(max_attempts: int, delay_ms: int) -> dict[str, Any]:
    """The JSON of a fixed-delay policy: what a step stored before policies were stored reads as."""
    return {
        "max_attempts": max_attempts,
        "initial_delay_ms": delay_ms,
        "backoff": 1.0,
        "max_delay_ms": delay_ms,
        "jitter": "none",
    }


def next_delay_by_json(
    policy: Mapping[str, Any],
    error: BaseException | None,
    attempt: int,
    rng: random.Random | None = None,
) -> timedelta | None:
    """:meth:`RetryPolicy.next_delay` for a policy read back from :meth:`RetryPolicy.to_json`.

    What a step worker in another process decides with (exception types matched by name).
    """
    if attempt >= int(policy.get("max_attempts", 1)) or not retries_by_name(policy, error):
        return None
    return _wait(
        timedelta(milliseconds=int(policy.get("initial_delay_ms", 0))),
        float(policy.get("backoff", 1.0)),
        timedelta(milliseconds=int(policy.get("max_delay_ms", 0))),
        str(policy.get("jitter", "none")),
        retry=attempt,
        rng=rng,
    )


def retries_by_name(policy: Mapping[str, Any], error: BaseException | None) -> bool:
    """:meth:`RetryPolicy.retries_error` for a policy read back with :meth:`to_json`'s names."""
    if error is None:
        return True
    if isinstance(error, _NEVER_RETRIED):
        return False
    names = {_name(k) for k in type(error).__mro__ if issubclass(k, BaseException)}
    if names & set(policy.get("dont_retry_on", ())):
        return False
    return bool(names & set(policy.get("retry_on", ("builtins.Exception",))))


NO_RETRY = RetryPolicy.fixed(0)
"""A step's policy when nothing says otherwise: one attempt."""


@functools.lru_cache(maxsize=256)
def _fixed(retries: int, delay: Duration) -> RetryPolicy:
    return RetryPolicy.fixed(retries, delay)


def step_policy(
    retry: RetryPolicy | None,
    retries: int | None,
    retry_delay: Duration | None,
    *defaults: RetryPolicy | None,
) -> RetryPolicy:
    """The policy a step runs with: the most specific one given wins.

    ``retry=`` (or ``retries=`` / ``retry_delay=``, a fixed delay) of the call, then each of
    ``defaults`` in turn (the function's, the application's), then one attempt.

    Raises:
        InvalidOption: ``retry=`` given with ``retries=`` or ``retry_delay=``, or not a
            :class:`RetryPolicy`.
    """
    if retry is not None:
        if retries is not None or retry_delay is not None:
            given = "retries=" if retries is not None else "retry_delay="
            raise InvalidOption("retry", f"give retry= or {given}, not both")
        if not isinstance(retry, RetryPolicy):
            raise InvalidOption("retry", f"expected a RetryPolicy, got {type(retry).__name__}")
        return retry
    if retries is not None or retry_delay is not None:
        delay = 0 if retry_delay is None else retry_delay
        try:
            return _fixed(0 if retries is None else retries, delay)
        except TypeError:  # an unhashable duration: let the policy name the problem
            return RetryPolicy.fixed(0 if retries is None else retries, delay)
        except InvalidOption as exc:
            if exc.parameter == "initial_delay":
                raise InvalidOption("retry_delay", str(exc).split(": ", 1)[-1]) from None
            raise
    for default in defaults:
        if default is not None:
            return default
    return NO_RETRY

"""Helpers for testing workflows.

A clock that skips time, crash injection, and replaying recorded histories
(:func:`replay_history`) to catch changes that would break runs in flight.
"""

from ..engine import replay_history
from ._clock import TimeSkippingClock
from ._crash import CrashBeforeWrite, SimulatedCrash

__all__ = ["CrashBeforeWrite", "SimulatedCrash", "TimeSkippingClock", "replay_history"]

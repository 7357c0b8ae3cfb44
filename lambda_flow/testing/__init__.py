"""Helpers for testing workflows.

A clock that skips time, crash injection, replaying recorded histories (:func:`replay_history`)
to catch changes that would break runs in flight, and :class:`ServiceFactory`, the services of
the pytest plugin's ``lf_service`` fixture (:mod:`lambda_flow.testing.plugin`, loaded by pytest
on its own).
"""

from ..engine import replay_history
from ._clock import TimeSkippingClock
from ._crash import CrashBeforeWrite, SimulatedCrash
from ._services import ServiceFactory

__all__ = [
    "CrashBeforeWrite",
    "ServiceFactory",
    "SimulatedCrash",
    "TimeSkippingClock",
    "replay_history",
]

"""The one retry decision: does a failed attempt of a step get another one, and when.

Every place an attempt can fail uses it: an inline step in a pass, an RPC step in a worker, an
attempt interrupted by a process that died (:class:`~lambda_flow.StepInterrupted`).
"""

from __future__ import annotations

from ..core import FunctionNotFound, InvalidInput, NonRetryableError

_NEVER_RETRIED = (NonRetryableError, InvalidInput, FunctionNotFound)
"""Failures another attempt cannot mend: retrying would only repeat them."""


def is_final(error: BaseException | None, attempt: int, max_attempts: int) -> bool:
    """True when attempt ``attempt`` (1-based) failing with ``error`` ends the step.

    ``error`` is None for an interrupted attempt (its process died): retryable like any other.
    """
    return attempt >= max_attempts or isinstance(error, _NEVER_RETRIED)

"""One exception tree for lambda-flow, plus the engine's control signals.

Errors users may catch derive from :class:`LambdaFlowError` (an ``Exception``). Control signals the
engine uses to unwind a workflow body (suspend, cancel, "waiting on a step") derive from
``BaseException`` so that a user's ``except Exception`` can never swallow them.
"""

from __future__ import annotations

from typing import Any


class LambdaFlowError(Exception):
    """Root of every error lambda-flow raises on purpose."""


class ConfigurationError(LambdaFlowError):
    """Configuration is missing or wrong (an environment variable, a DSN, a schema name)."""


class InvalidDuration(LambdaFlowError, ValueError):
    """A duration string or number could not be parsed."""


class WorkflowNotFound(LambdaFlowError, LookupError):
    """No workflow is registered under this name."""

    def __init__(self, name: str) -> None:
        super().__init__(f"unknown workflow {name!r}")
        self.name = name


class FunctionNotFound(LambdaFlowError, LookupError):
    """No function is registered under this name."""

    def __init__(self, name: str) -> None:
        super().__init__(f"unknown function {name!r}")
        self.name = name


class RunNotFound(LambdaFlowError, LookupError):
    """No run has this id."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"unknown run {run_id!r}")
        self.run_id = run_id


class InvalidInput(LambdaFlowError, ValueError):
    """Input failed validation against the workflow's or function's annotation.

    Attributes:
        target: what the input was for, e.g. ``workflow 'onboard_user'``.
        errors: pydantic's list of field errors (``loc``, ``msg``, ``type``), JSON-safe.
    """

    def __init__(self, target: str, errors: list[dict[str, Any]]) -> None:
        self.target = target
        self.errors = errors
        details = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ())) or 'input'}: {e.get('msg', 'invalid')}"
            for e in errors
        )
        super().__init__(f"invalid input for {target}: {details}")


class UnstorableInput(InvalidInput):
    r"""The input holds what the database cannot store, naming where (``errors``' ``loc``).

    A NUL character (``\u0000``) or a lone surrogate (``\ud800``-``\udfff``) in a string or
    key, or a number JSON cannot write (NaN, infinity).
    """


class InputTooLarge(InvalidInput):
    """The input's JSON is larger than the limit (``lambda_flow.core.MAX_INPUT_BYTES``).

    Attributes:
        size: the input's size in bytes (compact JSON, UTF-8).
        limit: the most bytes accepted.
    """

    def __init__(self, target: str, size: int, limit: int) -> None:
        message = f"the input is {size} bytes of JSON, over the limit of {limit} bytes"
        error = {
            "loc": [],
            "msg": message,
            "type": "input_too_large",
            "ctx": {"size": size, "limit": limit},
        }
        super().__init__(target, [error])
        self.size = size
        self.limit = limit


class IdempotencyConflict(LambdaFlowError):
    """An idempotency key already started a run of this workflow with a different input.

    The same key with the same input returns the first run instead; a different input is a
    mistake (a key reused for another request), refused without writing anything.

    Attributes:
        workflow: the workflow's name.
        idempotency_key: the key that was reused.
        run_id: the run the key started first (None when the caller may not learn it, as over
            HTTP).
    """

    def __init__(self, workflow: str, idempotency_key: str, run_id: str | None = None) -> None:
        super().__init__(
            f"idempotency key {idempotency_key!r} was already used to start a run of workflow "
            f"{workflow!r} with a different input; use a new key for a new input"
        )
        self.workflow = workflow
        self.idempotency_key = idempotency_key
        self.run_id = run_id


class StoreUnavailable(LambdaFlowError):
    """The database could not be reached, or could not serve the statement now.

    It is restarting, stopped or out of connections, or no pooled connection was free in time.
    Trying again later may succeed; whether a write that failed this way took effect is unknown.

    The original ``psycopg`` error is the ``__cause__``.
    """


class InvalidMessage(LambdaFlowError, ValueError):
    """A queue message is not one lambda-flow sent: not JSON, or missing or malformed ids."""


class InvalidRunState(LambdaFlowError):
    """The operation does not fit the run's current status (e.g. resuming a completed run)."""

    def __init__(self, run_id: str, status: str, operation: str) -> None:
        super().__init__(f"cannot {operation} run {run_id}: it is {status}")
        self.run_id = run_id
        self.status = status
        self.operation = operation


class NonDeterminismError(LambdaFlowError):
    """Replay asked for a different step than the one recorded.

    Attributes:
        run_id: the run whose history disagrees with the code.
        step_key: the recorded step key at the point of divergence.
    """

    def __init__(self, run_id: str, step_key: str, message: str) -> None:
        super().__init__(f"non-determinism in run {run_id} at step {step_key!r}: {message}")
        self.run_id = run_id
        self.step_key = step_key


class StepFailed(LambdaFlowError):
    """A step failed on its last attempt; raised into the workflow body at the ``wf.do`` call.

    A workflow may catch it to compensate; uncaught, the run fails with this error.
    """

    def __init__(self, step_key: str, attempts: int, error_type: str, message: str) -> None:
        plural = "attempt" if attempts == 1 else "attempts"
        super().__init__(
            f"step {step_key!r} failed after {attempts} {plural}: {error_type}: {message}"
        )
        self.step_key = step_key
        self.attempts = attempts
        self.error_type = error_type
        self.error_message = message


class StepInterrupted(StepFailed):
    """A step whose attempts were interrupted: the process running one died mid-attempt.

    It was killed, ran out of memory or timed out before recording the attempt's outcome.
    An interrupted attempt counts as a failed one (its history row reads ``StepInterrupted``),
    so the step's retry policy decides whether another attempt follows; a step that kills every
    process that runs it ends its run failed instead of looping.
    """


class CallbackFailed(StepFailed):
    """The callback was failed from outside (``fail_callback``).

    ``error_message`` and ``error_type`` hold what the caller said.
    """


class CallbackTimedOut(StepFailed):
    """The callback was not completed (or heartbeated) in time.

    Its ``timeout`` passed, or its ``heartbeat_timeout`` passed since the last heartbeat.
    """


class ConditionNotMet(StepFailed):
    """``wait_for_condition`` used up its ``max_attempts`` checks without the condition holding."""


class StepTimedOut(StepFailed):
    """Every attempt the step's retry policy allowed ran longer than its ``timeout``."""


class ChildFailed(StepFailed):
    """A child workflow (``wf.child``, ``wf.start_child``) failed, was cancelled or timed out.

    ``error_type`` and ``error_message`` are the child run's error (``"Cancelled"`` for a
    cancelled child, ``"RunDeadlineExceeded"`` when it went past the parent's ``timeout``);
    ``child_run_id`` names the child run, whose own history says more.
    """

    def __init__(
        self, step_key: str, attempts: int, error_type: str, message: str, child_run_id: str = ""
    ) -> None:
        super().__init__(step_key, attempts, error_type, message)
        self.child_run_id = child_run_id
        if child_run_id:
            self.args = (
                f"child run {child_run_id} of step {step_key!r} failed: {error_type}: {message}",
            )


class NonRetryableError(LambdaFlowError):
    """Raise from a step to fail it at once, without using its remaining retries."""


class LeaseLost(LambdaFlowError):
    """A pass or a worker lost its lease (fencing token moved on); its writes were refused."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"lease on run {run_id} was lost; the write was refused")
        self.run_id = run_id


class RunFailed(LambdaFlowError):
    """``run_to_completion`` saw the run fail."""

    def __init__(self, run_id: str, error: str) -> None:
        super().__init__(f"run {run_id} failed: {error}")
        self.run_id = run_id
        self.error = error


class RunCancelled(LambdaFlowError):
    """``run_to_completion`` saw the run cancelled."""

    def __init__(self, run_id: str, reason: str | None) -> None:
        super().__init__(f"run {run_id} was cancelled" + (f": {reason}" if reason else ""))
        self.run_id = run_id
        self.reason = reason


class RunSuspended(LambdaFlowError):
    """``run_to_completion`` saw the run suspend; it waits for ``resume``."""

    def __init__(self, run_id: str, reason: str | None) -> None:
        super().__init__(f"run {run_id} is suspended" + (f": {reason}" if reason else ""))
        self.run_id = run_id
        self.reason = reason


class RunTimedOut(LambdaFlowError, TimeoutError):
    """``run_to_completion`` gave up waiting; the run itself goes on."""

    def __init__(self, run_id: str, status: str) -> None:
        super().__init__(f"run {run_id} did not finish in time (still {status})")
        self.run_id = run_id
        self.status = status


class InvalidOption(LambdaFlowError, ValueError):
    """An option of a primitive is invalid (a negative timeout, ``retry=`` with ``retries=``...).

    Attributes:
        parameter: the option's name.
    """

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter


class BatchFailed(LambdaFlowError):
    """``BatchResult.values()`` was asked for the results of a batch in which items failed.

    Attributes:
        failures: ``(index, error)`` of each failed item, in index order; the errors are
            :class:`~lambda_flow.ErrorInfo` values.
    """

    def __init__(self, name: str, failures: list[tuple[int, Any]]) -> None:
        first = failures[0][1] if failures else None
        plural = "item" if len(failures) == 1 else "items"
        detail = f" (first: item {failures[0][0]}, {first})" if failures else ""
        super().__init__(f"batch {name!r}: {len(failures)} {plural} failed{detail}")
        self.name = name
        self.failures = failures


class RunDeadlineExceeded(LambdaFlowError):
    """A run went past its deadline (``@flow.workflow(timeout=...)`` or ``run_timeout=``).

    The run fails with this error type; its pending timers, callbacks and jobs are dropped.
    """


class CallbackNotFound(LambdaFlowError, LookupError):
    """No callback has this id."""

    def __init__(self, callback_id: str) -> None:
        super().__init__(f"callback {callback_id!r} not found")
        self.callback_id = callback_id


class CallbackConflict(LambdaFlowError):
    """The callback cannot take this completion.

    It was completed before with another payload (or failed with another error), it timed out,
    or its run ended without it. Nothing changes.
    """

    def __init__(self, callback_id: str, reason: str) -> None:
        super().__init__(f"callback {callback_id!r}: {reason}")
        self.callback_id = callback_id
        self.reason = reason


class WorkflowCancelled(BaseException):
    """Raised into a workflow body at the ``wf.*`` call it waits on when its run is cancelled.

    A ``BaseException``, so ``except Exception`` does not swallow it. The body may catch it (or
    use ``finally``) to run compensating steps; the run ends ``cancelled`` when the body ends.

    Attributes:
        reason: why the run was cancelled (None when no reason was given).
    """

    def __init__(self, reason: str | None = None) -> None:
        super().__init__(reason or "cancelled")
        self.reason = reason


class EngineSignal(BaseException):
    """Base of the engine's control-flow signals; never caught by ``except Exception``."""


class SuspendSignal(EngineSignal):
    """Unwinds the body when the run suspends."""


class CancelSignal(EngineSignal):
    """Unwinds the body when the workflow calls ``wf.cancel``."""

    def __init__(self, reason: str | None) -> None:
        super().__init__(reason)
        self.reason = reason

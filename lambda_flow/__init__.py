"""lambda-flow: durable workflows in plain ``async def`` Python, on Postgres and AWS Lambda."""

import gc as _gc
import os as _os
from typing import TYPE_CHECKING, Any

# Importing the package builds ~45,000 objects and no cyclic garbage: the collector's passes over
# them cost a Lambda cold start time for nothing. Off while importing, then as it was. In Lambda
# what the import built is frozen first (it lives as long as the process; without it the first
# collection after the import walks it all: ~16 ms), as the handlers do at the end of their cold
# start (lambda_flow.handlers).
_collecting = _gc.isenabled()
_gc.disable()
try:
    from .core import (
        AccessRequest,
        BatchFailed,
        CallbackConflict,
        CallbackFailed,
        CallbackNotFound,
        CallbackTimedOut,
        Caller,
        ChildFailed,
        ConditionNotMet,
        ConfigurationError,
        Duration,
        ErrorInfo,
        FunctionNotFound,
        IdempotencyConflict,
        InputTooLarge,
        InvalidDuration,
        InvalidInput,
        InvalidOption,
        InvalidRunState,
        LambdaFlowError,
        LeaseLost,
        NonDeterminismError,
        NonRetryableError,
        Run,
        RunCancelled,
        RunDeadlineExceeded,
        RunFailed,
        RunNotFound,
        RunStatus,
        RunSuspended,
        RunTimedOut,
        StepAttempt,
        StepFailed,
        StepInterrupted,
        StepKind,
        StepStatus,
        StepTimedOut,
        StoreUnavailable,
        UnstorableInput,
        WorkflowCancelled,
        WorkflowNotFound,
        parse_duration,
    )
    from .engine import (
        BatchResult,
        Callback,
        ChildRun,
        Completion,
        RetryPolicy,
        StepInfo,
        WorkflowContext,
        current_step,
    )
    from .service import WorkflowService
    from .store.postgres import PostgresStore
finally:
    if _collecting:
        if _os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
            _gc.freeze()
        _gc.enable()
    del _collecting

if TYPE_CHECKING:
    from .graph import Flow, GraphDefinitionError, GraphInputError, branch, ref

# Graph workflows are imported on first use of one of these names (``from lambda_flow import
# Flow`` included), not with the package: the Lambda handlers import ``lambda_flow`` before the
# app and need none of them.
_GRAPH_NAMES = frozenset({"Flow", "GraphDefinitionError", "GraphInputError", "branch", "ref"})


def __getattr__(name: str) -> Any:
    if name in _GRAPH_NAMES:
        from . import graph

        value = getattr(graph, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__all__ = [
    "AccessRequest",
    "BatchFailed",
    "BatchResult",
    "Callback",
    "CallbackConflict",
    "CallbackFailed",
    "CallbackNotFound",
    "CallbackTimedOut",
    "Caller",
    "ChildFailed",
    "ChildRun",
    "Completion",
    "ConditionNotMet",
    "ConfigurationError",
    "Duration",
    "ErrorInfo",
    "Flow",
    "FunctionNotFound",
    "GraphDefinitionError",
    "GraphInputError",
    "IdempotencyConflict",
    "InputTooLarge",
    "InvalidDuration",
    "InvalidInput",
    "InvalidOption",
    "InvalidRunState",
    "LambdaFlowError",
    "LeaseLost",
    "NonDeterminismError",
    "NonRetryableError",
    "PostgresStore",
    "RetryPolicy",
    "Run",
    "RunCancelled",
    "RunDeadlineExceeded",
    "RunFailed",
    "RunNotFound",
    "RunStatus",
    "RunSuspended",
    "RunTimedOut",
    "StepAttempt",
    "StepFailed",
    "StepInfo",
    "StepInterrupted",
    "StepKind",
    "StepStatus",
    "StepTimedOut",
    "StoreUnavailable",
    "UnstorableInput",
    "WorkflowCancelled",
    "WorkflowContext",
    "WorkflowNotFound",
    "WorkflowService",
    "branch",
    "current_step",
    "parse_duration",
    "ref",
]

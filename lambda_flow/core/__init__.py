"""The vocabulary every layer may use.

Models and statuses, errors, durations, the clock, the JSON codec, configuration names and
running a coroutine from sync code.

Nothing here imports any other part of lambda-flow.
"""

from ._clock import Clock, SystemClock
from ._codec import ANY_CODEC, Codec, codec_for, resolve_hints
from ._config import (
    DEFAULT_DATA_DIR,
    DEFAULT_SCHEMA,
    ENV_APP,
    ENV_DATA_DIR,
    ENV_DATABASE_URL,
    ENV_SCHEMA,
    setting,
)
from ._durations import MAX_DURATION, Duration, parse_duration
from ._errors import (
    CancelSignal,
    ConfigurationError,
    EngineSignal,
    FunctionNotFound,
    InvalidDuration,
    InvalidInput,
    InvalidMessage,
    InvalidRunState,
    LambdaFlowError,
    LeaseLost,
    NonDeterminismError,
    NonRetryableError,
    RunCancelled,
    RunFailed,
    RunNotFound,
    RunSuspended,
    RunTimedOut,
    StepFailed,
    StepInterrupted,
    StoreUnavailable,
    SuspendSignal,
    WorkflowNotFound,
)
from ._models import (
    AccessRequest,
    Caller,
    ErrorInfo,
    Run,
    RunStatus,
    StepAttempt,
    StepKind,
    StepStatus,
)
from ._sync import run_sync

__all__ = [
    "ANY_CODEC",
    "DEFAULT_DATA_DIR",
    "DEFAULT_SCHEMA",
    "ENV_APP",
    "ENV_DATABASE_URL",
    "ENV_DATA_DIR",
    "ENV_SCHEMA",
    "MAX_DURATION",
    "AccessRequest",
    "Caller",
    "CancelSignal",
    "Clock",
    "Codec",
    "ConfigurationError",
    "Duration",
    "EngineSignal",
    "ErrorInfo",
    "FunctionNotFound",
    "InvalidDuration",
    "InvalidInput",
    "InvalidMessage",
    "InvalidRunState",
    "LambdaFlowError",
    "LeaseLost",
    "NonDeterminismError",
    "NonRetryableError",
    "Run",
    "RunCancelled",
    "RunFailed",
    "RunNotFound",
    "RunStatus",
    "RunSuspended",
    "RunTimedOut",
    "StepAttempt",
    "StepFailed",
    "StepInterrupted",
    "StepKind",
    "StepStatus",
    "StoreUnavailable",
    "SuspendSignal",
    "SystemClock",
    "WorkflowNotFound",
    "codec_for",
    "parse_duration",
    "resolve_hints",
    "run_sync",
    "setting",
]

"""lambda-flow: durable workflows in plain ``async def`` Python, on Postgres and AWS Lambda."""

from ._context import StepInfo, WorkflowContext, current_step
from ._durations import Duration, parse_duration
from ._errors import (
    ConfigurationError,
    FunctionNotFound,
    InvalidDuration,
    InvalidInput,
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
    WorkflowNotFound,
)
from ._flow import Flow
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
from ._service import WorkflowService
from .graph import GraphDefinitionError, GraphInputError, branch, ref
from .store.postgres import PostgresStore

__all__ = [
    "AccessRequest",
    "Caller",
    "ConfigurationError",
    "Duration",
    "ErrorInfo",
    "Flow",
    "FunctionNotFound",
    "GraphDefinitionError",
    "GraphInputError",
    "InvalidDuration",
    "InvalidInput",
    "InvalidRunState",
    "LambdaFlowError",
    "LeaseLost",
    "NonDeterminismError",
    "NonRetryableError",
    "PostgresStore",
    "Run",
    "RunCancelled",
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
    "StoreUnavailable",
    "WorkflowContext",
    "WorkflowNotFound",
    "WorkflowService",
    "branch",
    "current_step",
    "parse_duration",
    "ref",
]

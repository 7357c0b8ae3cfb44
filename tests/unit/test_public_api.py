"""The public names are a contract: changing this list is a decision, not an accident."""

import inspect

import lambda_flow
from lambda_flow import RunStatus, StepStatus, WorkflowContext, WorkflowService

EXPECTED = {
    "AccessRequest", "Caller",
    "ConfigurationError", "Duration", "ErrorInfo", "Flow", "FunctionNotFound", "InvalidDuration",
    "InvalidInput", "InvalidRunState", "LambdaFlowError", "LeaseLost", "NonDeterminismError",
    "NonRetryableError", "PostgresStore", "Run", "RunCancelled", "RunFailed", "RunNotFound",
    "RunStatus", "RunSuspended", "RunTimedOut", "StepAttempt", "StepFailed", "StepInfo",
    "StepInterrupted",
    "StepKind", "StepStatus", "StoreUnavailable", "WorkflowContext", "WorkflowNotFound",
    "WorkflowService",
    "current_step", "parse_duration",
    "GraphDefinitionError", "GraphInputError", "branch", "ref",
}  # fmt: skip


def test_exports_are_pinned() -> None:
    assert set(lambda_flow.__all__) == EXPECTED
    for name in EXPECTED:
        assert hasattr(lambda_flow, name), name


def test_status_values_are_the_design_words() -> None:
    assert [s.value for s in RunStatus] == [
        "running", "suspended", "completed", "failed", "cancelled",
    ]  # fmt: skip
    assert [s.value for s in StepStatus] == [
        "pending", "scheduled", "running", "succeeded", "failed", "cancelled",
    ]  # fmt: skip


def test_service_and_context_signatures() -> None:
    start = inspect.signature(WorkflowService.start)
    assert list(start.parameters) == ["self", "name", "input", "idempotency_key"]
    assert start.parameters["idempotency_key"].kind is inspect.Parameter.KEYWORD_ONLY
    rtc = inspect.signature(WorkflowService.run_to_completion)
    assert rtc.parameters["timeout"].kind is inspect.Parameter.KEYWORD_ONLY
    do = inspect.signature(WorkflowContext.do)
    assert list(do.parameters) == ["self", "name", "target", "data", "retries", "retry_delay"]
    assert do.parameters["retries"].default == 0
    assert do.parameters["retry_delay"].default == 0
    for method in ("get_run", "get_run_history", "list_runs", "resume", "cancel"):
        assert callable(getattr(WorkflowService, method))
    for method in ("do", "sleep", "suspend", "cancel"):
        assert inspect.iscoroutinefunction(getattr(WorkflowContext, method))


def test_control_signals_escape_except_exception() -> None:
    from lambda_flow.core import CancelSignal, EngineSignal, SuspendSignal

    for signal in (EngineSignal, CancelSignal, SuspendSignal):
        assert not issubclass(signal, Exception)
    assert issubclass(lambda_flow.LambdaFlowError, Exception)
